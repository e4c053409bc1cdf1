package app_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// securityHeaders are what every answer carries (api/guard.go).
var securityHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Cache-Control":                "no-store",
}

func wantSecurityHeaders(t *testing.T, what string, r *wgclient.Response) {
	t.Helper()
	for k, v := range securityHeaders {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("%s: sends %s", what, k)
		}
	}
}

// doH sends a request with extra headers ("Host" sets the Host; "" removes
// a header) and fails the test on a transport error.
func doH(t *testing.T, cl *wgclient.Client, method, path string, body any, h map[string]string) *wgclient.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.DoWithHeader(ctx, method, path, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// TestBrowserAttacksRefused replays, through the tunnel, what a web page
// in a browser on the admin's machine can send (issue 8): none of it gets
// through, none of it changes anything, and every answer carries the
// security headers. Requests as curl and SDKs send them still work.
func TestBrowserAttacksRefused(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	newAdmin := `{"name":"x","scopes":["admin"]}`
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		status       int
		code         string
	}{
		{"no-cors text/plain POST", "POST", "/v1/peers", newAdmin, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"form POST holding JSON", "POST", "/v1/peers", newAdmin + "=", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"multipart form POST", "POST", "/v1/peers", "--b\r\n\r\n" + newAdmin + "\r\n--b--\r\n", map[string]string{"Content-Type": "multipart/form-data; boundary=b"}, 415, "unsupported_media_type"},
		{"body without Content-Type", "POST", "/v1/peers", newAdmin, map[string]string{"Content-Type": ""}, 415, "unsupported_media_type"},
		{"text/plain to a bodyless route", "POST", "/v1/peers/admin/rotate", "x", map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"Sec-Fetch-Site: cross-site", "POST", "/v1/peers", newAdmin, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"},
		{"Origin of another site", "POST", "/v1/peers", newAdmin, map[string]string{"Origin": "http://evil.example"}, 403, "cross_origin"},
		{"cross-origin DELETE", "DELETE", "/v1/peers/admin", "", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"},
		{"DNS rebinding read", "GET", "/v1/peers", "", map[string]string{"Host": "rebind.attacker.example"}, 421, "misdirected_request"},
		{"DNS rebinding read of the events", "GET", "/v1/events", "", map[string]string{"Host": "rebind.attacker.example"}, 421, "misdirected_request"},
		{"DNS rebinding write", "POST", "/v1/peers", newAdmin, map[string]string{"Host": "rebind.attacker.example"}, 421, "misdirected_request"},
		{"not found still has headers", "GET", "/v1/nothing", "", nil, 404, "not_found"},
	} {
		var body any
		if tc.body != "" {
			body = []byte(tc.body)
		}
		r := doH(t, admin, tc.method, tc.path, body, tc.hdr)
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, r, tc.status, tc.code)
			wantSecurityHeaders(t, tc.name, r)
		})
	}
	ps := ta.Peers().List()
	if len(ps) != 1 || ps[0].Name != "admin" {
		t.Fatalf("refused requests changed the peers: %+v", ps)
	}

	// As curl, an SDK or the appliance's own origin sends them: served.
	for i, h := range []map[string]string{
		nil,
		{"Host": "10.77.0.1:80"},
		{"Origin": "http://10.77.0.1"},
		{"Origin": "http://10.77.0.1", "Sec-Fetch-Site": "same-origin"},
		{"Content-Type": "application/json; charset=utf-8"},
	} {
		name := "ok" + string(rune('a'+i))
		r := doH(t, admin, "POST", "/v1/peers", map[string]string{"name": name}, h)
		if r.Status != 201 {
			t.Fatalf("POST /v1/peers with %v: %d %s", h, r.Status, r.Body)
		}
		wantSecurityHeaders(t, name, r)
	}
	if r := doH(t, admin, "POST", "/v1/peers/oka/rotate", nil, map[string]string{"Content-Type": ""}); r.Status != 200 {
		t.Fatalf("bodyless POST: %d %s", r.Status, r.Body)
	}
}

