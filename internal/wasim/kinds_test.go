package wasim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// anyMessage matches every message event, protocol messages (edits,
// revokes) included, except the phone's session opener.
func anyMessage(e any) bool {
	m, ok := e.(*events.Message)
	return ok && m.Message.GetProtocolMessage().GetType() != waE2E.ProtocolMessage_INITIAL_SECURITY_NOTIFICATION_SETTING_SYNC
}

func lastIn(t *testing.T, ct *Contact, id types.MessageID) Received {
	t.Helper()
	in := ct.Inbox()
	if len(in) == 0 || in[len(in)-1].ID != string(id) {
		t.Fatalf("contact inbox does not end with %s: %d messages", id, len(in))
	}
	return in[len(in)-1]
}

func sameHashes(got [][]byte, names ...string) bool {
	if len(got) != len(names) {
		return false
	}
	for i, n := range names {
		h := sha256.Sum256([]byte(n))
		if !bytes.Equal(got[i], h[:]) {
			return false
		}
	}
	return true
}

// TestPolls: a poll the client creates arrives with its secret and the
// contact's encrypted vote opens with whatsmeow's DecryptPollVote; a poll
// the contact creates gets the client's vote (BuildPollVote), which the
// contact decrypts, and the contact's own vote on it. Both address forms.
func TestPolls(t *testing.T) {
	for _, addr := range []Addressing{AddressingLID, AddressingPN} {
		s := newServer(t)
		tc := newClient(t, s)
		pairByQR(t, s, tc, "15551301")
		ct, _ := s.Contact("15551302")
		ct.SetAddressing(addr)
		ctx := context.Background()
		me := tc.Store.ID.ToNonAD()
		if addr == AddressingPN {
			// The client knows the contact's LID before the contact writes by number.
			if _, err := ct.Send(ctx, me, "hello"); err != nil {
				t.Fatal(err)
			}
			tc.waitFor(t, "hello", is[*events.Message])
		}

		resp, err := tc.SendMessage(ctx, ct.JID(), tc.BuildPollCreation("lunch?", []string{"pizza", "sushi", "salad"}, 2))
		if err != nil {
			t.Fatal(err)
		}
		r := lastIn(t, ct, resp.ID)
		if q := r.Message.GetPollCreationMessage(); q.GetName() != "lunch?" || len(q.GetOptions()) != 3 || q.GetSelectableOptionsCount() != 2 ||
			len(r.Message.GetMessageContextInfo().GetMessageSecret()) != 32 {
			t.Fatalf("poll in inbox: %v", r.Message)
		}
		if _, err := ct.VotePoll(ctx, me, string(resp.ID), []string{"pizza", "salad"}); err != nil {
			t.Fatal(err)
		}
		ev := tc.waitFor(t, "vote", is[*events.Message]).(*events.Message)
		vote, err := tc.DecryptPollVote(ctx, ev)
		if err != nil {
			t.Fatalf("addressing %d: client cannot decrypt the contact's vote: %v", addr, err)
		}
		if !sameHashes(vote.GetSelectedOptions(), "pizza", "salad") || ev.Message.GetPollUpdateMessage().GetPollCreationMessageKey().GetID() != string(resp.ID) {
			t.Fatalf("vote: %v", vote)
		}
		if _, err := ct.VotePoll(ctx, me, string(resp.ID), []string{"pasta"}); err == nil {
			t.Fatal("vote for an option the poll lacks")
		}

		pid, err := ct.SendPoll(ctx, me, "when?", []string{"now", "later"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ev = tc.waitFor(t, "poll", is[*events.Message]).(*events.Message)
		if ev.Info.ID != pid || ev.Message.GetPollCreationMessage().GetName() != "when?" || ev.Info.Type != "poll" {
			t.Fatalf("poll: %v %+v", ev.Message, ev.Info)
		}
		voteMsg, err := tc.BuildPollVote(ctx, &ev.Info, []string{"later"})
		if err != nil {
			t.Fatal(err)
		}
		vr, err := tc.SendMessage(ctx, ev.Info.Chat, voteMsg)
		if err != nil {
			t.Fatal(err)
		}
		gotID, names, err := ct.PollVote(lastIn(t, ct, vr.ID))
		if err != nil || gotID != pid || len(names) != 1 || names[0] != "later" {
			t.Fatalf("contact read the client's vote as %s %v: %v", gotID, names, err)
		}
		if _, err := ct.VotePoll(ctx, me, pid, []string{"now"}); err != nil {
			t.Fatal(err)
		}
		ev = tc.waitFor(t, "own vote", is[*events.Message]).(*events.Message)
		if vote, err := tc.DecryptPollVote(ctx, ev); err != nil || !sameHashes(vote.GetSelectedOptions(), "now") {
			t.Fatalf("the contact's vote on its own poll: %v %v", vote, err)
		}
	}
}

// TestEditRevokeReact: the contact edits and revokes its message as
// BuildEdit and BuildRevoke would (the client sees an edit, edit="1", and
// a revoke, edit="7"), reacts to the client's message and to its own and
// removes a reaction; the client's edits and revokes reach the contact.
func TestEditRevokeReact(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551401")
	ct, _ := s.Contact("15551402")
	ctx := context.Background()
	me := tc.Store.ID.ToNonAD()

	id, _ := ct.Send(ctx, me, "helo")
	tc.waitFor(t, "text", is[*events.Message])
	if _, err := ct.Edit(ctx, me, id, "hello"); err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "edit", anyMessage).(*events.Message)
	pm := ev.Message.GetProtocolMessage()
	if !ev.IsEdit || ev.Info.Edit != types.EditAttributeMessageEdit || pm.GetType() != waE2E.ProtocolMessage_MESSAGE_EDIT ||
		pm.GetKey().GetID() != id || !pm.GetKey().GetFromMe() || pm.GetEditedMessage().GetConversation() != "hello" || ev.Info.Sender != ct.LID() {
		t.Fatalf("edit: %+v %v", ev.Info, ev.Message)
	}
	if _, err := ct.Revoke(ctx, me, id); err != nil {
		t.Fatal(err)
	}
	ev = tc.waitFor(t, "revoke", anyMessage).(*events.Message)
	pm = ev.Message.GetProtocolMessage()
	if ev.Info.Edit != types.EditAttributeSenderRevoke || pm.GetType() != waE2E.ProtocolMessage_REVOKE || pm.GetKey().GetID() != id {
		t.Fatalf("revoke: %+v %v", ev.Info, ev.Message)
	}
	if _, err := ct.Edit(ctx, me, "3EB0NOTMINE", "x"); err == nil {
		t.Fatal("edit of a message the contact did not send")
	}

	sent, err := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{Conversation: proto.String("mine")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     string
		emoji  string
		fromMe bool
	}{{string(sent.ID), "👍", false}, {id, "😂", true}, {string(sent.ID), "", false}} {
		if _, err := ct.React(ctx, me, c.id, c.emoji); err != nil {
			t.Fatal(err)
		}
		ev = tc.waitFor(t, "reaction", anyMessage).(*events.Message)
		rm := ev.Message.GetReactionMessage()
		if rm.GetText() != c.emoji || rm.GetKey().GetID() != c.id || rm.GetKey().GetFromMe() != c.fromMe || ev.Info.Type != "reaction" ||
			rm.GetKey().GetRemoteJID() != tc.Store.GetLID().ToNonAD().String() {
			t.Fatalf("reaction %q: %+v %v", c.emoji, ev.Info, rm)
		}
		if c.emoji == "" && ev.Info.Edit != types.EditAttributeSenderRevoke {
			t.Errorf("removed reaction without edit=7: %+v", ev.Info)
		}
	}

	// The client's edit and revoke of its own message reach the contact.
	chat := sent.Chat
	er, err := tc.SendMessage(ctx, chat, tc.BuildEdit(chat, sent.ID, &waE2E.Message{Conversation: proto.String("mine, edited")}))
	if err != nil {
		t.Fatal(err)
	}
	r := lastIn(t, ct, er.ID)
	if e := r.Message.GetEditedMessage().GetMessage().GetProtocolMessage(); e.GetKey().GetID() != string(sent.ID) || e.GetEditedMessage().GetConversation() != "mine, edited" {
		t.Fatalf("client's edit in the inbox: %v", r.Message)
	}
	rr, err := tc.SendMessage(ctx, chat, tc.BuildRevoke(chat, types.EmptyJID, sent.ID))
	if err != nil {
		t.Fatal(err)
	}
	r = lastIn(t, ct, rr.ID)
	if p := r.Message.GetProtocolMessage(); p.GetType() != waE2E.ProtocolMessage_REVOKE || p.GetKey().GetID() != string(sent.ID) {
		t.Fatalf("client's revoke in the inbox: %v", r.Message)
	}
}

// TestLocationAndContacts both ways.
func TestLocationAndContacts(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551501")
	ct, _ := s.Contact("15551502")
	ctx := context.Background()
	me := tc.Store.ID.ToNonAD()
	resp, err := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
		DegreesLatitude: proto.Float64(52.52), DegreesLongitude: proto.Float64(13.405), Name: proto.String("Shop")}})
	if err != nil {
		t.Fatal(err)
	}
	if l := lastIn(t, ct, resp.ID).Message.GetLocationMessage(); l.GetDegreesLatitude() != 52.52 || l.GetName() != "Shop" {
		t.Fatalf("location: %v", l)
	}
	if _, err := ct.SendLocation(ctx, me, -33.8688, 151.2093, "Opera", "Bennelong Point"); err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "location", is[*events.Message]).(*events.Message)
	if l := ev.Message.GetLocationMessage(); l.GetDegreesLongitude() != 151.2093 || l.GetAddress() != "Bennelong Point" {
		t.Fatalf("location: %v", l)
	}
	vc := "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nTEL;type=CELL;waid=15550100:+1 555 0100\nEND:VCARD"
	if _, err := ct.SendContacts(ctx, me, []Card{{"Ada", vc}}); err != nil {
		t.Fatal(err)
	}
	ev = tc.waitFor(t, "contact", is[*events.Message]).(*events.Message)
	if c := ev.Message.GetContactMessage(); c.GetVcard() != vc || c.GetDisplayName() != "Ada" || ev.Info.Type != "media" {
		t.Fatalf("contact: %v %+v", c, ev.Info)
	}
	if _, err := ct.SendContacts(ctx, me, []Card{{"Ada", vc}, {"Bob", vc}}); err != nil {
		t.Fatal(err)
	}
	ev = tc.waitFor(t, "contacts", is[*events.Message]).(*events.Message)
	if c := ev.Message.GetContactsArrayMessage(); len(c.GetContacts()) != 2 {
		t.Fatalf("contacts: %v", c)
	}
	resp, err = tc.SendMessage(ctx, ct.JID(), &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("Ada"), Vcard: proto.String(vc)}})
	if err != nil {
		t.Fatal(err)
	}
	if c := lastIn(t, ct, resp.ID).Message.GetContactMessage(); c.GetVcard() != vc {
		t.Fatalf("contact card: %v", c)
	}
}
