package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"waappliance/internal/wasim"
	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// loggedEvent is one event of /v1/events with its data kept raw.
type loggedEvent struct {
	ID   int64
	Type string
	Data json.RawMessage
}

// sessionEvents lists the session's events, oldest first.
func sessionEvents(t *testing.T, cl *wgclient.Client, session string) []loggedEvent {
	t.Helper()
	var out struct{ Events []loggedEvent }
	if r := do(t, cl, "GET", "/v1/events?session="+session+"&limit=1000", nil); r.Status != 200 || r.JSON(&out) != nil {
		t.Fatalf("events: %d %s", r.Status, r.Body)
	}
	return out.Events
}

// eventAbout waits for the event of typ whose data has "id" id and returns
// its data decoded.
func eventAbout(t *testing.T, cl *wgclient.Client, session, typ, id string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, typ+" of "+id, func() bool {
		for _, e := range sessionEvents(t, cl, session) {
			var d map[string]any
			if e.Type == typ && json.Unmarshal(e.Data, &d) == nil && d["id"] == id {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// js is v as compact JSON, for comparisons with expected JSON.
func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// sameJSON reports whether JSON texts a and b hold the same value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return js(x) == js(y)
}

// pairedWithContact is a sandbox with session shop (+15550001) paired and
// contact Ada (+15550002); it returns her and the account's JID.
func pairedWithContact(t *testing.T) (*testAppliance, *wgclient.Client, *wasim.Contact, types.JID) {
	t.Helper()
	ta, cl := newSandbox(t)
	s := pairSession(t, cl, "shop", "+15550001")
	account, err := types.ParseJID(s.JID)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	ada, err := ta.SandboxServer().Contact("15550002")
	if err != nil {
		t.Fatal(err)
	}
	return ta, cl, ada, account.ToNonAD()
}

// TestReceiveEveryKind: what a contact sends through wasim with the real
// whatsmeow client on the appliance's side arrives in the event log as
// its kind with its fields: a reply with a mention quoting our message,
// a location, contacts, a poll, a kind the appliance does not know; her
// reactions to our message, her edit and her delete of her own message
// are events of their own that point at the message they change.
func TestReceiveEveryKind(t *testing.T) {
	_, cl, ada, account := pairedWithContact(t)
	ctx := context.Background()
	ours := send(t, cl, "shop", "+15550002", "which one?")
	eventually(t, "our message at Ada", func() bool {
		for _, m := range ada.Inbox() {
			if m.ID == ours.ID {
				return true
			}
		}
		return false
	})
	me, adaPN, adaLID := "15550001@s.whatsapp.net", ada.JID().String(), ada.LID().String()
	s := proto.String
	sendMsg := func(m *waE2E.Message) string {
		t.Helper()
		id, err := ada.SendMessage(ctx, account, m)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	reply := sendMsg(&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: s("this one, @15550001"), ContextInfo: &waE2E.ContextInfo{
		StanzaID: s(ours.ID), Participant: s(me), MentionedJID: []string{me}, QuotedMessage: &waE2E.Message{Conversation: s("which one?")}}}})
	d := eventAbout(t, cl, "shop", "message.received", reply)
	if q, _ := d["quoted"].(map[string]any); q != nil {
		delete(q, "from_lid") // our LID, as whatsmeow's store knows it
	}
	if d["kind"] != "text" || d["text"] != "this one, @15550001" || d["reply_to"] != ours.ID || d["from"] != adaPN || d["from_lid"] != adaLID ||
		!sameJSON(js(d["quoted"]), fmt.Sprintf(`{"id":%q,"from":%q,"kind":"text","text":"which one?"}`, ours.ID, me)) || js(d["mentions"]) != `["`+me+`"]` {
		t.Errorf("reply: %s", js(d))
	}

	loc, err := ada.SendLocation(ctx, account, 52.520008, 13.404954, "The shop", "Alexanderplatz 1, Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if d := eventAbout(t, cl, "shop", "message.received", loc); d["kind"] != "location" ||
		!sameJSON(js(d["location"]), `{"latitude":52.520008,"longitude":13.404954,"name":"The shop","address":"Alexanderplatz 1, Berlin"}`) {
		t.Errorf("location: %s", js(d))
	}

	vcard := "BEGIN:VCARD\nVERSION:3.0\nFN:Bob Builder\nTEL;type=CELL;waid=15550009:+1 555 0009\nEND:VCARD"
	bob := "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL;waid=15550010:+1 555 0010\nEND:VCARD"
	cards, err := ada.SendContacts(ctx, account, []wasim.Card{{Name: "Bob Builder", VCard: vcard}, {Name: "Bob", VCard: bob}})
	if err != nil {
		t.Fatal(err)
	}
	if d := eventAbout(t, cl, "shop", "message.received", cards); d["kind"] != "contacts" ||
		!sameJSON(js(d["contacts"]), js([]map[string]any{{"name": "Bob Builder", "vcard": vcard, "phones": []string{"+1 555 0009"}},
			{"name": "Bob", "vcard": bob, "phones": []string{"+1 555 0010"}}})) {
		t.Errorf("contacts: %s", js(d))
	}

	poll, err := ada.SendPoll(ctx, account, "Pick up when?", []string{"Morning", "Evening"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := eventAbout(t, cl, "shop", "message.received", poll); d["kind"] != "poll" ||
		!sameJSON(js(d["poll"]), `{"question":"Pick up when?","options":["Morning","Evening"],"selectable":1}`) {
		t.Errorf("poll: %s", js(d))
	}

	odd := sendMsg(&waE2E.Message{EventMessage: &waE2E.EventMessage{Name: s("Opening party")}})
	if d := eventAbout(t, cl, "shop", "message.received", odd); d["kind"] != "unsupported" || d["whatsapp_type"] != "eventMessage" {
		t.Errorf("unsupported: %s", js(d))
	}

	// Reactions to our message: it is ours, in her chat.
	ourMsg := fmt.Sprintf(`{"id":%q,"chat":%q,"chat_lid":%q,"from":%q,"from_me":true}`, ours.ID, adaPN, adaLID, me)
	for _, emoji := range []string{"👍", ""} {
		id, err := ada.React(ctx, account, ours.ID, emoji)
		if err != nil {
			t.Fatal(err)
		}
		d := eventAbout(t, cl, "shop", "message.reaction", id)
		target, _ := d["message"].(map[string]any)
		delete(target, "from_lid") // our LID, as whatsmeow's store knows it
		if d["emoji"] != emoji || d["from"] != adaPN || !sameJSON(js(target), ourMsg) {
			t.Errorf("reaction %q: %s", emoji, js(d))
		}
	}

	// She edits and deletes her own message.
	hers := sendMsg(&waE2E.Message{Conversation: s("see you at 9")})
	eventAbout(t, cl, "shop", "message.received", hers)
	edit, err := ada.Edit(ctx, account, hers, "see you at 10")
	if err != nil {
		t.Fatal(err)
	}
	herMsg := fmt.Sprintf(`{"id":%q,"chat":%q,"chat_lid":%q,"from":%q,"from_lid":%q,"from_me":false}`, hers, adaPN, adaLID, adaPN, adaLID)
	if d := eventAbout(t, cl, "shop", "message.edited", edit); d["text"] != "see you at 10" || !sameJSON(js(d["message"]), herMsg) {
		t.Errorf("edit: %s", js(d))
	}
	del, err := ada.Revoke(ctx, account, hers)
	if err != nil {
		t.Fatal(err)
	}
	if d := eventAbout(t, cl, "shop", "message.deleted", del); !sameJSON(js(d["message"]), herMsg) {
		t.Errorf("delete: %s", js(d))
	}
	// Status updates are left out until an admin turns them on.
	var set struct {
		StatusBroadcasts *bool `json:"status_broadcasts"`
	}
	if r := do(t, cl, "GET", "/v1/settings", nil); r.Status != 200 || r.JSON(&set) != nil || set.StatusBroadcasts == nil || *set.StatusBroadcasts {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	if r := do(t, cl, "PATCH", "/v1/settings", map[string]bool{"status_broadcasts": true}); r.Status != 200 || r.JSON(&set) != nil || !*set.StatusBroadcasts {
		t.Fatalf("patch settings: %d %s", r.Status, r.Body)
	}
	if r := do(t, cl, "GET", "/v1/settings", nil); r.JSON(&set) != nil || !*set.StatusBroadcasts {
		t.Fatalf("settings after the patch: %s", r.Body)
	}
	wantError(t, do(t, cl, "PATCH", "/v1/settings", map[string]string{"status_broadcasts": "yes"}), 400, "bad_json")

	// Each once, and nothing left out: every message she sent is an event.
	count := map[string]int{}
	for _, e := range sessionEvents(t, cl, "shop") {
		count[e.Type]++
	}
	if count["message.received"] != 6 || count["message.reaction"] != 2 || count["message.edited"] != 1 || count["message.deleted"] != 1 {
		t.Errorf("events %v", count)
	}
	if missing := undocumentedFields(t, cl, sessionEvents(t, cl, "shop")); len(missing) != 0 {
		t.Errorf("event fields the OpenAPI document does not name: %v", missing)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestPollVotesNamed: a contact's votes arrive as poll.vote with the
// chosen options' names, decrypted: in a poll we sent through the API
// (named from the outbox) and in one she sent us (named from its
// message.received); a withdrawn vote has none.
func TestPollVotesNamed(t *testing.T) {
	_, cl, ada, account := pairedWithContact(t)
	ctx := context.Background()
	var ours struct{ ID string }
	if r := do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]any{"to": "+15550002",
		"poll": map[string]any{"question": "Which day?", "options": []string{"Mon", "Tue", "Wed"}, "selectable": 2}}); r.Status != 202 || r.JSON(&ours) != nil {
		t.Fatalf("poll: %d %s", r.Status, r.Body)
	}
	eventually(t, "our poll at Ada", func() bool {
		for _, m := range ada.Inbox() {
			if m.ID == ours.ID {
				return true
			}
		}
		return false
	})
	hers, err := ada.SendPoll(ctx, account, "Pick up when?", []string{"Morning", "Evening"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	eventAbout(t, cl, "shop", "message.received", hers)
	for _, c := range []struct {
		poll   string
		fromMe bool
		vote   []string
	}{
		{ours.ID, true, []string{"Tue", "Wed"}},
		{ours.ID, true, []string{}},
		{hers, false, []string{"Evening"}},
	} {
		id, err := ada.VotePoll(ctx, account, c.poll, c.vote)
		if err != nil {
			t.Fatal(err)
		}
		d := eventAbout(t, cl, "shop", "poll.vote", id)
		msg, _ := d["message"].(map[string]any)
		if js(d["options"]) != js(c.vote) || d["unknown_options"] != nil || d["error"] != nil || msg["id"] != c.poll || msg["from_me"] != c.fromMe || d["from"] != ada.JID().String() {
			t.Errorf("vote %v in %s: %s", c.vote, c.poll, js(d))
		}
	}
}

// TestStatusBroadcastsFromCLI: set --status-broadcasts turns the
// recording of status updates on and off, on a stopped state and through
// a serving appliance's control socket, and says what changed.
func TestStatusBroadcastsFromCLI(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	if e, _ := mustCLI(t, dir, "set", "--status-broadcasts", "on"); e != "updated "+dir+": status broadcasts on (was off)\n" {
		t.Fatalf("set on: %q", e)
	}
	if e, _ := mustCLI(t, dir, "set", "--status-broadcasts", "on"); e != dir+" already has these settings\n" {
		t.Fatalf("set on again: %q", e)
	}
	if code, _, e := cliRun(t, dir, "set", "--status-broadcasts", "maybe"); code != 2 || !strings.Contains(e, "want on or off") {
		t.Fatalf("set maybe: %d %q", code, e)
	}
	ta := sandboxed(t, dir)
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	cl := ta.client(t, c)
	setting := func() bool {
		var s struct {
			StatusBroadcasts *bool `json:"status_broadcasts"`
		}
		if r := do(t, cl, "GET", "/v1/settings", nil); r.Status != 200 || r.JSON(&s) != nil || s.StatusBroadcasts == nil {
			t.Fatalf("settings: %d %s", r.Status, r.Body)
		}
		return *s.StatusBroadcasts
	}
	if !setting() {
		t.Fatal("the stored setting is not served")
	}
	if e, _ := mustCLI(t, dir, "set", "--status-broadcasts", "off"); e != "updated "+dir+": status broadcasts off (was on)\n" {
		t.Fatalf("set off through serve: %q", e)
	}
	if setting() {
		t.Fatal("set off through the control socket did not apply")
	}
}
