package wasim

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func TestDroppedConnectionAutoReconnects(t *testing.T) {
	s := newServer(t)
	tc := newLenientClient(t, s)
	pairByQR(t, s, tc, "15550101")
	if !s.DropConnection(*tc.Store.ID) {
		t.Fatal("no connection to drop")
	}
	tc.waitFor(t, "Disconnected", is[*events.Disconnected])
	tc.waitFor(t, "Connected again (auto-reconnect)", is[*events.Connected])
}

func TestOfflineMessagesDeliveredAtLogin(t *testing.T) {
	s := newServer(t)
	tc := newLenientClient(t, s)
	pairByQR(t, s, tc, "15550103")
	// Messages sent to the device while it cannot connect arrive after it does.
	ct, _ := s.Contact("15550102")
	s.RefuseConnections(true)
	tc.waitFor(t, "Disconnected", is[*events.Disconnected])
	id, err := ct.Send(context.Background(), tc.Store.ID.ToNonAD(), "while you were away")
	if err != nil {
		t.Fatal(err)
	}
	s.RefuseConnections(false)
	ev := tc.waitFor(t, "queued message", is[*events.Message]).(*events.Message)
	if ev.Info.ID != id || ev.Message.GetConversation() != "while you were away" {
		t.Fatalf("got %+v", ev.Message)
	}
}

func TestReplacedAndLoggedOut(t *testing.T) {
	s := newServer(t)
	tc := newLenientClient(t, s)
	pairByQR(t, s, tc, "15550201")
	s.Replace(*tc.Store.ID)
	tc.waitFor(t, "StreamReplaced", is[*events.StreamReplaced])

	tc2 := newLenientClient(t, s)
	pairByQR(t, s, tc2, "15550202")
	s.Phone("15550202").LogOut()
	lo := tc2.waitFor(t, "LoggedOut", is[*events.LoggedOut]).(*events.LoggedOut)
	if lo.OnConnect {
		t.Fatal("logged out at connect, want during the session")
	}
	// whatsmeow dispatches LoggedOut before it deletes the device store.
	for deadline := time.Now().Add(10 * time.Second); tc2.Store.ID != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("client kept its device after device_removed")
		}
	}
}

func TestFailedAndSwallowedSends(t *testing.T) {
	s := newServer(t)
	tc := newLenientClient(t, s)
	pairByQR(t, s, tc, "15550301")
	s.Contact("15550302")
	to := types.NewJID("15550302", types.DefaultUserServer)
	s.FailSends(479)
	_, err := tc.SendMessage(context.Background(), to, &waE2E.Message{Conversation: proto.String("refused")})
	if err == nil || err.Error() != "server returned error 479" {
		t.Fatalf("refused send: %v", err)
	}
	s.DropSends(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := tc.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("swallowed")}); err == nil {
		t.Fatal("a send without an ack succeeded")
	}
	s.DropSends(false)
	s.DelayAcks(300 * time.Millisecond)
	t0 := time.Now()
	if _, err := tc.SendMessage(context.Background(), to, &waE2E.Message{Conversation: proto.String("slow ack")}); err != nil {
		t.Fatal(err)
	}
	if time.Since(t0) < 300*time.Millisecond {
		t.Fatal("the ack was not delayed")
	}
	s.DelayAcks(0)
	if _, err := tc.SendMessage(context.Background(), to, &waE2E.Message{Conversation: proto.String("normal again")}); err != nil {
		t.Fatal(err)
	}
}

