package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/app"
	"waappliance/internal/wasim"
	"waappliance/internal/wgclient"
	"waappliance/peers"
	"waappliance/whatsapp"
)

// sandboxed serves dir in sandbox mode (the built-in wasim).
func sandboxed(t *testing.T, dir string) *testAppliance {
	t.Helper()
	return serveWith(t, dir, func(o *app.Options) { o.Sandbox = app.SandboxInProcess })
}

func newSandbox(t *testing.T) (*testAppliance, *wgclient.Client) {
	t.Helper()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := sandboxed(t, dir)
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1000, Burst: 1000, SendPerMinute: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	return ta, ta.client(t, c)
}

// eventually polls fn every 50 ms until it is true or 15 s pass.
func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type sessionJSON struct {
	Name, State, JID string
	LastError        string `json:"last_error"`
}

func getSession(t *testing.T, cl *wgclient.Client, name string) sessionJSON {
	var s sessionJSON
	r := do(t, cl, "GET", "/v1/sessions/"+name, nil)
	if r.Status != 200 || r.JSON(&s) != nil {
		t.Fatalf("get session: %d %s", r.Status, r.Body)
	}
	return s
}

// pairSession creates a session and pairs it through the API, playing the
// phone with the sandbox scan route.
func pairSession(t *testing.T, cl *wgclient.Client, name, phone string) sessionJSON {
	t.Helper()
	if r := do(t, cl, "POST", "/v1/sessions", map[string]string{"name": name}); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	wantError(t, do(t, cl, "GET", "/v1/sessions/"+name+"/qr", nil), 409, "not_pairing")
	if r := do(t, cl, "POST", "/v1/sessions/"+name+"/login", nil); r.Status != 202 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	eventually(t, "a QR code", func() bool { return do(t, cl, "GET", "/v1/sessions/"+name+"/qr", nil).Status == 200 })
	var qr struct {
		Code      string
		ExpiresAt time.Time `json:"expires_at"`
	}
	// whatsmeow's QR text since 2026 is a link a phone's camera opens.
	if do(t, cl, "GET", "/v1/sessions/"+name+"/qr", nil).JSON(&qr); !strings.HasPrefix(qr.Code, "https://wa.me/settings/linked_devices#2@") || qr.ExpiresAt.Before(time.Now()) {
		t.Fatalf("qr %+v", qr)
	}
	png, err := cl.DoWithHeader(context.Background(), "GET", "/v1/sessions/"+name+"/qr", nil, map[string]string{"Accept": "image/png"})
	if err != nil || png.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(string(png.Body), "\x89PNG") {
		t.Fatalf("qr as PNG: %v", err)
	}
	if r := do(t, cl, "POST", "/v1/sandbox/scan", map[string]string{"session": name, "phone": phone}); r.Status != 200 {
		t.Fatalf("scan: %d %s", r.Status, r.Body)
	}
	eventually(t, "connected", func() bool { return getSession(t, cl, name).State == "connected" })
	return getSession(t, cl, name)
}

type messageJSON struct {
	ID, Status, Error string
	History           []struct{ Status string }
}

func send(t *testing.T, cl *wgclient.Client, session, to, text string) messageJSON {
	t.Helper()
	var m messageJSON
	r := do(t, cl, "POST", "/v1/sessions/"+session+"/messages", map[string]string{"to": to, "text": text})
	if r.Status != 202 || r.JSON(&m) != nil || m.Status != "queued" || m.ID == "" {
		t.Fatalf("send: %d %s", r.Status, r.Body)
	}
	return m
}

func getMessage(t *testing.T, cl *wgclient.Client, session, id string) messageJSON {
	var m messageJSON
	r := do(t, cl, "GET", "/v1/sessions/"+session+"/messages/"+id, nil)
	if r.Status != 200 || r.JSON(&m) != nil {
		t.Fatalf("message: %d %s", r.Status, r.Body)
	}
	return m
}

type inboxMessage struct {
	ID, Text  string
	ReplyTo   string `json:"reply_to"`
	ReplyFrom string `json:"reply_from"`
}

