package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/events"
	"waappliance/internal/wgclient"
	"waappliance/peers"
	"waappliance/webhooks"
)

// tunnelReceiver is an HTTP server on a client peer's own tunnel address,
// as a receiving app on its wg-quick interface: it records deliveries.
type tunnelReceiver struct {
	mu   sync.Mutex
	reqs []hookReq
	srv  *http.Server
}

type hookReq struct {
	ID, TS, Sig string
	Body        []byte
	Event       events.Event
}

func listenHooks(t *testing.T, cl *wgclient.Client, port uint16) *tunnelReceiver {
	t.Helper()
	ln, err := cl.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	rc := &tunnelReceiver{}
	rc.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hr := hookReq{ID: r.Header.Get("webhook-id"), TS: r.Header.Get("webhook-timestamp"), Sig: r.Header.Get("webhook-signature"), Body: b}
		json.Unmarshal(b, &hr.Event)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, hr)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go rc.srv.Serve(ln)
	t.Cleanup(func() { rc.srv.Close() })
	return rc
}

func (rc *tunnelReceiver) got() []hookReq {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookReq(nil), rc.reqs...)
}

// checkDelivered: every id of want arrived, in order, no gap, each signed
// with secret; a repeat only under its own webhook-id. It returns the
// number of repeats.
func checkDelivered(t *testing.T, reqs []hookReq, want []int64, secret string) int {
	t.Helper()
	var ids []int64
	repeats := 0
	for _, r := range reqs {
		if r.ID != strconv.FormatInt(r.Event.ID, 10) {
			t.Fatalf("webhook-id %q for event %d", r.ID, r.Event.ID)
		}
		ts, _ := strconv.ParseInt(r.TS, 10, 64)
		if !webhooks.Verify(secret, r.Sig, r.ID, ts, r.Body) {
			t.Fatalf("event %s: signature does not verify", r.ID)
		}
		if len(ids) > 0 && ids[len(ids)-1] == r.Event.ID {
			repeats++
			continue
		}
		ids = append(ids, r.Event.ID)
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("delivered %d events %v\nwant %d %v", len(ids), ids, len(want), want)
	}
	return repeats
}

func createHook(t *testing.T, cl *wgclient.Client, url string, evs ...string) webhooks.Created {
	t.Helper()
	r := do(t, cl, "POST", "/v1/webhooks", map[string]any{"url": url, "events": evs})
	if r.Status != 201 {
		t.Fatalf("create webhook: %d %s", r.Status, r.Body)
	}
	var c webhooks.Created
	if err := r.JSON(&c); err != nil || c.Secret == "" {
		t.Fatalf("created: %v %s", err, r.Body)
	}
	return c
}