// TestMisdirectedSpendsNoBudget: a 421 comes before the rate limit, so a
// page that rebinds cannot drain a peer's budget.
func TestMisdirectedSpendsNoBudget(t *testing.T) {
	ta := startAppliance(t)
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "slow", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: peers.MinRate, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	cl := ta.client(t, c)
	remaining := func() string {
		r := do(t, cl, "GET", "/v1/whoami", nil)
		if r.Status != 200 {
			t.Fatalf("whoami: %d %s", r.Status, r.Body)
		}
		return r.Header.Get("RateLimit-Remaining")
	}
	if got := remaining(); got != "4" {
		t.Fatalf("RateLimit-Remaining %q after the first request, want 4", got)
	}
	for i := 0; i < 10; i++ {
		r := doH(t, cl, "POST", "/v1/peers", map[string]string{"name": "x"}, map[string]string{"Host": "rebind.attacker.example"})
		wantError(t, r, 421, "misdirected_request")
		if r.Header.Get("RateLimit-Remaining") != "" {
			t.Fatalf("a 421 went through the rate limit: %v", r.Header)
		}
	}
	if got := remaining(); got != "3" {
		t.Fatalf("RateLimit-Remaining %q after ten 421s, want 3: they spent the budget", got)
	}
}

// TestAPIHostWhileServing: `set --api-host` reaches a running serve (the
// peers poll), PATCH /v1/settings applies at once, and the tunnel address
// always stays served.
func TestAPIHostWhileServing(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	whoamiAs := func(host string) int {
		return doH(t, admin, "GET", "/v1/whoami", nil, map[string]string{"Host": host}).Status
	}
	if got := whoamiAs("wa.example.com"); got != 421 {
		t.Fatalf("before set: %d", got)
	}
	if code, _, e := cliRun(t, ta.dir, "set", "--api-host", "wa.example.com:80"); code != 2 || !strings.Contains(e, "without a port") {
		t.Fatalf("set --api-host with a port: exit %d %q", code, e)
	}
	mustCLI(t, ta.dir, "set", "--api-host", "WA.example.com,10.0.0.9")
	eventually(t, "the new name served", func() bool { return whoamiAs("wa.example.com") == 200 })
	for _, h := range []string{"WA.EXAMPLE.COM.", "wa.example.com:80", "10.0.0.9", "10.77.0.1"} {
		if got := whoamiAs(h); got != 200 {
			t.Errorf("Host %s: %d", h, got)
		}
	}
	var st struct {
		APIHosts []string `json:"api_hosts"`
	}
	if r := do(t, admin, "GET", "/v1/settings", nil); r.Status != 200 || r.JSON(&st) != nil || strings.Join(st.APIHosts, ",") != "wa.example.com,10.0.0.9" {
		t.Fatalf("GET /v1/settings: %d %s", r.Status, r.Body)
	}
	mustCLI(t, ta.dir, "set", "--api-host", "")
	eventually(t, "the name no longer served", func() bool { return whoamiAs("wa.example.com") == 421 })

	if r := do(t, admin, "PATCH", "/v1/settings", map[string]any{"api_hosts": []string{"dash.example.net"}}); r.Status != 200 {
		t.Fatalf("PATCH /v1/settings: %d %s", r.Status, r.Body)
	}
	if got := whoamiAs("dash.example.net"); got != 200 {
		t.Fatalf("right after PATCH: %d", got)
	}
	wantError(t, do(t, admin, "PATCH", "/v1/settings", map[string]any{"api_hosts": []string{"*.example.net"}}), 400, "invalid_argument")
	reader := ta.client(t, ta.addPeer(t, "reader", peers.ScopeRead))
	wantError(t, do(t, reader, "PATCH", "/v1/settings", map[string]any{"api_hosts": []string{}}), 403, "forbidden")
	if got := whoamiAs("dash.example.net"); got != 200 {
		t.Fatalf("a refused PATCH changed the names: %d", got)
	}
}

