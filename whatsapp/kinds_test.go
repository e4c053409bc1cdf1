package whatsapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
	"waappliance/internal/wasim"
	"waappliance/whatsapp"
)

// kindsRig is a paired session "shop" (+15550001) with contact Ada
// (+15550002) and a clock the test can move forward.
type kindsRig struct {
	*rig
	e      *whatsapp.Engine
	ct     *wasim.Contact
	got    *arrivals
	offset atomic.Int64 // added to the engine's clock
}

func newKindsRig(t *testing.T, dsn string) *kindsRig {
	t.Helper()
	ctx := context.Background()
	k := &kindsRig{rig: newRig(t, dsn)}
	k.got = watchArrivals(k.srv)
	k.e = k.engineWith(t, func(c *whatsapp.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(k.offset.Load())) }
	})
	if err := k.e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	k.pair(t, k.e, "shop", "15550001")
	if err := k.srv.AddContact(ctx, "15550002", "Ada", -1); err != nil {
		t.Fatal(err)
	}
	ct, err := k.srv.Contact("15550002")
	if err != nil {
		t.Fatal(err)
	}
	k.ct = ct
	return k
}

func (k *kindsRig) send(t *testing.T, c whatsapp.Content) (whatsapp.Message, error) {
	t.Helper()
	m, _, err := k.e.Send(context.Background(), "shop", whatsapp.SendRequest{To: "+15550002", Content: c, Peer: "p"})
	return m, err
}

func (k *kindsRig) mustSend(t *testing.T, c whatsapp.Content) whatsapp.Message {
	t.Helper()
	m, err := k.send(t, c)
	if err != nil {
		t.Fatalf("send %s: %v", c.Kind, err)
	}
	return m
}

// arrived waits for message id at the contact and returns what it decrypted.
func (k *kindsRig) arrived(t *testing.T, id string) *waE2E.Message {
	t.Helper()
	var msg *waE2E.Message
	waitFor(t, "message "+id+" at the contact", 15*time.Second, func() bool {
		ms := k.got.of(id)
		if len(ms) == 0 {
			return false
		}
		msg = ms[len(ms)-1]
		return true
	})
	return msg
}

// sentStatus waits until id left the outbox (sent or beyond).
func (k *kindsRig) sentStatus(t *testing.T, id string) {
	t.Helper()
	waitFor(t, "message "+id+" sent", 15*time.Second, func() bool {
		m, err := k.e.Message(context.Background(), "shop", id)
		return err == nil && m.Status != whatsapp.StatusQueued
	})
	if m, _ := k.e.Message(context.Background(), "shop", id); m.Status == whatsapp.StatusFailed {
		t.Fatalf("message %s failed: %s", id, m.Error)
	}
}

// theirs has the contact write to the session and waits until the event
// log has it (so references resolve).
func (k *kindsRig) theirs(t *testing.T, text string) string {
	t.Helper()
	id, err := k.ct.Send(context.Background(), types.NewJID("15550001", types.DefaultUserServer), text)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "their message in the event log", 15*time.Second, func() bool {
		es, _ := k.ev.List(context.Background(), events.Filter{Sessions: []string{"shop"}, Limit: 1000})
		for _, e := range es {
			if e.Type == events.TypeMessageReceived && strings.Contains(string(e.Data), id) {
				return true
			}
		}
		return false
	})
	return id
}