func TestManySessions(t *testing.T) {
	// 20 sessions, paired 4 at a time: enough to show one server holds many
	// without starving a 2-core CI machine that runs other packages' tests
	// at the same time. The benchmark brings up 100.
	n := 20
	if testing.Short() {
		n = 10
	}
	sem := make(chan struct{}, 4)
	s := newServer(t)
	ct, _ := s.Contact("15559999")
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = newLenientClient(t, s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, tc := range clients {
		wg.Add(1)
		go func(i int, tc *testClient) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pairByQR(t, s, tc, fmt.Sprintf("1555%04d", i))
			_, err := tc.SendMessage(context.Background(), ct.JID(), &waE2E.Message{Conversation: proto.String(fmt.Sprint("from ", i))})
			errs <- err
		}(i, tc)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(ct.Inbox()); got != n {
		t.Fatalf("contact received %d messages from %d clients", got, n)
	}
}

func TestPairByPhoneCode(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	qr, err := tc.GetQRChannel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Connect(); err != nil {
		t.Fatal(err)
	}
	<-qr // the connection is up
	code, err := tc.PairPhone(context.Background(), "+1 555 0404", true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("code %q", code)
	}
	if err := s.Phone("15550404").EnterCode(code); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "PairSuccess", is[*events.PairSuccess])
	tc.waitFor(t, "Connected", is[*events.Connected])
	if tc.Store.ID == nil || tc.Store.ID.User != "15550404" {
		t.Fatalf("device %v", tc.Store.ID)
	}
}

func TestMediaBothWays(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550601")
	ct, _ := s.Contact("15550602")
	ctx := context.Background()
	img := bytes.Repeat([]byte("not really a png "), 500)
	up, err := tc.Upload(ctx, img, whatsmeow.MediaImage)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.SendMessage(ctx, ct.JID(), &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, Mimetype: proto.String("image/png"),
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), Caption: proto.String("look")}})
	if err != nil {
		t.Fatal(err)
	}
	in := ct.Inbox()
	got, err := ct.Image(in[len(in)-1])
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("contact decrypted %d bytes, %v", len(got), err)
	}
	// And back: the contact sends an image the client downloads.
	photo := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 3000)
	id, err := ct.SendImage(ctx, tc.Store.ID.ToNonAD(), photo, "image/png", "from Ada")
	if err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "image", is[*events.Message]).(*events.Message)
	if ev.Info.ID != id || ev.Message.GetImageMessage().GetCaption() != "from Ada" {
		t.Fatalf("got %+v", ev.Message)
	}
	data, err := tc.Download(ctx, ev.Message.GetImageMessage())
	if err != nil || !bytes.Equal(data, photo) {
		t.Fatalf("client downloaded %d bytes: %v", len(data), err)
	}
}

// TestRetryReceiptResends breaks the client's Signal session with a contact
// so that it cannot decrypt the contact's next message. whatsmeow answers
// with retry receipts; the contact resends as a phone does — first on its
// session, then on a new one from the keys the second receipt carries — and
// the client finally receives the message under its original id.
func TestRetryReceiptResends(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550701")
	ct, _ := s.Contact("15550702")
	ctx := context.Background()
	retries := make(chan Event, 10)
	s.OnEvent(func(e Event) {
		if e.Kind == EventRetryRequested {
			retries <- e
		}
	})
	me := tc.Store.ID.ToNonAD()
	first, err := ct.Send(ctx, me, "first")
	if err != nil {
		t.Fatal(err)
	}
	if ev := tc.waitFor(t, "first message", is[*events.Message]).(*events.Message); ev.Info.ID != first {
		t.Fatalf("got %s, want %s", ev.Info.ID, first)
	}
	// Forget the session: the contact's next prekey message names a one-time
	// prekey the client has already used up.
	// The client keeps it under the contact's LID, which the contact writes from.
	if err := tc.Store.Sessions.DeleteSession(ctx, ct.LID().SignalAddress().String()); err != nil {
		t.Fatal(err)
	}
	second, err := ct.Send(ctx, me, "second")
	if err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "the resent message", is[*events.Message]).(*events.Message)
	if ev.Info.ID != second || ev.Message.GetConversation() != "second" {
		t.Fatalf("got %s %q, want %s \"second\"", ev.Info.ID, ev.Message.GetConversation(), second)
	}
	if len(retries) == 0 {
		t.Fatal("the message arrived without a retry receipt: the session was not broken")
	}
	for len(retries) > 0 {
		if e := <-retries; e.MessageID != second || e.Contact != ct.JID() {
			t.Fatalf("retry event %+v", e)
		}
	}
}