// TestStrictInputNothingStored: duplicate keys, invalid UTF-8, NUL and
// control characters in names and ids get 400 at the API, and nothing is
// stored: no message in the outbox, no session, no peer, no contact.
func TestStrictInputNothingStored(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002"})
	outbox := func() int {
		var n int
		if err := ta.DB().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const msgs = "/v1/sessions/shop/messages"
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		code         string
	}{
		{"duplicate text", "POST", msgs, `{"to":"+15550002","text":"a","text":"b"}`, nil, "bad_json"},
		{"duplicate to, other case", "POST", msgs, `{"to":"+15550002","TO":"+15550003","text":"a"}`, nil, "bad_json"},
		{"invalid UTF-8 text", "POST", msgs, "{\"to\":\"+15550002\",\"text\":\"bad \xc3\x28\"}", nil, "bad_json"},
		{"NUL in text", "POST", msgs, `{"to":"+15550002","text":"nul \u0000 here"}`, nil, "bad_json"},
		{"lone surrogate in text", "POST", msgs, `{"to":"+15550002","text":"\ud83d"}`, nil, "bad_json"},
		{"control character in to", "POST", msgs, `{"to":"1234\u001b@lid","text":"x"}`, nil, "invalid_argument"},
		{"control character in reply_to", "POST", msgs, `{"to":"+15550002","text":"x","reply_to":"3EB0\u0007"}`, nil, "invalid_argument"},
		{"invalid UTF-8 Idempotency-Key", "POST", msgs, `{"to":"+15550002","text":"x"}`, map[string]string{"Idempotency-Key": "k\xff"}, "invalid_argument"},
		{"control character in a message id", "GET", msgs + "/a%1b%5b2J", "", nil, "invalid_argument"},
		{"control character in a session path", "POST", "/v1/sessions/sh%00op/messages", `{"to":"+15550002","text":"x"}`, nil, "invalid_argument"},
		{"duplicate session name", "POST", "/v1/sessions", `{"name":"a","name":"b"}`, nil, "bad_json"},
		{"duplicate scopes", "POST", "/v1/peers", `{"name":"x","scopes":["read"],"scopes":["admin"]}`, nil, "bad_json"},
		{"control character in a contact name", "POST", "/v1/sandbox/contacts", `{"phone":"+15550003","name":"Ada\u001b[2J"}`, nil, "invalid_argument"},
	} {
		var body any
		if tc.body != "" {
			body = []byte(tc.body)
		}
		r := doH(t, cl, tc.method, tc.path, body, tc.hdr)
		t.Run(tc.name, func(t *testing.T) { wantError(t, r, 400, tc.code) })
	}
	if n := outbox(); n != 0 {
		t.Fatalf("%d messages stored by refused requests", n)
	}
	var list struct{ Sessions []sessionJSON }
	do(t, cl, "GET", "/v1/sessions", nil).JSON(&list)
	if len(list.Sessions) != 1 {
		t.Fatalf("sessions after refused requests: %+v", list.Sessions)
	}
	if _, err := ta.Peers().Get("x"); err == nil {
		t.Fatal("a refused request created peer x")
	}
	if r := do(t, cl, "GET", "/v1/sandbox/contacts/+15550003/inbox", nil); r.Status != 404 {
		t.Fatalf("a refused request created a contact: %d %s", r.Status, r.Body)
	}
	// Valid text with newlines, tabs and emoji is still sent.
	send(t, cl, "shop", "+15550002", "line 1\nline 2\t😀")
	if n := outbox(); n != 1 {
		t.Fatalf("outbox has %d messages after one good send", n)
	}
}

// TestInitAPIHost: init and up take --api-host like set; a bad name is a
// usage error and nothing is created.
func TestInitAPIHost(t *testing.T) {
	dir := t.TempDir() + "/state"
	if code, _, e := cliRun(t, dir, "init", "--api-host", "*.example.com"); code != 2 || !strings.Contains(e, "wildcards") {
		t.Fatalf("init with a wildcard: exit %d %q", code, e)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("a refused init created the state dir")
	}
	mustCLI(t, dir, "init", "--api-host", "Wa.Example.com, 192.168.1.5")
	a, err := appOpen(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := strings.Join(a.Peers().Server().APIHosts, ","); got != "wa.example.com,192.168.1.5" {
		t.Fatalf("stored API hosts %q", got)
	}
}