// TestKindsArriveAsSent: location, contacts, poll and text with mentions
// arrive at the contact's WhatsApp with exactly what was sent; a poll's
// message secret is the one stored in the outbox and in whatsmeow's secret
// store (so votes can be decrypted, and a rebuilt retry carries it).
func TestKindsArriveAsSent(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		k := newKindsRig(t, dsn)

		loc := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindLocation, Location: &whatsapp.LocationContent{
			Latitude: 52.520008, Longitude: -13.404954, Name: "The shop", Address: "Unter den Linden 1"}})
		if lm := k.arrived(t, loc.ID).GetLocationMessage(); lm.GetDegreesLatitude() != 52.520008 || lm.GetDegreesLongitude() != -13.404954 ||
			lm.GetName() != "The shop" || lm.GetAddress() != "Unter den Linden 1" {
			t.Errorf("location arrived as %v", lm)
		}
		if loc.Location == nil || loc.Location.Name != "The shop" || loc.Kind != whatsapp.KindLocation {
			t.Errorf("the outbox message shows %+v", loc)
		}

		given := "BEGIN:VCARD\nVERSION:3.0\nFN:Grace Hopper\nTEL;type=CELL;waid=15550009:+15550009\nEND:VCARD"
		one := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindContacts, Contacts: &whatsapp.ContactsContent{{Name: "Alan; Turing", Phones: []string{"+44 20 7946 0000"}}}})
		cm := k.arrived(t, one.ID).GetContactMessage()
		if cm.GetDisplayName() != "Alan; Turing" || !strings.Contains(cm.GetVcard(), "FN:Alan\\; Turing\n") ||
			!strings.Contains(cm.GetVcard(), "TEL;type=CELL;type=VOICE;waid=442079460000:+442079460000") {
			t.Errorf("built contact arrived as %q / %q", cm.GetDisplayName(), cm.GetVcard())
		}
		two := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindContacts, Contacts: &whatsapp.ContactsContent{{VCard: given}, {Name: "Ada", Phones: []string{"+15550002"}}}})
		arr := k.arrived(t, two.ID).GetContactsArrayMessage()
		if len(arr.GetContacts()) != 2 || arr.GetContacts()[0].GetVcard() != given || arr.GetContacts()[0].GetDisplayName() != "Grace Hopper" ||
			arr.GetContacts()[1].GetDisplayName() != "Ada" {
			t.Errorf("two contacts arrived as %v", arr)
		}

		poll := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindPoll, Poll: &whatsapp.PollContent{Question: "Lunch?", Options: []string{"Pizza", "Soup", "Salad"}, Selectable: 1}})
		pm := k.arrived(t, poll.ID)
		var opts []string
		for _, o := range pm.GetPollCreationMessage().GetOptions() {
			opts = append(opts, o.GetOptionName())
		}
		if pm.GetPollCreationMessage().GetName() != "Lunch?" || strings.Join(opts, "|") != "Pizza|Soup|Salad" || pm.GetPollCreationMessage().GetSelectableOptionsCount() != 1 {
			t.Errorf("poll arrived as %v", pm.GetPollCreationMessage())
		}
		secret := pm.GetMessageContextInfo().GetMessageSecret()
		if len(secret) != 32 {
			t.Fatalf("poll arrived without its 32-byte message secret: %x", secret)
		}
		var stored string
		if err := k.db.QueryRow(`SELECT content FROM outbox WHERE id = $1`, poll.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		var row struct {
			Secret []byte `json:"secret"`
		}
		if err := json.Unmarshal([]byte(stored), &row); err != nil || string(row.Secret) != string(secret) {
			t.Errorf("the outbox row keeps secret %x (%v), the poll carried %x", row.Secret, err, secret)
		}
		var kept []byte
		if err := k.db.QueryRow(`SELECT key FROM whatsmeow_message_secrets WHERE message_id = $1`, poll.ID).Scan(&kept); err != nil {
			t.Fatalf("whatsmeow kept no secret for the poll: %v", err)
		}
		if string(kept) != string(secret) {
			t.Errorf("whatsmeow's secret store has %x, the poll carried %x", kept, secret)
		}

		men := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindText, Text: &whatsapp.TextContent{Body: "hi @+15550002 and @15550003", Mentions: []string{"+15550002", "+1 555 0003"}}})
		et := k.arrived(t, men.ID).GetExtendedTextMessage()
		if et.GetText() != "hi @15550002 and @15550003" || strings.Join(et.GetContextInfo().GetMentionedJID(), ",") != "15550002@s.whatsapp.net,15550003@s.whatsapp.net" {
			t.Errorf("mentions arrived as %q %v", et.GetText(), et.GetContextInfo().GetMentionedJID())
		}
		if _, err := k.send(t, whatsapp.Content{Kind: whatsapp.KindText, Text: &whatsapp.TextContent{Body: "hi there", Mentions: []string{"+15550002"}}}); !errors.Is(err, whatsapp.ErrBadContent) {
			t.Errorf("a mention missing from the text: %v, want ErrBadContent", err)
		}
	})
}

