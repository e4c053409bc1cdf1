package whatsapp

import (
	"context"
	"encoding/json"
	"testing"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"waappliance/events"
	"waappliance/internal/pgtest"
)

// eventsOf returns the events of typ as JSON objects, oldest first.
func eventsOf(t *testing.T, e *Engine, typ string) []map[string]any {
	t.Helper()
	evs, err := e.cfg.Events.List(context.Background(), events.Filter{Limit: events.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type == typ {
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// field is the JSON of v at path (a.b.c) as a compact string.
func field(v map[string]any, path ...string) string {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "<none>"
		}
		cur = m[p]
	}
	b, _ := json.Marshal(cur)
	return string(b)
}

// TestInboundKindsTranslated: every kind of message becomes its event
// with its fields, a change to another message its own event type naming
// that message, and a message of a kind the appliance does not know a
// message.received of kind unsupported with WhatsApp's name for it; a
// status update is left out while the setting is off.
func TestInboundKindsTranslated(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		shop, _ := e.session("shop")
		ctx := context.Background()
		n := 0
		deliver := func(msg *waE2E.Message) string {
			t.Helper()
			n++
			m := inboundText("15550002", "15550002", "3EB0K"+string(rune('A'+n)), "")
			m.Message = msg
			if !shop.handle(nil, m) {
				t.Fatal("not acked")
			}
			return string(m.Info.ID)
		}
		s := proto.String
		mediaFields := func(mime string) (string, []byte, []byte, []byte, *uint64) {
			return mime, []byte("0123456789abcdef0123456789abcdef"), []byte{0xab, 0xcd}, []byte{1, 2}, proto.Uint64(1234)
		}
		mt, key, sha, enc, size := mediaFields("audio/ogg; codecs=opus")
		deliver(&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: s("hi @15550003"), ContextInfo: &waE2E.ContextInfo{
			StanzaID: s("3EB0Q"), Participant: s("15550001@s.whatsapp.net"), MentionedJID: []string{"15550003@s.whatsapp.net"},
			QuotedMessage: &waE2E.Message{Conversation: s("the question")}}}})
		deliver(&waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: s(mt), MediaKey: key, FileSHA256: sha, FileEncSHA256: enc, FileLength: size,
			DirectPath: s("/v/x"), PTT: proto.Bool(true), Seconds: proto.Uint32(7)}})
		deliver(&waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			Mimetype: s("application/pdf"), FileName: s("invoice.pdf"), Caption: s("your invoice"), FileLength: size, DirectPath: s("/v/y")}}}})
		deliver(&waE2E.Message{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(52.52), DegreesLongitude: proto.Float64(13.405), Name: s("Shop"), Address: s("Main St 1")}})
		deliver(&waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{Contacts: []*waE2E.ContactMessage{
			{DisplayName: s("Bob"), Vcard: s("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nitem1.TEL;waid=15550009:+1 555 0009\r\nEND:VCARD")}}}})
		deliver(&waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{Name: s("Lunch?"), SelectableOptionsCount: proto.Uint32(1),
			Options: []*waE2E.PollCreationMessage_Option{{OptionName: s("Pizza")}, {OptionName: s("Sushi")}}}})
		deliver(&waE2E.Message{EventMessage: &waE2E.EventMessage{Name: s("party")}})
		deliver(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: s("g")}}) // protocol traffic
		deliver(&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_EPHEMERAL_SYNC_RESPONSE.Enum()}})
		theirs := &waCommon.MessageKey{RemoteJID: s("15550001@s.whatsapp.net"), FromMe: proto.Bool(true), ID: s("3EB0THEIRS")}
		ours := &waCommon.MessageKey{RemoteJID: s("15550001@s.whatsapp.net"), FromMe: proto.Bool(false), ID: s("3EB0OURS")}
		deliver(&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: ours, Text: s("👍")}})
		deliver(&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: ours, Text: s("")}})
		deliver(&waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: theirs, EditedMessage: &waE2E.Message{Conversation: s("fixed typo")}}}}})
		deliver(&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: theirs}})

		got := eventsOf(t, e, events.TypeMessageReceived)
		if len(got) != 7 {
			t.Fatalf("%d message.received, want 7: %v", len(got), got)
		}
		for i, c := range []struct {
			path []string
			want string
		}{
			{[]string{"kind"}, `"text"`}, {[]string{"text"}, `"hi @15550003"`}, {[]string{"reply_to"}, `"3EB0Q"`},
			{[]string{"quoted"}, `{"from":"15550001@s.whatsapp.net","id":"3EB0Q","kind":"text","text":"the question"}`},
			{[]string{"mentions"}, `["15550003@s.whatsapp.net"]`},
		} {
			if g := field(got[0], c.path...); g != c.want {
				t.Errorf("text %d %v: %s, want %s", i, c.path, g, c.want)
			}
		}
		checks := []struct {
			ev   int
			path []string
			want string
		}{
			{1, []string{"kind"}, `"audio"`},
			{1, []string{"media"}, `{"seconds":7,"sha256":"abcd","size":1234,"state":"failed","error":"this appliance has no media store","type":"audio/ogg","voice":true}`},
			{2, []string{"kind"}, `"document"`}, {2, []string{"caption"}, `"your invoice"`}, {2, []string{"media", "filename"}, `"invoice.pdf"`},
			{3, []string{"location"}, `{"address":"Main St 1","latitude":52.52,"longitude":13.405,"name":"Shop"}`},
			{4, []string{"contacts"}, `[{"name":"Bob","phones":["+1 555 0009"],"vcard":"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nitem1.TEL;waid=15550009:+1 555 0009\r\nEND:VCARD"}]`},
			{5, []string{"poll"}, `{"options":["Pizza","Sushi"],"question":"Lunch?","selectable":1}`},
			{6, []string{"kind"}, `"unsupported"`}, {6, []string{"whatsapp_type"}, `"eventMessage"`},
		}
		for _, c := range checks {
			if g := field(got[c.ev], c.path...); !jsonEqual(g, c.want) {
				t.Errorf("event %d %v: %s, want %s", c.ev, c.path, g, c.want)
			}
		}
		// Changes: the message each points at. Without a client, "us" is
		// the key's remote JID.
		re := eventsOf(t, e, events.TypeMessageReaction)
		if len(re) != 2 || field(re[0], "emoji") != `"👍"` || field(re[1], "emoji") != `""` ||
			!jsonEqual(field(re[0], "message"), `{"id":"3EB0OURS","chat":"15550002@s.whatsapp.net","from":"15550001@s.whatsapp.net","from_me":true}`) {
			t.Errorf("reactions %v", re)
		}
		ed := eventsOf(t, e, events.TypeMessageEdited)
		if len(ed) != 1 || field(ed[0], "text") != `"fixed typo"` ||
			!jsonEqual(field(ed[0], "message"), `{"id":"3EB0THEIRS","chat":"15550002@s.whatsapp.net","from":"15550002@s.whatsapp.net","from_me":false}`) {
			t.Errorf("edits %v", ed)
		}
		del := eventsOf(t, e, events.TypeMessageDeleted)
		if len(del) != 1 || field(del[0], "message", "id") != `"3EB0THEIRS"` || field(del[0], "from") != `"15550002@s.whatsapp.net"` {
			t.Errorf("deletes %v", del)
		}

		// Status updates: out by default, in with the setting.
		status := func(id, text string) {
			m := inboundText("15550002", "15550002", id, text)
			m.Info.Chat = types.StatusBroadcastJID
			if !shop.handle(nil, m) {
				t.Fatal("status not acked")
			}
		}
		before := len(eventsOf(t, e, events.TypeMessageReceived))
		status("3EB0S1", "my status")
		if len(eventsOf(t, e, events.TypeMessageReceived)) != before {
			t.Fatal("a status update was recorded with the setting off")
		}
		if err := e.SetStatusBroadcasts(ctx, true); err != nil {
			t.Fatal(err)
		}
		status("3EB0S2", "my status, recorded")
		if got := eventsOf(t, e, events.TypeMessageReceived); len(got) != before+1 || field(got[before], "chat") != `"status@broadcast"` {
			t.Fatalf("status with the setting on: %v", got[before:])
		}
	})
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
