package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// The front door's caps and deadlines, through the real tunnel with small
// injected limits: whatever one peer holds, it is refused with the
// documented JSON error and another peer is still served.

func serveLimited(t *testing.T, l app.Limits) *testAppliance {
	t.Helper()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	return serveWith(t, dir, func(o *app.Options) { o.Limits = l })
}

// dialAPI opens a raw TCP connection to the API through cl's tunnel and
// waits until the appliance has accepted it (want: the peer's count after).
func dialAPI(t *testing.T, ta *testAppliance, cl *wgclient.Client) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cl.DialContext(ctx, "tcp", ta.TunnelAddr().String()+":80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// holdConns opens n connections for cl and waits until the appliance
// counts them all.
func holdConns(t *testing.T, ta *testAppliance, cl *wgclient.Client, n int) []net.Conn {
	t.Helper()
	before := ta.OpenConns(cl.Addr())
	var cs []net.Conn
	for i := 0; i < n; i++ {
		cs = append(cs, dialAPI(t, ta, cl))
	}
	waitFor(t, fmt.Sprintf("%d connections accepted", n), func() bool { return ta.OpenConns(cl.Addr()) == before+n })
	return cs
}

// roundTrip writes a raw request on c and reads one response.
func roundTrip(t *testing.T, c net.Conn, raw string) (*http.Response, errorJSON) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	return readResponse(t, bufio.NewReader(c))
}

type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, errorJSON) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e errorJSON
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") == "application/json" {
		if err := (&wgclient.Response{Body: b}).JSON(&e); err != nil {
			t.Fatalf("%d: not the JSON error shape: %q", resp.StatusCode, b)
		}
	}
	return resp, e
}

// expectClosed checks the appliance closed c (EOF or reset, not a timeout).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the appliance did not close the connection")
	}
}

const whoamiReq = "GET /v1/whoami HTTP/1.1\r\nHost: 10.77.0.1\r\n\r\n"

func expectRefusedConn(t *testing.T, c net.Conn, wantInMessage string) {
	t.Helper()
	resp, e := roundTrip(t, c, whoamiReq)
	if resp.StatusCode != 429 || e.Error.Code != "too_many_connections" || !strings.Contains(e.Error.Message, wantInMessage) {
		t.Fatalf("over the cap: %d %+v, want 429 too_many_connections (%q)", resp.StatusCode, e, wantInMessage)
	}
	if !resp.Close || resp.Header.Get("Retry-After") == "" {
		t.Errorf("refusal headers: close %v, Retry-After %q", resp.Close, resp.Header.Get("Retry-After"))
	}
	expectClosed(t, c)
}

func expectServed(t *testing.T, c net.Conn) {
	t.Helper()
	if resp, e := roundTrip(t, c, whoamiReq); resp.StatusCode != 200 {
		t.Fatalf("whoami on a held connection: %d %+v", resp.StatusCode, e)
	}
}

// TestConnCapPerPeer: peer A holds its maximum of connections; the next
// one is answered with the JSON 429 and closed, uncounted, while A's held
// connections and peer B are still served.
func TestConnCapPerPeer(t *testing.T) {
	var logs syncBuffer
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) {
		o.Limits = app.Limits{PeerConns: 3, Conns: 100}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	a := ta.client(t, ta.addPeer(t, "a", peers.ScopeRead))
	b := ta.client(t, ta.addPeer(t, "b", peers.ScopeRead))
	held := holdConns(t, ta, a, 3)
	expectRefusedConn(t, dialAPI(t, ta, a), "this peer already holds its maximum of 3 connections")
	expectRefusedConn(t, dialAPI(t, ta, a), "this peer already holds its maximum of 3 connections")
	// A flood shows in the log, in aggregate: one line per peer a minute.
	if got := strings.Count(logs.String(), "connections refused"); got != 1 || !strings.Contains(logs.String(), "peer=a ") {
		t.Fatalf("%d log lines for two refusals, want 1 naming peer a:\n%s", got, logs.String())
	}
	// A client that sends nothing gets the answer too, and Go's own HTTP
	// client reads it as the response to its request.
	silent := dialAPI(t, ta, a)
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, e := readResponse(t, bufio.NewReader(silent)); resp.StatusCode != 429 || e.Error.Code != "too_many_connections" {
		t.Fatalf("silent connection over the cap: %d %+v", resp.StatusCode, e)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: a.DialContext, DisableKeepAlives: true}}
	resp, err := hc.Get("http://10.77.0.1/v1/whoami")
	if err != nil {
		t.Fatalf("net/http client over the cap: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("net/http client over the cap: %d", resp.StatusCode)
	}
	if n := ta.OpenConns(a.Addr()); n != 3 {
		t.Fatalf("peer A has %d connections counted after the refusals, want 3", n)
	}
	expectServed(t, held[0])
	if r := do(t, b, "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("peer B: %d %s", r.Status, r.Body)
	}
	// A closed connection frees its place.
	held[1].Close()
	waitFor(t, "closed connection uncounted", func() bool { return ta.OpenConns(a.Addr()) == 2 })
	expectServed(t, dialAPI(t, ta, a))
}