func inbox(t *testing.T, cl *wgclient.Client, phone string) []inboxMessage {
	var out struct{ Messages []inboxMessage }
	r := do(t, cl, "GET", "/v1/sandbox/contacts/"+url.PathEscape(phone)+"/inbox", nil)
	if r.Status != 200 || r.JSON(&out) != nil {
		t.Fatalf("inbox: %d %s", r.Status, r.Body)
	}
	return out.Messages
}

func TestSessionPairSendReceiveAndRestart(t *testing.T) {
	ta, cl := newSandbox(t)
	var health struct{ Sandbox bool }
	if do(t, cl, "GET", "/v1/health", nil).JSON(&health); !health.Sandbox {
		t.Fatal("health does not say sandbox")
	}
	s := pairSession(t, cl, "shop", "+15550001")
	if !strings.HasPrefix(s.JID, "15550001:") {
		t.Fatalf("session JID %q", s.JID)
	}
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada", "read_after": "200ms"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	m := send(t, cl, "shop", "+15550002", "hello Ada, exactly this")
	eventually(t, "status read", func() bool { return getMessage(t, cl, "shop", m.ID).Status == "read" })
	var steps []string
	for _, h := range getMessage(t, cl, "shop", m.ID).History {
		steps = append(steps, h.Status)
	}
	if strings.Join(steps, ">") != "queued>sent>delivered>read" {
		t.Fatalf("history %v", steps)
	}
	in := inbox(t, cl, "+15550002")
	if len(in) != 1 || in[0].ID != m.ID || in[0].Text != "hello Ada, exactly this" {
		t.Fatalf("inbox %+v", in)
	}

	// The contact answers with a reply to our message; it lands in the event log.
	if r := do(t, cl, "POST", "/v1/sandbox/contacts/+15550002/messages", map[string]string{"session": "shop", "text": "got it", "reply_to": m.ID}); r.Status != 202 {
		t.Fatalf("contact send: %d %s", r.Status, r.Body)
	}
	var theirs string
	eventually(t, "the answer in /v1/events", func() bool {
		var out struct {
			Events []struct {
				Type string
				Data struct{ ID, Text, ReplyTo, From, Kind string }
			}
		}
		do(t, cl, "GET", "/v1/events?session=shop&limit=1000", nil).JSON(&out)
		for _, e := range out.Events {
			if e.Type == "message.received" && e.Data.Text == "got it" && e.Data.Kind == "text" && strings.HasPrefix(e.Data.From, "15550002@") {
				theirs = e.Data.ID
				return true
			}
		}
		return false
	})

	// A reply through the API quotes the message it answers, by the id the
	// API showed, with that message's sender: us for our own, the contact
	// for theirs.
	for _, q := range []struct{ id, from string }{{m.ID, "15550001@s.whatsapp.net"}, {theirs, "15550002@s.whatsapp.net"}} {
		var rep messageJSON
		r := do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "text": "replying", "reply_to": q.id})
		if r.Status != 202 || r.JSON(&rep) != nil {
			t.Fatalf("reply: %d %s", r.Status, r.Body)
		}
		eventually(t, "the reply at the contact", func() bool {
			for _, x := range inbox(t, cl, "+15550002") {
				if x.ID == rep.ID {
					if x.Text != "replying" || x.ReplyTo != q.id || x.ReplyFrom != q.from {
						t.Fatalf("the contact got %+v; want a quote of %s from %s", x, q.id, q.from)
					}
					return true
				}
			}
			return false
		})
	}
	// A reply to no message of this chat: 404.
	wantError(t, do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "text": "x", "reply_to": "3EB0NOSUCHMESSAGE"}), 404, "not_found")

	// Restart the appliance: the session reconnects without pairing again.
	dir := ta.dir
	ta.Close()
	ta2 := sandboxed(t, dir)
	cl2 := ta2.client(t, createdFromConfig(t, ta2, "boss", mustConfigRotated(t, dir)))
	eventually(t, "reconnected after restart", func() bool { return getSession(t, cl2, "shop").State == "connected" })
	if s2 := getSession(t, cl2, "shop"); s2.JID != s.JID {
		t.Fatalf("JID changed across restart: %s -> %s", s.JID, s2.JID)
	}
	m2 := send(t, cl2, "shop", "+15550002", "after restart")
	eventually(t, "delivered after restart", func() bool { return getMessage(t, cl2, "shop", m2.ID).Status == "read" })
	// The in-process simulator restarted too; its inbox starts empty.
	if in := inbox(t, cl2, "+15550002"); len(in) == 0 || in[len(in)-1].Text != "after restart" || in[len(in)-1].ID != m2.ID {
		t.Fatalf("inbox after restart %+v", in)
	}
}