// TestChangesPointAtTheRightMessage: a reaction (to ours and to theirs,
// and taken back), an edit of ours and a delete of ours carry the key of
// the message they name; editing theirs, editing after the window,
// deleting after the window and naming a message of another session or
// chat are refused and leave no outbox row.
func TestChangesPointAtTheRightMessage(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		k := newKindsRig(t, dsn)
		ours := k.mustSend(t, whatsapp.Text("a first message"))
		k.arrived(t, ours.ID)
		theirs := k.theirs(t, "a question")

		react := func(id, emoji string) *waE2E.ReactionMessage {
			m := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindReaction, Reaction: &whatsapp.ReactionContent{Message: id, Emoji: emoji}})
			if m.Reaction == nil || m.Reaction.Message != id {
				t.Errorf("the reaction shows %+v", m.Reaction)
			}
			return k.arrived(t, m.ID).GetReactionMessage()
		}
		if r := react(ours.ID, "👍"); r.GetText() != "👍" || r.GetKey().GetID() != ours.ID || !r.GetKey().GetFromMe() || r.GetKey().GetRemoteJID() != "15550002@s.whatsapp.net" {
			t.Errorf("reaction to ours arrived as %v", r)
		}
		if r := react(theirs, "❤️"); r.GetText() != "❤️" || r.GetKey().GetID() != theirs || r.GetKey().GetFromMe() {
			t.Errorf("reaction to theirs arrived as %v", r)
		}
		if r := react(theirs, ""); r.GetText() != "" || r.GetKey().GetID() != theirs {
			t.Errorf("taking the reaction back arrived as %v", r)
		}

		ed := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindEdit, Edit: &whatsapp.EditContent{Message: ours.ID, Text: "a better first message"}})
		pm := k.arrived(t, ed.ID).GetEditedMessage().GetMessage().GetProtocolMessage()
		if pm.GetType() != waE2E.ProtocolMessage_MESSAGE_EDIT || pm.GetKey().GetID() != ours.ID || !pm.GetKey().GetFromMe() ||
			pm.GetEditedMessage().GetConversation() != "a better first message" {
			t.Errorf("edit arrived as %v", pm)
		}
		del := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindDelete, Delete: &whatsapp.DeleteContent{Message: ours.ID}})
		if pm := k.arrived(t, del.ID).GetProtocolMessage(); pm.GetType() != waE2E.ProtocolMessage_REVOKE || pm.GetKey().GetID() != ours.ID || !pm.GetKey().GetFromMe() {
			t.Errorf("delete arrived as %v", pm)
		}

		// Refusals, none of which leaves a row.
		count := func() int {
			var n int
			if err := k.db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		if _, err := k.e.Create(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixNano()
		if _, err := k.db.Exec(`INSERT INTO outbox(id, session, peer, to_jid, text, content, status, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9)`,
			"3EB0OTHERSESSION", "other", "p", "15550002@s.whatsapp.net", `{"kind":"text","text":{"body":"x"}}`, "sent", now, now, now); err != nil {
			t.Fatal(err)
		}
		if _, err := k.db.Exec(`INSERT INTO outbox(id, session, peer, to_jid, text, kind, content, status, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, '', 'text', $5, $6, $7, $8, $9)`,
			"3EB0FAILEDONE", "shop", "p", "15550002@s.whatsapp.net", `{"kind":"text","text":{"body":"x"}}`, "failed", now, now, now); err != nil {
			t.Fatal(err)
		}
		before += 2
		for _, c := range []struct {
			what string
			c    whatsapp.Content
			want error
		}{
			{"edit of theirs", whatsapp.Content{Kind: whatsapp.KindEdit, Edit: &whatsapp.EditContent{Message: theirs, Text: "x"}}, whatsapp.ErrNotOwnMessage},
			{"delete of theirs", whatsapp.Content{Kind: whatsapp.KindDelete, Delete: &whatsapp.DeleteContent{Message: theirs}}, whatsapp.ErrNotOwnMessage},
			{"reaction to a message that failed", whatsapp.Content{Kind: whatsapp.KindReaction, Reaction: &whatsapp.ReactionContent{Message: "3EB0FAILEDONE", Emoji: "👍"}}, whatsapp.ErrWrongMessageKind},
			{"edit of a delete", whatsapp.Content{Kind: whatsapp.KindEdit, Edit: &whatsapp.EditContent{Message: del.ID, Text: "x"}}, whatsapp.ErrWrongMessageKind},
			{"reaction to another session's message", whatsapp.Content{Kind: whatsapp.KindReaction, Reaction: &whatsapp.ReactionContent{Message: "3EB0OTHERSESSION", Emoji: "👍"}}, whatsapp.ErrTargetNotFound},
			{"reaction to an unknown message", whatsapp.Content{Kind: whatsapp.KindReaction, Reaction: &whatsapp.ReactionContent{Message: "3EB0NEVERSEEN", Emoji: "👍"}}, whatsapp.ErrTargetNotFound},
			{"reaction with a reply", whatsapp.Content{Kind: whatsapp.KindReaction, Reaction: &whatsapp.ReactionContent{Message: ours.ID, Emoji: "👍"}, ReplyTo: &whatsapp.MessageRef{ID: ours.ID}}, whatsapp.ErrBadContent},
			{"poll of one option", whatsapp.Content{Kind: whatsapp.KindPoll, Poll: &whatsapp.PollContent{Question: "?", Options: []string{"a"}}}, whatsapp.ErrBadContent},
			{"location off the globe", whatsapp.Content{Kind: whatsapp.KindLocation, Location: &whatsapp.LocationContent{Latitude: 91}}, whatsapp.ErrBadContent},
			{"contact without phones", whatsapp.Content{Kind: whatsapp.KindContacts, Contacts: &whatsapp.ContactsContent{{Name: "x"}}}, whatsapp.ErrBadContent},
		} {
			if _, err := k.send(t, c.c); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.what, err, c.want)
			}
		}
		// In another chat, our message is not found.
		if err := k.srv.AddContact(ctx, "15550003", "Bob", -1); err != nil {
			t.Fatal(err)
		}
		if _, _, err := k.e.Send(ctx, "shop", whatsapp.SendRequest{To: "+15550003", Peer: "p",
			Content: whatsapp.Content{Kind: whatsapp.KindEdit, Edit: &whatsapp.EditContent{Message: ours.ID, Text: "x"}}}); !errors.Is(err, whatsapp.ErrTargetNotFound) {
			t.Errorf("edit in another chat: %v, want ErrTargetNotFound", err)
		}
		// The windows, by the engine's clock.
		k.offset.Store(int64(whatsapp.EditWindow + time.Minute))
		if _, err := k.send(t, whatsapp.Content{Kind: whatsapp.KindEdit, Edit: &whatsapp.EditContent{Message: ours.ID, Text: "too late"}}); !errors.Is(err, whatsapp.ErrEditWindowPassed) {
			t.Errorf("edit after the window: %v, want ErrEditWindowPassed", err)
		}
		k.offset.Store(int64(whatsapp.DeleteWindow + time.Minute))
		if _, err := k.send(t, whatsapp.Content{Kind: whatsapp.KindDelete, Delete: &whatsapp.DeleteContent{Message: ours.ID}}); !errors.Is(err, whatsapp.ErrDeleteWindowPassed) {
			t.Errorf("delete after the window: %v, want ErrDeleteWindowPassed", err)
		}
		if n := count(); n != before {
			t.Errorf("the refusals left %d outbox rows", n-before)
		}
	})
}