// TestRetryRequestedAfterRestart: the contact asks again for a message the
// client sent, once the client has restarted (a new whatsmeow.Client on the
// same store, whose memory of recent sends is empty). The client answers
// only from what GetMessageForRetry gives it; the contact then has the
// message twice (Deliveries) and lists it once, with its original text.
func TestRetryRequestedAfterRestart(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550711")
	ct, _ := s.Contact("15550712")
	ctx := context.Background()
	tokens := make(chan struct{}, 1)
	s.OnEvent(func(e Event) {
		if e.Kind == EventPrivacyTokens {
			select {
			case tokens <- struct{}{}:
			default:
			}
		}
	})
	resp, err := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{Conversation: proto.String("keep me")})
	if err != nil {
		t.Fatal(err)
	}
	id := string(resp.ID)
	if ct.Deliveries(id) != 1 {
		t.Fatalf("deliveries %d", ct.Deliveries(id))
	}
	// The client issues a privacy token in the background after a first
	// send; it must have its answer before the socket closes. An iq sent
	// after it is answered after it, on the same ordered stream.
	select {
	case <-tokens:
	case <-time.After(10 * time.Second):
		t.Fatal("no privacy token issued after the first send")
	}
	if _, err := tc.IsOnWhatsApp(ctx, []string{"+15550712"}); err != nil {
		t.Fatal(err)
	}
	tc.Disconnect()

	asked := make(chan types.MessageID, 1)
	cli := whatsmeow.NewClient(tc.Store, failLog{t: t, module: "restarted", ended: new(testEnd)})
	s.Prepare(cli)
	cli.GetMessageForRetry = func(requester, to types.JID, mid types.MessageID) *waE2E.Message {
		asked <- mid
		if mid != resp.ID {
			return nil
		}
		return &waE2E.Message{Conversation: proto.String("keep me")}
	}
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(e any) {
		if _, ok := e.(*events.Connected); ok {
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Disconnect)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted client did not connect")
	}
	if err := ct.RequestRetry(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-asked:
		if got != resp.ID {
			t.Fatalf("asked for %s, want %s", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client never looked the message up")
	}
	deadline := time.Now().Add(10 * time.Second)
	for ct.Deliveries(id) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ct.Deliveries(id); n != 2 {
		t.Fatalf("deliveries after the retry: %d, want 2", n)
	}
	if in := ct.Inbox(); len(in) != 1 || in[0].ID != id || in[0].Text() != "keep me" {
		t.Fatalf("inbox %+v", in)
	}
	if err := ct.RequestRetry(ctx, "3EB0NOTSENT"); err == nil {
		t.Fatal("a retry of a message the contact never got")
	}
}

// TestUndecryptableUntilRetried: the contact's first message cannot be
// decrypted (SendUndecryptable); the client reports it undecryptable, asks
// again with a retry receipt, and then receives it under the same id.
func TestUndecryptableUntilRetried(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550721")
	ct, _ := s.Contact("15550722")
	retries := make(chan Event, 10)
	s.OnEvent(func(e Event) {
		if e.Kind == EventRetryRequested {
			retries <- e
		}
	})
	id, err := ct.SendUndecryptable(context.Background(), tc.Store.ID.ToNonAD(), "lost first")
	if err != nil {
		t.Fatal(err)
	}
	u := tc.waitFor(t, "undecryptable", func(e any) bool { _, ok := e.(*events.UndecryptableMessage); return ok }).(*events.UndecryptableMessage)
	if u.Info.ID != id || u.Info.Sender != ct.LID() {
		t.Fatalf("undecryptable %+v", u.Info)
	}
	ev := tc.waitFor(t, "the message after the retry", is[*events.Message]).(*events.Message)
	if ev.Info.ID != id || ev.Message.GetConversation() != "lost first" {
		t.Fatalf("got %s %q", ev.Info.ID, ev.Message.GetConversation())
	}
	select {
	case e := <-retries:
		if e.MessageID != id {
			t.Fatalf("retry for %s", e.MessageID)
		}
	default:
		t.Fatal("delivered without a retry receipt")
	}
	// Again, now that the client has a session with the contact.
	id2, err := ct.SendUndecryptable(context.Background(), tc.Store.ID.ToNonAD(), "lost again")
	if err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "undecryptable on a session", func(e any) bool {
		u, ok := e.(*events.UndecryptableMessage)
		return ok && u.Info.ID == id2
	})
	if ev := tc.waitFor(t, "the second after its retry", is[*events.Message]).(*events.Message); ev.Info.ID != id2 || ev.Message.GetConversation() != "lost again" {
		t.Fatalf("got %s %q", ev.Info.ID, ev.Message.GetConversation())
	}
}