// mustConfigRotated gives the admin a fresh key through the CLI (the first
// one's private key was never stored) and returns its config.
func mustConfigRotated(t *testing.T, dir string) string {
	t.Helper()
	_, cfg := mustCLI(t, dir, "peer", "rotate", "boss")
	return cfg
}

func TestQueuedWhileRefusedDeliveredInOrderOnce(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550003", "read_after": "never"})
	srv := ta.SandboxServer()
	srv.RefuseConnections(true)
	eventually(t, "disconnected", func() bool { return getSession(t, cl, "shop").State != "connected" })
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, send(t, cl, "shop", "+15550003", "queued "+string(rune('a'+i))).ID)
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range ids {
		if st := getMessage(t, cl, "shop", id).Status; st != "queued" {
			t.Fatalf("%s is %s while WhatsApp is unreachable", id, st)
		}
	}
	srv.RefuseConnections(false)
	eventually(t, "all five delivered", func() bool { return len(inbox(t, cl, "+15550003")) == 5 })
	in := inbox(t, cl, "+15550003")
	ct, _ := srv.Contact("+15550003")
	for i, m := range in {
		if m.ID != ids[i] || m.Text != "queued "+string(rune('a'+i)) {
			t.Fatalf("out of order at %d: %+v", i, in)
		}
		if n := ct.Deliveries(m.ID); n != 1 {
			t.Fatalf("%s delivered %d times", m.ID, n)
		}
	}
	for _, id := range ids {
		eventually(t, "delivered status", func() bool { return getMessage(t, cl, "shop", id).Status == "delivered" })
	}
}

func TestLoggedOutAtWhatsApp(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	ta.SandboxServer().Phone("+15550001").LogOut()
	eventually(t, "logged_out", func() bool { return getSession(t, cl, "shop").State == "logged_out" })
	var out struct{ Events []struct{ Type string } }
	do(t, cl, "GET", "/v1/events?session=shop&limit=1000", nil).JSON(&out)
	found := false
	for _, e := range out.Events {
		found = found || e.Type == "session.logged_out"
	}
	if !found {
		t.Fatal("no session.logged_out event")
	}
	wantError(t, do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "text": "x"}), 409, "logged_out")
}