// TestConnCapTotal: the appliance's total cap refuses any peer once
// reached, with a message that names the appliance, not the peer.
func TestConnCapTotal(t *testing.T) {
	ta := serveLimited(t, app.Limits{PeerConns: 3, Conns: 4})
	a := ta.client(t, ta.addPeer(t, "a", peers.ScopeRead))
	b := ta.client(t, ta.addPeer(t, "b", peers.ScopeRead))
	held := holdConns(t, ta, a, 3)
	holdConns(t, ta, b, 1)
	expectRefusedConn(t, dialAPI(t, ta, b), "the appliance already holds its maximum of 4 connections")
	held[0].Close()
	waitFor(t, "closed connection uncounted", func() bool { return ta.OpenConns(a.Addr()) == 2 })
	expectServed(t, dialAPI(t, ta, b))
}

// TestSlowBodyCut: a client that drips its body a byte at a time is cut
// after the body deadline with 408 request_timeout, and nothing is done.
func TestSlowBodyCut(t *testing.T) {
	ta := serveLimited(t, app.Limits{BodyTimeout: 300 * time.Millisecond})
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	c := dialAPI(t, ta, admin)
	body := `{"name":"dripped","scopes":["admin"]}`
	head := fmt.Sprintf("POST /v1/peers HTTP/1.1\r\nHost: 10.77.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() { // a byte every 100 ms: each arrives well within any per-read timeout
		for i := 0; i < len(body)-1; i++ {
			if _, err := io.WriteString(c, body[i:i+1]); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, e := readResponse(t, bufio.NewReader(c))
	if resp.StatusCode != 408 || e.Error.Code != "request_timeout" {
		t.Fatalf("dripping body: %d %+v, want 408 request_timeout", resp.StatusCode, e)
	}
	expectClosed(t, c)
	if _, err := ta.Peers().Get("dripped"); !peers.IsNotFound(err) {
		t.Fatalf("the dripped request created a peer: %v", err)
	}
	// A body sent at once is not affected by the short deadline.
	if r := do(t, admin, "POST", "/v1/peers", map[string]any{"name": "quick", "scopes": []string{"read"}}); r.Status != 201 {
		t.Fatalf("prompt body: %d %s", r.Status, r.Body)
	}
}

// TestOversizeRequestsRefusedAtOnce: a declared body over the limit gets
// 413 too_large before a byte of it is sent (with Expect: 100-continue no
// 100 Continue comes first), and headers over the limit get net/http's
// plain-text 431.
func TestOversizeRequestsRefusedAtOnce(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	for _, expect := range []string{"Expect: 100-continue\r\n", ""} {
		c := dialAPI(t, ta, admin)
		resp, e := roundTrip(t, c, "POST /v1/peers HTTP/1.1\r\nHost: 10.77.0.1\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n"+expect+"\r\n")
		if resp.StatusCode != 413 || e.Error.Code != "too_large" {
			t.Fatalf("10 GB body (%q): %d %+v, want 413 too_large", expect, resp.StatusCode, e)
		}
		expectClosed(t, c)
	}
	if n := len(ta.Peers().List()); n != 1 {
		t.Fatalf("%d peers after the refusals, want 1", n)
	}
	c := dialAPI(t, ta, admin)
	resp, _ := roundTrip(t, c, "GET /v1/whoami HTTP/1.1\r\nHost: 10.77.0.1\r\nX-Big: "+strings.Repeat("a", 20<<10)+"\r\n\r\n")
	if resp.StatusCode != 431 {
		t.Fatalf("20 KiB header: %d, want 431", resp.StatusCode)
	}
}

// openStream opens an event stream for cl; a 200 stream is read up to its
// first line and returned open.
func openStream(t *testing.T, cl *wgclient.Client) (*http.Response, errorJSON) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://10.77.0.1/v1/events/stream", nil)
	resp, err := (&http.Client{Transport: cl.HTTP.Transport}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		defer cancel()
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e errorJSON
		(&wgclient.Response{Body: b}).JSON(&e)
		return resp, e
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, errorJSON{}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c cancelOnClose) Close() error { c.cancel(); return c.ReadCloser.Close() }

func expectStream(t *testing.T, cl *wgclient.Client, who string) *http.Response {
	t.Helper()
	resp, e := openStream(t, cl)
	if resp.StatusCode != 200 {
		t.Fatalf("%s's stream: %d %+v", who, resp.StatusCode, e)
	}
	return resp
}

func expectStreamRefused(t *testing.T, cl *wgclient.Client, wantInMessage string) {
	t.Helper()
	resp, e := openStream(t, cl)
	if resp.StatusCode != 429 || e.Error.Code != "too_many_streams" || !strings.Contains(e.Error.Message, wantInMessage) {
		t.Fatalf("stream over the cap: %d %+v, want 429 too_many_streams (%q)", resp.StatusCode, e, wantInMessage)
	}
}

// TestStreamCaps: a peer at its stream cap is refused another stream with
// 429 too_many_streams while another peer can still open one; the total
// cap refuses everyone; a closed stream frees its place.
func TestStreamCaps(t *testing.T) {
	ta := serveLimited(t, app.Limits{PeerStreams: 2, Streams: 3})
	a := ta.client(t, ta.addPeer(t, "a", peers.ScopeRead))
	b := ta.client(t, ta.addPeer(t, "b", peers.ScopeRead))
	first := expectStream(t, a, "A")
	expectStream(t, a, "A")
	expectStreamRefused(t, a, "this peer already holds its maximum of 2 event streams")
	expectStream(t, b, "B")
	expectStreamRefused(t, b, "the appliance already holds its maximum of 3 event streams")
	first.Body.Close()
	waitFor(t, "closed stream's place freed", func() bool {
		resp, _ := openStream(t, b)
		return resp.StatusCode == 200
	})
}

// TestPeerCapOverrides: a peer's own max_conns and max_streams, set with
// `peer set` or the peer API, replace the appliance default; 0 returns to
// it, and the view shows null for "the default".
func TestPeerCapOverrides(t *testing.T) {
	ta := serveLimited(t, app.Limits{PeerConns: 3, PeerStreams: 3})
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	a := ta.client(t, ta.addPeer(t, "a", peers.ScopeRead))

	mustCLI(t, ta.dir, "peer", "set", "a", "--max-conns", "1")
	ta.Sync()
	holdConns(t, ta, a, 1)
	expectRefusedConn(t, dialAPI(t, ta, a), "maximum of 1 connections")
	if code, _, e := cliRun(t, ta.dir, "peer", "set", "a", "--max-conns", "-1"); code != 2 || !strings.Contains(e, "max-conns") {
		t.Fatalf("peer set --max-conns -1: exit %d: %s", code, e)
	}
	if code, _, e := cliRun(t, ta.dir, "peer", "set", "a"); code != 2 || !strings.Contains(e, "nothing to set") {
		t.Fatalf("peer set without flags: exit %d: %s", code, e)
	}
	if code, _, e := cliRun(t, ta.dir, "peer", "set", "nobody", "--max-conns", "2"); code != 1 || !strings.Contains(e, "not found") {
		t.Fatalf("peer set of an unknown peer: exit %d: %s", code, e)
	}
	if code, _, e := cliRun(t, ta.dir, "serve", "--peer-max-streams", "0"); code != 2 || !strings.Contains(e, "peer-max-streams") {
		t.Fatalf("serve --peer-max-streams 0: exit %d: %s", code, e)
	}
	mustCLI(t, ta.dir, "peer", "set", "a", "--max-conns", "0")
	ta.Sync()
	a.HTTP.CloseIdleConnections()

	var v struct {
		MaxConns   *int `json:"max_conns"`
		MaxStreams *int `json:"max_streams"`
	}
	r := do(t, admin, "PATCH", "/v1/peers/a", map[string]any{"max_streams": 1})
	if r.Status != 200 || r.JSON(&v) != nil || v.MaxConns != nil || v.MaxStreams == nil || *v.MaxStreams != 1 {
		t.Fatalf("PATCH max_streams: %d %s", r.Status, r.Body)
	}
	expectStream(t, a, "A")
	expectStreamRefused(t, a, "maximum of 1 event streams")
	if r := do(t, admin, "PATCH", "/v1/peers/a", map[string]any{"max_streams": -1}); r.Status != 400 {
		t.Fatalf("PATCH max_streams -1: %d %s", r.Status, r.Body)
	}
	r = do(t, admin, "POST", "/v1/peers", map[string]any{"name": "c", "scopes": []string{"read"}, "max_conns": 7, "max_streams": 2})
	var created struct {
		Peer struct {
			MaxConns   *int `json:"max_conns"`
			MaxStreams *int `json:"max_streams"`
		} `json:"peer"`
	}
	if r.Status != 201 || r.JSON(&created) != nil || created.Peer.MaxConns == nil || *created.Peer.MaxConns != 7 || *created.Peer.MaxStreams != 2 {
		t.Fatalf("POST with caps: %d %s", r.Status, r.Body)
	}
	if p, _ := ta.Peers().Get("c"); p.MaxConns != 7 || p.MaxStreams != 2 {
		t.Fatalf("stored caps: %d %d", p.MaxConns, p.MaxStreams)
	}
}

// TestCloseWithHeldNewConnsIsPrompt: connections that never sent a request
// (a peer holding its cap) do not hold Close for the shutdown timeout:
// http.Server.Shutdown counts them as busy for their first 5 s unless the
// appliance closes them.
func TestCloseWithHeldNewConnsIsPrompt(t *testing.T) {
	ta := serveLimited(t, app.Limits{})
	a := ta.client(t, ta.addPeer(t, "a", peers.ScopeRead))
	held := holdConns(t, ta, a, 3)
	t0 := time.Now()
	if err := ta.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v with 3 new connections held (shutdown timeout %v)", d, app.ShutdownTimeout)
	}
	expectClosed(t, held[0])
}