// TestWebhooksThroughTheTunnel: a receiver on a client peer's tunnel
// address is down (nothing listens) while 300 events are appended; once
// it listens, every event arrives through the WireGuard tunnel in order,
// with no gap and no repeat, signed per Standard Webhooks. A URL on
// another peer's address (or the appliance's, or outside the tunnel) is
// refused with 400, another peer does not see the webhook, and its state
// and lag show through the API.
func TestWebhooksThroughTheTunnel(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	sched := make([]time.Duration, 1000)
	for i := range sched {
		sched[i] = 20 * time.Millisecond
	}
	ta := serveWith(t, dir, func(o *app.Options) { o.NoWhatsApp = true; o.WebhookSchedule = sched })
	ctx := context.Background()
	c := ta.addPeer(t, "app", peers.ScopeRead)
	other := ta.addPeer(t, "other", peers.ScopeRead)
	cl, ocl := ta.client(t, c), ta.client(t, other)

	for _, u := range []string{
		fmt.Sprintf("http://%s:8080/wa", other.Peer.Addr),
		fmt.Sprintf("http://%s/wa", ta.TunnelAddr()),
		"http://127.0.0.1:8080/wa",
		"https://example.org/wa",
	} {
		r := do(t, cl, "POST", "/v1/webhooks", map[string]any{"url": u})
		if r.Status != 400 {
			t.Fatalf("webhook to %s: %d %s, want 400", u, r.Status, r.Body)
		}
	}
	hook := createHook(t, cl, fmt.Sprintf("http://%s:8080/wa", c.Peer.Addr))
	if r := do(t, ocl, "GET", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10), nil); r.Status != 404 {
		t.Fatalf("another peer's view of the webhook: %d", r.Status)
	}

	var want []int64
	for i := range 300 {
		e, err := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	eventually(t, "failed attempts while down", func() bool {
		var s webhooks.Subscription
		r := do(t, cl, "GET", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10), nil)
		return r.JSON(&s) == nil && s.Attempts >= 2 && s.Lag != nil && s.Lag.Events == 300 && s.LastError != ""
	})
	rc := listenHooks(t, cl, 8080)
	eventually(t, "all delivered", func() bool { return len(rc.got()) >= 300 })
	if n := checkDelivered(t, rc.got(), want, hook.Secret); n != 0 {
		t.Fatalf("%d repeats in a clean run", n)
	}
	var s webhooks.Subscription
	// The receiver counts a delivery before its 2xx is committed.
	eventually(t, "the last delivery committed", func() bool {
		r := do(t, cl, "GET", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10), nil)
		return r.JSON(&s) == nil && s.Cursor == want[len(want)-1]
	})
	r := do(t, cl, "GET", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10), nil)
	if err := r.JSON(&s); err != nil || s.Lag.Events != 0 || s.Cursor != want[len(want)-1] || s.LastSuccessAt == nil || s.Attempts != 0 {
		t.Fatalf("after catch-up: %s", r.Body)
	}

	// rewind replays; a cursor out of retention is 410 with the oldest id.
	r = do(t, cl, "POST", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10)+"/rewind", map[string]any{"after": want[249]})
	if r.Status != 200 {
		t.Fatalf("rewind: %d %s", r.Status, r.Body)
	}
	eventually(t, "replayed", func() bool { return len(rc.got()) >= 350 })
	if r = do(t, cl, "POST", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10)+"/rewind", map[string]any{"after": want[299] + 5}); r.Status != 400 {
		t.Fatalf("rewind past the newest event: %d %s", r.Status, r.Body)
	}
	if r = do(t, cl, "POST", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10)+"/rewind", map[string]any{"after": -1}); r.Status != 400 {
		t.Fatalf("rewind to -1: %d %s", r.Status, r.Body)
	}

	if got := rc.got()[300:]; got[0].Event.ID != want[250] || got[49].Event.ID != want[299] {
		t.Fatalf("replay from %d..%d", got[0].Event.ID, got[49].Event.ID)
	}
	// test sends one event outside the log
	r = do(t, cl, "POST", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10)+"/test", nil)
	var tr webhooks.TestResult
	if r.Status != 200 || r.JSON(&tr) != nil || tr.Status != 204 {
		t.Fatalf("test: %d %s", r.Status, r.Body)
	}
	r = do(t, cl, "GET", "/v1/webhooks", nil)
	var l struct{ Webhooks []webhooks.Subscription }
	if r.JSON(&l) != nil || len(l.Webhooks) != 1 {
		t.Fatalf("list: %s", r.Body)
	}
	if r = do(t, ocl, "GET", "/v1/webhooks", nil); r.JSON(&l) != nil || len(l.Webhooks) != 0 {
		t.Fatalf("another peer's list: %s", r.Body)
	}
	if r = do(t, cl, "DELETE", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10), nil); r.Status != 204 {
		t.Fatalf("delete: %d", r.Status)
	}
}