func TestSendBadInputAndAccess(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	do(t, cl, "POST", "/v1/sessions", map[string]string{"name": "fresh"})
	ctx := context.Background()
	mk := func(name string, sessions []string, scopes ...peers.Scope) *wgclient.Client {
		c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: name, Scopes: scopes, Sessions: sessions, Rate: 1000, Burst: 1000})
		if err != nil {
			t.Fatal(err)
		}
		ta.Nudge()
		return ta.client(t, c)
	}
	reader := mk("reader", nil, peers.ScopeRead)
	other := mk("other", []string{"support"}, peers.ScopeSend, peers.ScopeRead)
	msg := func(to, text string) map[string]string { return map[string]string{"to": to, "text": text} }
	cases := []struct {
		name   string
		cl     *wgclient.Client
		path   string
		body   any
		status int
		code   string
	}{
		{"unknown session", cl, "/v1/sessions/nope/messages", msg("+15550002", "x"), 404, "not_found"},
		{"bad phone", cl, "/v1/sessions/shop/messages", msg("015123", "x"), 400, "invalid_argument"},
		{"not E.164", cl, "/v1/sessions/shop/messages", msg("4915123456789", "x"), 400, "invalid_argument"},
		{"empty text", cl, "/v1/sessions/shop/messages", msg("+15550002", "   "), 400, "invalid_argument"},
		{"oversized text", cl, "/v1/sessions/shop/messages", msg("+15550002", strings.Repeat("x", 20<<10)), 413, "too_large"},
		{"unknown field", cl, "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "txt": "x"}, 400, "unknown_field"},
		{"not paired", cl, "/v1/sessions/fresh/messages", msg("+15550002", "x"), 409, "not_paired"},
		{"no send scope", reader, "/v1/sessions/shop/messages", msg("+15550002", "x"), 403, "forbidden"},
		{"outside allow-list", other, "/v1/sessions/shop/messages", msg("+15550002", "x"), 404, "not_found"},
		{"duplicate session", cl, "/v1/sessions", map[string]string{"name": "shop"}, 409, "already_exists"},
		{"bad session name", cl, "/v1/sessions", map[string]string{"name": "Shop!"}, 400, "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantError(t, do(t, tc.cl, "POST", tc.path, tc.body), tc.status, tc.code) })
	}
	wantError(t, do(t, other, "GET", "/v1/sessions/shop", nil), 404, "not_found")
	var list struct{ Sessions []sessionJSON }
	do(t, other, "GET", "/v1/sessions", nil).JSON(&list)
	if len(list.Sessions) != 0 {
		t.Fatalf("allow-list leak: %+v", list)
	}

	// An unknown recipient fails the message with a clear status.
	m := send(t, cl, "shop", "+19990000000", "to nobody")
	eventually(t, "failed", func() bool { return getMessage(t, cl, "shop", m.ID).Status == "failed" })
	if e := getMessage(t, cl, "shop", m.ID).Error; !strings.Contains(e, "not on WhatsApp") {
		t.Fatalf("error %q", e)
	}

	// The same Idempotency-Key returns the original message, never a second send.
	body, _ := json.Marshal(msg("+15550002", "once"))
	hdr := func() *wgclient.Response {
		r, err := cl.DoWithHeader(ctx, "POST", "/v1/sessions/shop/messages", body, map[string]string{"Idempotency-Key": "order-42"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002"})
	r1, r2 := hdr(), hdr()
	var a, b messageJSON
	r1.JSON(&a)
	r2.JSON(&b)
	if r1.Status != 202 || r2.Status != 200 || a.ID != b.ID || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("idempotency: %d %s / %d %s", r1.Status, r1.Body, r2.Status, r2.Body)
	}
	eventually(t, "sent once", func() bool { return len(inbox(t, cl, "+15550002")) == 1 })
	time.Sleep(300 * time.Millisecond)
	if in := inbox(t, cl, "+15550002"); len(in) != 1 {
		t.Fatalf("idempotent send arrived %d times", len(in))
	}
}

func TestPairByPhoneCodeThroughAPI(t *testing.T) {
	ta, cl := newSandbox(t)
	do(t, cl, "POST", "/v1/sessions", map[string]string{"name": "shop"})
	wantError(t, do(t, cl, "POST", "/v1/sessions/shop/pair-code", map[string]string{"phone": "0151"}), 400, "invalid_argument")
	r := do(t, cl, "POST", "/v1/sessions/shop/pair-code", map[string]string{"phone": "+1 555 0505"})
	var pc struct{ Code string }
	if r.Status != 200 || r.JSON(&pc) != nil || len(pc.Code) != 9 {
		t.Fatalf("pair-code: %d %s", r.Status, r.Body)
	}
	if err := ta.SandboxServer().Phone("+15550505").EnterCode(pc.Code); err != nil {
		t.Fatal(err)
	}
	eventually(t, "connected", func() bool { return getSession(t, cl, "shop").State == "connected" })
	if s := getSession(t, cl, "shop"); !strings.HasPrefix(s.JID, "15550505:") {
		t.Fatalf("JID %s", s.JID)
	}
}

func TestSendBudgetPerMinute(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "bot", Scopes: []peers.Scope{peers.ScopeSend, peers.ScopeRead}, Rate: 1000, Burst: 1000, SendPerMinute: 2})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	bot := ta.client(t, c)
	send(t, bot, "shop", "+15550002", "one")
	send(t, bot, "shop", "+15550002", "two")
	r := do(t, bot, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "text": "three"})
	wantError(t, r, 429, "send_rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Reads are not limited by the message budget; another peer's budget is its own.
	if do(t, bot, "GET", "/v1/sessions", nil).Status != 200 {
		t.Fatal("read refused after the message budget ran out")
	}
	send(t, cl, "shop", "+15550002", "admin still sends")
}

func TestStateBoundToItsMode(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := sandboxed(t, dir)
	ta.Close()
	_, err := app.Open(context.Background(), app.Options{StateDir: dir, ListenPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := app.Open(context.Background(), app.Options{StateDir: dir, ListenPort: -1})
	defer a.Close()
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "sandbox mode") {
		t.Fatalf("a sandbox state served in real mode: %v", err)
	}
	// The peer commands work either way.
	mustCLI(t, dir, "peer", "add", "x", "--scopes", "read")
}

func TestSessionCLIThroughControlSocket(t *testing.T) {
	ta, cl := newSandbox(t)
	mustCLI(t, ta.dir, "session", "add", "support")
	_, list := mustCLI(t, ta.dir, "session", "list")
	if !strings.Contains(list, "support") || !strings.Contains(list, "new") {
		t.Fatalf("session list:\n%s", list)
	}
	// session login prints the QR and waits; the sandbox phone scans it meanwhile.
	done := make(chan string, 1)
	go func() {
		code, out, errOut := cliRun(t, ta.dir, "session", "login", "support", "--timeout", "30s")
		done <- fmt.Sprintf("exit %d\n%s\nstderr: %s", code, out, errOut)
	}()
	eventually(t, "a QR code", func() bool { return do(t, cl, "GET", "/v1/sessions/support/qr", nil).Status == 200 })
	time.Sleep(2 * time.Second) // the CLI polls every second; let it print the code first
	if r := do(t, cl, "POST", "/v1/sandbox/scan", map[string]string{"session": "support", "phone": "+15550777"}); r.Status != 200 {
		t.Fatalf("scan: %s", r.Body)
	}
	select {
	case out := <-done:
		if !strings.Contains(out, "Scan with WhatsApp") || !strings.Contains(out, "linked: session support") {
			t.Fatalf("session login printed:\n%s", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("session login did not return")
	}
	mustCLI(t, ta.dir, "session", "logout", "support")
	if s := getSession(t, cl, "support"); s.State != "logged_out" {
		t.Fatalf("after CLI logout: %s", s.State)
	}
	mustCLI(t, ta.dir, "session", "remove", "support")
	wantError(t, do(t, cl, "GET", "/v1/sessions/support", nil), 404, "not_found")
	// The audit log names the CLI.
	_, audit := mustCLI(t, ta.dir, "audit", "--peer", "local-cli")
	if strings.Count(audit, "/v1/sessions") < 3 {
		t.Fatalf("audit of the control socket:\n%s", audit)
	}
}

// errorMessage returns the message of an API error body.
func errorMessage(t *testing.T, r *wgclient.Response) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	if err := r.JSON(&b); err != nil {
		t.Fatalf("error body: %v: %s", err, r.Body)
	}
	return b.Error.Message
}

// TestReplacedSessionTakenBackByLogin: a session another client took over
// does not reconnect on its own (not even after a restart) and says what
// works; new sends fail fast with 409 session_replaced while a message
// queued before stays queued; POST login takes the session back without
// pairing, and the queued message is delivered once.
func TestReplacedSessionTakenBackByLogin(t *testing.T) {
	ta, cl := newSandbox(t)
	s := pairSession(t, cl, "shop", "+15550001")
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "read_after": "never"})
	srv := ta.SandboxServer()
	dropped := make(chan string, 10)
	srv.OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventSendDropped {
			dropped <- e.MessageID
		}
	})
	srv.DropSends(true) // the send is in flight, unacked, when the replace comes
	queued := send(t, cl, "shop", "+15550002", "queued before the replace")
	select {
	case id := <-dropped:
		if id != queued.ID {
			t.Fatalf("dropped %s, want %s", id, queued.ID)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the message never reached wasim")
	}
	jid, err := types.ParseJID(s.JID)
	if err != nil {
		t.Fatal(err)
	}
	if !srv.Replace(jid) {
		t.Fatal("wasim has no connection to replace")
	}
	eventually(t, "replaced", func() bool { return getSession(t, cl, "shop").State == "replaced" })
	if e := getSession(t, cl, "shop").LastError; !strings.Contains(e, "POST /v1/sessions/shop/login") || !strings.Contains(e, "not reconnecting on its own") {
		t.Fatalf("last_error does not say what works: %q", e)
	}
	r := do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "text": "while replaced"})
	wantError(t, r, 409, "session_replaced")
	if msg := errorMessage(t, r); !strings.Contains(msg, "/login") {
		t.Fatalf("409 does not say what works: %q", msg)
	}

	// No reconnect on its own, also not after a restart of the appliance.
	dir := ta.dir
	ta.Close()
	ta = sandboxed(t, dir)
	cl = ta.client(t, createdFromConfig(t, ta, "boss", mustConfigRotated(t, dir)))
	time.Sleep(2 * time.Second)
	if st := getSession(t, cl, "shop").State; st != "replaced" {
		t.Fatalf("a replaced session is %s after a restart", st)
	}
	if m := getMessage(t, cl, "shop", queued.ID); m.Status != "queued" {
		t.Fatalf("the queued message is %s (%s)", m.Status, m.Error)
	}

	// Take it back: no pairing, same device; the queued message goes out once.
	if r := do(t, cl, "POST", "/v1/sessions/shop/login", nil); r.Status != 202 {
		t.Fatalf("login on a replaced session: %d %s", r.Status, r.Body)
	}
	eventually(t, "connected again", func() bool { return getSession(t, cl, "shop").State == "connected" })
	if got := getSession(t, cl, "shop").JID; got != s.JID {
		t.Fatalf("JID %s after taking back, want %s (no new pairing)", got, s.JID)
	}
	eventually(t, "the queued message delivered", func() bool { return getMessage(t, cl, "shop", queued.ID).Status == "delivered" })
	in := inbox(t, cl, "+15550002")
	if len(in) != 1 || in[0].ID != queued.ID || in[0].Text != "queued before the replace" {
		t.Fatalf("inbox %+v", in)
	}
	send(t, cl, "shop", "+15550002", "after taking it back")
}

