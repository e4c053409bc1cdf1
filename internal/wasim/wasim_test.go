package wasim

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// failLog fails the test on any whatsmeow error log, and records warnings.
type failLog struct {
	t      testing.TB
	module string
	// lenient tests break connections on purpose; whatsmeow logs those as errors.
	lenient bool
	// ended is set when the test's clean-up begins. whatsmeow runs some work
	// in goroutines of its own (updatePushName, for one) that can outlive the
	// test and fail on its closed database; testing panics on a log call after
	// the test has completed, so those late lines are dropped.
	ended *testEnd
}

// testEnd is set once when a test's clean-up begins; a log call holds the
// read lock from its check to its write, so none can slip past the end.
type testEnd struct {
	mu    sync.RWMutex
	ended bool
}

func (e *testEnd) end() {
	e.mu.Lock()
	e.ended = true
	e.mu.Unlock()
}

// live runs log while the test is still running, and drops it afterwards.
func (e *testEnd) live(log func()) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.ended {
		log()
	}
}

func (l failLog) Errorf(f string, a ...any) {
	l.ended.live(func() { l.errorf(f, a...) })
}

func (l failLog) errorf(f string, a ...any) {
	if l.lenient {
		l.t.Logf("whatsmeow %s error: %s", l.module, fmt.Sprintf(f, a...))
		return
	}
	l.t.Errorf("whatsmeow %s error: %s", l.module, fmt.Sprintf(f, a...))
}
func (l failLog) Warnf(f string, a ...any) {
	l.ended.live(func() { l.t.Logf("whatsmeow %s warn: %s", l.module, fmt.Sprintf(f, a...)) })
}
func (l failLog) Infof(f string, a ...any)  {}
func (l failLog) Debugf(f string, a ...any) {}
func (l failLog) Sub(m string) waLog.Logger {
	return failLog{l.t, l.module + "/" + m, l.lenient, l.ended}
}

type testClient struct {
	*whatsmeow.Client
	ch chan any
}