// TestWebhookCLI: the webhook commands through the control socket: add
// for a peer (its secret printed once, deliveries through the tunnel
// verify with it), a refused URL, list, disable (nothing delivered),
// enable (resumes from the cursor), and a removed peer takes its webhook
// with it and receives nothing more.
func TestWebhookCLI(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) { o.NoWhatsApp = true })
	ctx := context.Background()
	c := ta.addPeer(t, "app", peers.ScopeRead)
	ta.addPeer(t, "other", peers.ScopeRead)
	cl := ta.client(t, c)
	rc := listenHooks(t, cl, 9000)
	// The appliance learns the client's endpoint from its first
	// handshake (a real client: wg-quick's PersistentKeepalive).
	do(t, cl, "GET", "/v1/whoami", nil)

	if code, _, e := cliRun(t, dir, "webhook", "add", "app", "http://10.77.0.3:9000/"); code == 0 || !strings.Contains(e, "not your tunnel address") {
		t.Fatalf("add to another peer's address: exit %d: %s", code, e)
	}
	_, out := mustCLI(t, dir, "webhook", "add", "app", fmt.Sprintf("http://%s:9000/in", c.Peer.Addr), "--events", "message.received")
	secret := ""
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "secret: "); ok {
			secret = s
		}
	}
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("add printed %q", out)
	}
	if _, out := mustCLI(t, dir, "webhook", "list"); !strings.Contains(out, "enabled") || !strings.Contains(out, "app") {
		t.Fatalf("list: %s", out)
	}
	e1, _ := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": 1})
	eventually(t, "first delivery", func() bool { return len(rc.got()) == 1 })
	checkDelivered(t, rc.got(), []int64{e1.ID}, secret)

	mustCLI(t, dir, "webhook", "disable", "1")
	e2, _ := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": 2})
	if _, out := mustCLI(t, dir, "webhook", "show", "1"); !strings.Contains(out, `"disabled"`) {
		t.Fatalf("show: %s", out)
	}
	mustCLI(t, dir, "webhook", "enable", "1")
	eventually(t, "resumed", func() bool { return len(rc.got()) == 2 })
	checkDelivered(t, rc.got(), []int64{e1.ID, e2.ID}, secret)

	// Outside the tunnel: only once an admin allowed it, https only, and
	// never to a non-public address.
	if code, _, e := cliRun(t, dir, "webhook", "add", "app", "https://hooks.example.org/wa"); code == 0 || !strings.Contains(e, "--webhooks-external") {
		t.Fatalf("external without permission: exit %d: %s", code, e)
	}
	mustCLI(t, dir, "peer", "set", "app", "--webhooks-external")
	if p, _ := ta.Peers().Get("app"); !p.WebhooksExternal {
		t.Fatal("peer set --webhooks-external did not apply")
	}
	for _, u := range []string{"https://127.0.0.1/wa", "https://169.254.169.254/latest", "https://192.168.0.10/wa", "http://hooks.example.org/wa"} {
		if code, _, e := cliRun(t, dir, "webhook", "add", "app", u); code == 0 || !strings.Contains(e, "invalid webhook url") {
			t.Fatalf("external %s: exit %d: %s", u, code, e)
		}
	}

	mustCLI(t, dir, "peer", "remove", "app")
	ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": 3})
	if _, out := mustCLI(t, dir, "webhook", "list"); strings.Contains(out, "app") {
		t.Fatalf("a removed peer's webhook is listed: %s", out)
	}
	eventually(t, "delivery stopped", func() bool { return !ta.Webhooks().Running(1) })
	if n := len(rc.got()); n != 2 {
		t.Fatalf("%d deliveries after the peer was removed", n)
	}
}

// TestWebhookRewindOutOfRetention: a rewind to a cursor that fell out of
// retention is 410 cursor_expired with the oldest id, as /v1/events is.
func TestWebhookRewindOutOfRetention(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) { o.NoWhatsApp = true; o.Retention = time.Millisecond })
	ctx := context.Background()
	c := ta.addPeer(t, "app", peers.ScopeRead)
	cl := ta.client(t, c)
	hook := createHook(t, cl, fmt.Sprintf("http://%s:8080/wa", c.Peer.Addr))
	for i := range 3 {
		if _, err := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := ta.Events().Prune(ctx); err != nil {
		t.Fatal(err)
	}
	r := do(t, cl, "POST", "/v1/webhooks/"+strconv.FormatInt(hook.ID, 10)+"/rewind", map[string]any{"after": 0})
	if r.Status != 410 || r.Header.Get("X-Oldest-Event-Id") != "4" || !strings.Contains(string(r.Body), "cursor_expired") {
		t.Fatalf("rewind out of retention: %d %v %s", r.Status, r.Header, r.Body)
	}
}