// TestIdempotentReplayIsFreeAndOutlivesLogout: a replay with the same
// Idempotency-Key returns the original message (200, Idempotent-Replayed)
// without spending the message budget, and also after a logout.
func TestIdempotentReplayIsFreeAndOutlivesLogout(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002"})
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "bot", Scopes: []peers.Scope{peers.ScopeSend, peers.ScopeRead}, Rate: 1000, Burst: 1000, SendPerMinute: 1})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	bot := ta.client(t, c)
	post := func(c *wgclient.Client, key, text string) (*wgclient.Response, messageJSON) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"to": "+15550002", "text": text})
		r, err := c.DoWithHeader(context.Background(), "POST", "/v1/sessions/shop/messages", body, map[string]string{"Idempotency-Key": key})
		if err != nil {
			t.Fatal(err)
		}
		var m messageJSON
		r.JSON(&m)
		return r, m
	}
	r1, m1 := post(bot, "order-1", "one")
	if r1.Status != 202 {
		t.Fatalf("first send: %d %s", r1.Status, r1.Body)
	}
	for i := range 3 {
		r, m := post(bot, "order-1", "one")
		if r.Status != 200 || m.ID != m1.ID || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %d: %d %s", i, r.Status, r.Body)
		}
	}
	r, _ := post(bot, "order-2", "two")
	wantError(t, r, 429, "send_rate_limited") // the budget of 1 went to the one real send
	r, _ = post(bot, "order-1", "not one")
	wantError(t, r, 422, "idempotency_conflict")

	// After a logout the replay still returns the original message.
	ra, ma := post(cl, "admin-1", "from the admin")
	if ra.Status != 202 {
		t.Fatalf("admin send: %d %s", ra.Status, ra.Body)
	}
	if r := do(t, cl, "POST", "/v1/sessions/shop/logout", nil); r.Status != 200 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r, m := post(cl, "admin-1", "from the admin"); r.Status != 200 || m.ID != ma.ID || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after logout: %d %s", r.Status, r.Body)
	}
	if r, m := post(bot, "order-1", "one"); r.Status != 200 || m.ID != m1.ID {
		t.Fatalf("bot replay after logout: %d %s", r.Status, r.Body)
	}
	r, _ = post(cl, "admin-2", "new after logout")
	wantError(t, r, 409, "logged_out")
}