// newServer starts an in-memory server, as the appliance's sandbox mode
// does; TestStandaloneOverTCP covers the TCP listener.
func newServer(t testing.TB) *Server {
	s, err := New(context.Background(), Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t testing.TB, s *Server) *testClient { return newClientLog(t, s, false) }

// newLenientClient does not fail the test on whatsmeow error logs.
func newLenientClient(t testing.TB, s *Server) *testClient { return newClientLog(t, s, true) }

func newClientLog(t testing.TB, s *Server, lenient bool) *testClient {
	return newClientWith(t, s.Prepare, lenient)
}

// newClientWith makes a client that prepare points at a simulator.
func newClientWith(t testing.TB, prepare func(*whatsmeow.Client), lenient bool) *testClient {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "c.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := sqlstore.NewWithDB(db, "sqlite", waLog.Noop)
	if err := c.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	ended := new(testEnd)
	// Clean-ups run last first: disconnect, stop logging, close the database.
	t.Cleanup(ended.end)
	cli := whatsmeow.NewClient(c.NewDevice(), failLog{t, "client", lenient, ended})
	prepare(cli)
	tc := &testClient{Client: cli, ch: make(chan any, 100)}
	cli.AddEventHandler(func(e any) { tc.ch <- e })
	t.Cleanup(cli.Disconnect)
	return tc
}

// waitFor returns the first event for which match is true.
func (tc *testClient) waitFor(t testing.TB, what string, match func(any) bool) any {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-tc.ch:
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// is matches events of type T; a message event of a protocol message (the
// phone's session opener, say) is not a message a test waits for.
func is[T any](e any) bool {
	if m, ok := e.(*events.Message); ok && m.Message.GetProtocolMessage() != nil {
		return false
	}
	_, ok := e.(T)
	return ok
}

func pairByQR(t testing.TB, s *Server, tc *testClient, phone string) {
	t.Helper()
	qr, err := tc.GetQRChannel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Connect(); err != nil {
		t.Fatal(err)
	}
	var code string
	select {
	case it := <-qr:
		if it.Event != "code" {
			t.Fatalf("first QR item %+v", it)
		}
		code = it.Code
	case <-time.After(10 * time.Second):
		t.Fatal("no QR code")
	}
	if err := s.Phone(phone).ScanQR(code); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "PairSuccess", is[*events.PairSuccess])
	tc.waitFor(t, "Connected", is[*events.Connected])
}

func TestPairLoginSendReceive(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550001")
	if tc.Store.ID == nil || tc.Store.ID.User != "15550001" || tc.Store.ID.Device == 0 {
		t.Fatalf("stored device JID %v", tc.Store.ID)
	}
	ct, err := s.Contact("+15550002")
	if err != nil {
		t.Fatal(err)
	}
	ct.SetReceipts(ReceiptPolicy{ReadAfter: 100 * time.Millisecond})
	ctx := context.Background()
	to := types.NewJID("15550002", types.DefaultUserServer)
	var firstID types.MessageID
	for i, text := range []string{"hello contact", "second message"} {
		resp, err := tc.SendMessage(ctx, to, &waE2EMessage{Conversation: ptr(text)})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i == 0 {
			firstID = resp.ID
		}
		if resp.Timestamp.IsZero() {
			t.Fatal("no server timestamp in the ack")
		}
		in := ct.Inbox()
		if len(in) != i+1 || in[i].Text() != text || in[i].ID != string(resp.ID) {
			t.Fatalf("contact inbox after send %d: %+v", i, in)
		}
		if in[i].Type != "pkmsg" {
			t.Errorf("message %d arrived as %s; until the contact answers, Signal resends the prekey message", i, in[i].Type)
		}
		tc.waitFor(t, "delivered receipt", func(e any) bool {
			r, ok := e.(*events.Receipt)
			return ok && r.Type == types.ReceiptTypeDelivered && r.MessageIDs[0] == resp.ID
		})
		tc.waitFor(t, "read receipt", func(e any) bool {
			r, ok := e.(*events.Receipt)
			return ok && r.Type == types.ReceiptTypeRead && r.MessageIDs[0] == resp.ID
		})
	}
	// The contact answers; the client decrypts it.
	acked := make(chan string, 10)
	s.OnEvent(func(e Event) {
		if e.Kind == EventClientReceipt {
			acked <- e.MessageID
		}
	})
	id, err := ct.Send(ctx, tc.Store.ID.ToNonAD(), "hi from the contact")
	if err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "message", is[*events.Message]).(*events.Message)
	// As WhatsApp does today, the contact writes from its LID with its
	// phone number beside it.
	if ev.Message.GetConversation() != "hi from the contact" || ev.Info.ID != id || ev.Info.Sender != ct.LID() || ev.Info.Chat != ct.LID() || ev.Info.SenderAlt != ct.JID() {
		t.Fatalf("client got %+v", ev)
	}
	select {
	case got := <-acked:
		if got != id {
			t.Fatalf("receipt for %s, want %s", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wasim saw no ack or receipt from the client")
	}
	rid, _ := ct.Reply(ctx, tc.Store.ID.ToNonAD(), id, "a reply")
	ev = tc.waitFor(t, "reply", is[*events.Message]).(*events.Message)
	if ev.Info.ID != rid || ev.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID() != id {
		t.Fatalf("reply: %+v", ev.Message)
	}
	// A reaction to the client's first message.
	if _, err := ct.React(ctx, tc.Store.ID.ToNonAD(), string(firstID), "👍"); err != nil {
		t.Fatal(err)
	}
	ev = tc.waitFor(t, "reaction", is[*events.Message]).(*events.Message)
	if r := ev.Message.GetReactionMessage(); r.GetText() != "👍" || r.GetKey().GetID() != string(firstID) {
		t.Fatalf("reaction: %+v", ev.Message)
	}
	// The older form, from the phone number with the LID beside it, is
	// decrypted on the same (LID) session.
	ct.SetAddressing(AddressingPN)
	pid, err := ct.Send(ctx, tc.Store.ID.ToNonAD(), "by number")
	if err != nil {
		t.Fatal(err)
	}
	ev = tc.waitFor(t, "a message by phone number", is[*events.Message]).(*events.Message)
	if ev.Info.ID != pid || ev.Info.Sender != ct.JID() || ev.Info.SenderAlt != ct.LID() || ev.Message.GetConversation() != "by number" {
		t.Fatalf("by phone number: %+v", ev.Info)
	}
	// Now that the contact has answered, the session is established: msg.
	// whatsmeow sends one-to-one messages to the LID only.
	resp, err := tc.SendMessage(ctx, to, &waE2EMessage{Conversation: ptr("third")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Chat != ct.LID() {
		t.Errorf("sent to %s, want the contact's LID %s", resp.Chat, ct.LID())
	}
	in := ct.Inbox()
	if last := in[len(in)-1]; last.ID != string(resp.ID) || last.Type != "msg" || last.Text() != "third" {
		t.Fatalf("after the answer: %+v", last)
	}
	_ = strings.TrimSpace
}

type waE2EMessage = waE2E.Message

func ptr[T any](v T) *T { return &v }
