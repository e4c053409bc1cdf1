package wasim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// eventLog records the simulator's events by kind.
type eventLog struct {
	mu  sync.Mutex
	ids map[EventKind][]string
}

func recordEvents(s *Server) *eventLog {
	l := &eventLog{ids: map[EventKind][]string{}}
	s.OnEvent(func(e Event) {
		l.mu.Lock()
		l.ids[e.Kind] = append(l.ids[e.Kind], e.MessageID)
		l.mu.Unlock()
	})
	return l
}

func (l *eventLog) count(k EventKind, id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.ids[k] {
		if v == id {
			n++
		}
	}
	return n
}

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// TestResendAfterLostAckDeliveredOnce: the server takes a send and delivers
// it, but its ack is lost (WithholdAcks); the client sends the message again
// with the same id. The server acks it again, with its first timestamp, and
// the contact gets no second copy, as WhatsApp de-duplicates by sender
// device and id. A send the server never got (DropSends) is no duplicate
// when it comes again.
func TestResendAfterLostAckDeliveredOnce(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550801")
	ct, _ := s.Contact("15550802")
	ev := recordEvents(s)
	ctx := context.Background()

	s.WithholdAcks(true)
	id := tc.GenerateMessageID()
	if _, err := tc.SendMessage(ctx, ct.JID(), text("once"), whatsmeow.SendRequestExtra{ID: id, Timeout: time.Second}); err == nil {
		t.Fatal("a send whose ack was withheld succeeded")
	}
	in := ct.Inbox()
	if len(in) != 1 || in[0].ID != string(id) || ct.Deliveries(string(id)) != 1 || ev.count(EventAckWithheld, string(id)) != 1 {
		t.Fatalf("after the lost ack: inbox %+v, deliveries %d", in, ct.Deliveries(string(id)))
	}
	if ev.count(EventServerAck, string(id)) != 0 {
		t.Fatal("an ack was sent while withheld")
	}

	s.WithholdAcks(false)
	resp, err := tc.SendMessage(ctx, ct.JID(), text("once"), whatsmeow.SendRequestExtra{ID: id})
	if err != nil {
		t.Fatalf("the resend was not acked: %v", err)
	}
	// The first acceptance's timestamp: at most the second of the delivery,
	// while a fresh one would be at least a second (the timeout) later.
	if resp.Timestamp.Unix() > in[0].At.Unix() {
		t.Errorf("resend acked with a new timestamp %v (delivered at %v)", resp.Timestamp, in[0].At)
	}
	if n := len(ct.Inbox()); n != 1 || ct.Deliveries(string(id)) != 1 {
		t.Fatalf("after the resend: %d in the inbox, %d deliveries of %s; want 1 and 1", n, ct.Deliveries(string(id)), id)
	}
	if s.Resends(string(id)) != 1 || ev.count(EventDuplicateSend, string(id)) != 1 || ev.count(EventServerAck, string(id)) != 1 {
		t.Fatalf("resends %d, duplicate events %d, acks %d; want 1, 1, 1", s.Resends(string(id)), ev.count(EventDuplicateSend, string(id)), ev.count(EventServerAck, string(id)))
	}

	// The contact never decrypted the duplicate; its Signal session still
	// decrypts what follows.
	next, err := tc.SendMessage(ctx, ct.JID(), text("after"))
	if err != nil {
		t.Fatal(err)
	}
	if in := ct.Inbox(); len(in) != 2 || in[1].ID != string(next.ID) || in[1].Text() != "after" {
		t.Fatalf("after the duplicate: %+v", in)
	}

	s.DropSends(true)
	lost := tc.GenerateMessageID()
	if _, err := tc.SendMessage(ctx, ct.JID(), text("lost"), whatsmeow.SendRequestExtra{ID: lost, Timeout: time.Second}); err == nil {
		t.Fatal("a dropped send succeeded")
	}
	if ct.Deliveries(string(lost)) != 0 || ev.count(EventSendDropped, string(lost)) != 1 {
		t.Fatalf("a dropped send was delivered %d times", ct.Deliveries(string(lost)))
	}
	s.DropSends(false)
	if _, err := tc.SendMessage(ctx, ct.JID(), text("lost"), whatsmeow.SendRequestExtra{ID: lost}); err != nil {
		t.Fatal(err)
	}
	if ct.Deliveries(string(lost)) != 1 || s.Resends(string(lost)) != 0 {
		t.Fatalf("a dropped send sent again: %d deliveries, %d resends; want 1, 0", ct.Deliveries(string(lost)), s.Resends(string(lost)))
	}
}