// TestLoginUnreachableSaysSo: a login that cannot reach WhatsApp answers
// 502 with a clean message (the dial error stays in the log).
func TestLoginUnreachableSaysSo(t *testing.T) {
	ta, cl := newSandbox(t)
	do(t, cl, "POST", "/v1/sessions", map[string]string{"name": "shop"})
	ta.SandboxServer().RefuseConnections(true)
	r := do(t, cl, "POST", "/v1/sessions/shop/login", nil)
	wantError(t, r, 502, "whatsapp_unreachable")
	if msg := errorMessage(t, r); msg != whatsapp.ErrUnreachable.Error() {
		t.Fatalf("502 message %q, want %q", msg, whatsapp.ErrUnreachable.Error())
	}
	s := getSession(t, cl, "shop")
	if s.State != "new" || strings.Contains(s.LastError, "127.0.0.1") || strings.Contains(s.LastError, "dial") {
		t.Fatalf("session after the failed login: %+v", s)
	}
}

// TestOutboxPrunedWithEvents: the hourly pruner also deletes messages that
// stopped moving (read, delivered, failed) longer ago than the retention,
// with their Idempotency-Keys; queued messages stay.
func TestOutboxPrunedWithEvents(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	const retention = 2 * time.Second
	ta := serveWith(t, dir, func(o *app.Options) { o.Sandbox = app.SandboxInProcess; o.Retention = retention })
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1000, Burst: 1000, SendPerMinute: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	cl := ta.client(t, c)
	pairSession(t, cl, "shop", "+15550001")
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "read_after": "100ms"})
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550003", "read_after": "never"})
	keyed := func(key, to, text string) (*wgclient.Response, messageJSON) {
		body, _ := json.Marshal(map[string]string{"to": to, "text": text})
		r, err := cl.DoWithHeader(context.Background(), "POST", "/v1/sessions/shop/messages", body, map[string]string{"Idempotency-Key": key})
		if err != nil {
			t.Fatal(err)
		}
		var m messageJSON
		r.JSON(&m)
		return r, m
	}
	_, read := keyed("k-read", "+15550002", "will be read")
	delivered := send(t, cl, "shop", "+15550003", "delivered, never read")
	eventually(t, "read", func() bool { return getMessage(t, cl, "shop", read.ID).Status == "read" })
	eventually(t, "delivered", func() bool { return getMessage(t, cl, "shop", delivered.ID).Status == "delivered" })
	srv := ta.SandboxServer()
	srv.RefuseConnections(true)
	eventually(t, "disconnected", func() bool { return getSession(t, cl, "shop").State != "connected" })
	queued := send(t, cl, "shop", "+15550002", "stays queued")
	time.Sleep(retention + 500*time.Millisecond)
	if _, err := ta.Events().Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantError(t, do(t, cl, "GET", "/v1/sessions/shop/messages/"+read.ID, nil), 404, "not_found")
	wantError(t, do(t, cl, "GET", "/v1/sessions/shop/messages/"+delivered.ID, nil), 404, "not_found")
	if m := getMessage(t, cl, "shop", queued.ID); m.Status != "queued" {
		t.Fatalf("queued message is %s after pruning", m.Status)
	}
	// The key went with its message: the same key now queues a new one.
	if r, m := keyed("k-read", "+15550002", "will be read"); r.Status != 202 || m.ID == read.ID {
		t.Fatalf("key of a pruned message: %d %s", r.Status, r.Body)
	}
}