// TestWebhooksLeaveNoGoroutine: an appliance with one webhook delivering,
// one in backoff and one with a request in flight leaves no goroutine
// behind once it and the client are closed.
func TestWebhooksLeaveNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	func() {
		dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
		ta := serveWith(t, dir, func(o *app.Options) { o.NoWhatsApp = true })
		c := ta.addPeer(t, "app", peers.ScopeRead)
		cl := ta.client(t, c)
		rc := listenHooks(t, cl, 9000)
		ln, err := cl.Listen(9001)
		if err != nil {
			t.Fatal(err)
		}
		inFlight := make(chan struct{}, 10)
		hang := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inFlight <- struct{}{}
			<-release
		})}
		go hang.Serve(ln)
		createHook(t, cl, fmt.Sprintf("http://%s:9000/ok", c.Peer.Addr))
		createHook(t, cl, fmt.Sprintf("http://%s:9001/hang", c.Peer.Addr))
		createHook(t, cl, fmt.Sprintf("http://%s:9002/refused", c.Peer.Addr))
		for i := range 5 {
			ta.Events().Append(context.Background(), "shop", events.TypeMessageReceived, map[string]int{"n": i})
		}
		eventually(t, "deliveries", func() bool { return len(rc.got()) == 5 && len(inFlight) > 0 })
		ta.Close()
		close(release)
		hang.Close()
		rc.srv.Close()
		cl.Close()
	}()
	noGoroutinesAbove(t, before, 10*time.Second)
}

// TestDoctorWarnsOfLaggingWebhook: doctor warns (FIX, exit 1) of an
// enabled subscription whose receiver is down and whose oldest
// undelivered event is past 80% of the event retention, and not of one
// whose receiver took every event; a disabled one is not its concern.
func TestDoctorWarnsOfLaggingWebhook(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) { o.NoWhatsApp = true })
	ctx := context.Background()
	up := ta.addPeer(t, "up", peers.ScopeRead)
	down := ta.addPeer(t, "down", peers.ScopeRead)
	clUp, clDown := ta.client(t, up), ta.client(t, down)
	rc := listenHooks(t, clUp, 8080)
	createHook(t, clUp, fmt.Sprintf("http://%s:8080/wa", up.Peer.Addr))
	// Nothing listens on down's address: every attempt is refused.
	lag := createHook(t, clDown, fmt.Sprintf("http://%s:8080/wa", down.Peer.Addr))

	// Before any event both are current.
	const retention = "2s"
	code, o, _ := cliRun(t, dir, "doctor", "--event-retention", retention)
	if !strings.Contains(o, "ok   webhooks") || !strings.Contains(o, "2 enabled, none behind") {
		t.Fatalf("doctor with no event (exit %d):\n%s", code, o)
	}
	first := time.Now()
	var want []int64
	for i := range 5 {
		e, err := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	// Past 80% of 2 s, the receiver that is up having taken all five.
	for deadline := time.Now().Add(20 * time.Second); len(rc.got()) < len(want) || time.Since(first) < 1700*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver that is up got %d of %d events", len(rc.got()), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, o, _ = cliRun(t, dir, "doctor", "--event-retention", retention)
	wantFix := fmt.Sprintf("FIX  webhooks   subscription %d of peer down is 5 event(s) behind", lag.ID)
	if code != 1 || !strings.Contains(o, wantFix) || !strings.Contains(o, "over 80% of the event retention 2s") ||
		!strings.Contains(o, fmt.Sprintf("waappliance webhook show %d", lag.ID)) {
		t.Fatalf("doctor with a lagging subscription (exit %d) lacks %q:\n%s", code, wantFix, o)
	}
	if strings.Contains(o, "of peer up") || strings.Count(o, "FIX  webhooks") != 1 {
		t.Fatalf("doctor warns of the current subscription:\n%s", o)
	}
	// With the default retention (168h) the same backlog is young.
	if _, o, _ = cliRun(t, dir, "doctor"); !strings.Contains(o, "ok   webhooks") {
		t.Fatalf("doctor at the default retention:\n%s", o)
	}
	// Disabled, it no longer counts.
	if r := do(t, clDown, "POST", fmt.Sprintf("/v1/webhooks/%d/disable", lag.ID), nil); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if _, o, _ = cliRun(t, dir, "doctor", "--event-retention", retention); !strings.Contains(o, "ok   webhooks   1 enabled, none behind") {
		t.Fatalf("doctor after disabling the lagging one:\n%s", o)
	}
}