// TestMarkRead: read receipts for their messages and our chat states
// reach the contact; an id the chat never received is ErrTargetNotFound.
func TestMarkRead(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		k := newKindsRig(t, dsn)
		a, b := k.theirs(t, "one"), k.theirs(t, "two")
		if err := k.e.MarkRead(ctx, "shop", "+15550002", []string{a, b}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the read receipts", 15*time.Second, func() bool { return strings.Join(k.ct.ReadReceipts(), ",") == a+","+b })
		if err := k.e.MarkRead(ctx, "shop", "+15550002", []string{"3EB0NEVERSEEN"}); !errors.Is(err, whatsapp.ErrTargetNotFound) {
			t.Errorf("unknown id: %v, want ErrTargetNotFound", err)
		}
		if err := k.e.ChatPresence(ctx, "shop", "+15550002", "dancing"); !errors.Is(err, whatsapp.ErrBadContent) {
			t.Errorf("unknown presence: %v, want ErrBadContent", err)
		}
		for _, st := range []string{whatsapp.PresenceTyping, whatsapp.PresenceRecording, whatsapp.PresencePaused} {
			if err := k.e.ChatPresence(ctx, "shop", "+15550002", st); err != nil {
				t.Errorf("presence %s: %v", st, err)
			}
		}
		waitFor(t, "the chat states", 15*time.Second, func() bool {
			return strings.Join(k.ct.ChatPresence(), ",") == "composing,composing/audio,paused"
		})
		// A session that is not connected refuses chat actions (nothing
		// queues them): never paired, here.
		if _, err := k.e.Create(ctx, "idle"); err != nil {
			t.Fatal(err)
		}
		if err := k.e.ChatPresence(ctx, "idle", "+15550002", whatsapp.PresenceTyping); !errors.Is(err, whatsapp.ErrNotPaired) {
			t.Errorf("presence in a session never paired: %v, want ErrNotPaired", err)
		}
		if err := k.e.MarkRead(ctx, "idle", "+15550002", []string{a}); !errors.Is(err, whatsapp.ErrNotPaired) {
			t.Errorf("read in a session never paired: %v, want ErrNotPaired", err)
		}
	})
}