// TestUndecryptableUntilThePhoneAnswers: the contact's phone ignores retry
// receipts, so the client gets the message it could not decrypt only by
// asking its own phone (whatsmeow's AutomaticMessageRerequestFromPhone),
// which answers with the message under its id.
func TestUndecryptableUntilThePhoneAnswers(t *testing.T) {
	defer func(d time.Duration) { whatsmeow.RequestFromPhoneDelay = d }(whatsmeow.RequestFromPhoneDelay)
	whatsmeow.RequestFromPhoneDelay = 100 * time.Millisecond
	s := newServer(t)
	tc := newClient(t, s)
	tc.AutomaticMessageRerequestFromPhone = true
	asked := make(chan struct{}, 1)
	s.OnEvent(func(e Event) {
		if e.Kind == EventPhoneResend {
			select {
			case asked <- struct{}{}:
			default:
			}
		}
	})
	pairByQR(t, s, tc, "15550731")
	ct, _ := s.Contact("15550732")
	ct.IgnoreRetries(true)
	id, err := ct.SendUndecryptable(context.Background(), tc.Store.ID.ToNonAD(), "from the phone")
	if err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "undecryptable", func(e any) bool { u, ok := e.(*events.UndecryptableMessage); return ok && u.Info.ID == id })
	ev := tc.waitFor(t, "the message from the phone", is[*events.Message]).(*events.Message)
	if ev.Info.ID != id || ev.Message.GetConversation() != "from the phone" || ev.UnavailableRequestID == "" || ev.Info.Chat != ct.LID() {
		t.Fatalf("got %+v %q (request %q)", ev.Info, ev.Message.GetConversation(), ev.UnavailableRequestID)
	}
	select {
	case <-asked:
	default:
		t.Fatal("the message came without a request to the phone")
	}
}

// TestTemporaryBan: a banned account's connection drops, and its next
// login gets <failure reason="402"> with the code and the seconds left,
// which whatsmeow reports as TemporaryBan; once lifted, it logs in again.
func TestTemporaryBan(t *testing.T) {
	s := newServer(t)
	tc := newLenientClient(t, s)
	pairByQR(t, s, tc, "15550111")
	s.SetFaults(Faults{TemporaryBan: &BanFault{Phone: "+15550111", Code: 102, ExpiryMS: 90_000}})
	ban := tc.waitFor(t, "TemporaryBan", is[*events.TemporaryBan]).(*events.TemporaryBan)
	if ban.Code != events.TempBanBlockedByUsers || ban.Expire <= 85*time.Second || ban.Expire > 90*time.Second {
		t.Fatalf("ban %+v, want code 102 and about 90 s", ban)
	}
	s.TemporaryBan("15550111", 0, 0)
	tc.Disconnect()
	if err := tc.Connect(); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "Connected after the ban", is[*events.Connected])
}