// TestStandaloneOverTCP runs the server as cmd/wasim does: a TCP listener and
// the control API, with a client prepared, the phone played and the faults
// switched through Remote.
func TestStandaloneOverTCP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Addr() == "in-memory" {
		t.Fatal("no TCP listener")
	}
	ctl, err := s.ServeControl(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Dial(ctx, ctl.String())
	if err != nil {
		t.Fatal(err)
	}
	tc := newClientWith(t, r.Prepare, false)
	qr, err := tc.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qr
	if err := r.Scan(ctx, "15550901", item.Code); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "Connected", is[*events.Connected])
	if err := r.AddContact(ctx, "15550902", "Ada", -1); err != nil {
		t.Fatal(err)
	}
	to := types.NewJID("15550902", types.DefaultUserServer)
	on, off := true, false
	if err := r.SetFaults(ctx, Faults{WithholdAcks: &on}); err != nil {
		t.Fatal(err)
	}
	id := tc.GenerateMessageID()
	if _, err := tc.SendMessage(ctx, to, text("over tcp"), whatsmeow.SendRequestExtra{ID: id, Timeout: time.Second}); err == nil {
		t.Fatal("a send whose ack was withheld succeeded")
	}
	if err := r.SetFaults(ctx, Faults{WithholdAcks: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.SendMessage(ctx, to, text("over tcp"), whatsmeow.SendRequestExtra{ID: id}); err != nil {
		t.Fatal(err)
	}
	in, err := r.InboxOf(ctx, "15550902")
	if err != nil || len(in) != 1 || in[0].ID != string(id) || in[0].Text != "over tcp" || in[0].Deliveries != 1 || in[0].Resends != 1 {
		t.Fatalf("inbox %+v, %v; want one message, delivered once, resent once", in, err)
	}
	// The retry faults, from another process.
	if err := r.ContactRequestRetry(ctx, "15550902", string(id)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		in, _ := r.InboxOf(ctx, "15550902")
		if len(in) == 1 && in[0].Deliveries == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox after the retry request %+v; want the message delivered twice, listed once", in)
		}
	}
	lost, err := r.ContactSendUndecryptable(ctx, "15550902", tc.Store.ID.ToNonAD(), "lost first")
	if err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "undecryptable", func(e any) bool { u, ok := e.(*events.UndecryptableMessage); return ok && u.Info.ID == lost })
	if ev := tc.waitFor(t, "after its retry", is[*events.Message]).(*events.Message); ev.Info.ID != lost {
		t.Fatalf("got %s", ev.Info.ID)
	}
	if err := r.ContactRequestRetry(ctx, "15550999", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retry by an unknown contact: %v", err)
	}
	if _, err := newServer(t).ServeControl(ctx, "127.0.0.1:0"); err == nil {
		t.Fatal("an in-memory server served a control API")
	}
}

// TestContactResendDeliversAgain: a contact's Resend delivers a message the
// client already received and acked once more, with the same id, text and
// timestamp but a new ciphertext, so the client decrypts it (it is not
// dropped as a replayed Signal message) and acks it a second time: what a
// client must de-duplicate by id.
func TestContactResendDeliversAgain(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550901")
	ct, _ := s.Contact("15550902")
	ev := recordEvents(s)
	ctx := context.Background()
	me := tc.Store.ID.ToNonAD()
	acks := func(id string) int {
		return ev.count(EventClientReceipt, id) + ev.count(EventClientAck, id)
	}
	waitAcks := func(id string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for acks(id) < n {
			if time.Now().After(deadline) {
				t.Fatalf("wasim saw %s acked %d times, want %d", id, acks(id), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	id, err := ct.Send(ctx, me, "only once, please")
	if err != nil {
		t.Fatal(err)
	}
	first := tc.waitFor(t, "the message", is[*events.Message]).(*events.Message)
	waitAcks(id, 1)
	if err := ct.Resend(ctx, me, id); err != nil {
		t.Fatal(err)
	}
	again := tc.waitFor(t, "the message again", func(e any) bool {
		_, undecryptable := e.(*events.UndecryptableMessage)
		if undecryptable {
			t.Fatal("the resent copy could not be decrypted")
		}
		return is[*events.Message](e)
	}).(*events.Message)
	if again.Info.ID != id || again.Message.GetConversation() != "only once, please" || !again.Info.Timestamp.Equal(first.Info.Timestamp) {
		t.Fatalf("resent copy %s %q at %v, want %s %q at %v", again.Info.ID, again.Message.GetConversation(), again.Info.Timestamp,
			id, first.Message.GetConversation(), first.Info.Timestamp)
	}
	waitAcks(id, 2)
	if ev.count(EventContactResent, id) != 1 || ev.count(EventContactSent, id) != 1 {
		t.Fatalf("events: %d resent, %d sent; want 1, 1", ev.count(EventContactResent, id), ev.count(EventContactSent, id))
	}
	if err := ct.Resend(ctx, me, "3EB0NEVERSENT"); err == nil {
		t.Fatal("resent a message the contact never sent")
	}
}
