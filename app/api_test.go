package app_test

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"waappliance/internal/wgclient"
	"waappliance/peers"
)

type errShape struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// wantError checks status and the one JSON error shape.
func wantError(t *testing.T, r *wgclient.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	var e errShape
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %q", r.Body)
	}
	if e.Error.Code != code || e.Error.Message == "" || e.Error.RequestID == "" {
		t.Fatalf("error = %+v, want code %q with a message and request_id", e.Error, code)
	}
	if e.Error.RequestID != r.Header.Get("X-Request-Id") {
		t.Errorf("request_id %q != X-Request-Id %q", e.Error.RequestID, r.Header.Get("X-Request-Id"))
	}
	if strings.Contains(string(r.Body), "goroutine") || strings.Contains(string(r.Body), ".go:") {
		t.Errorf("error body leaks internals: %s", r.Body)
	}
}

// TestScopeMatrix sends every documented route as every kind of peer. A
// peer without the route's scope must get 403; with it, anything but 403.
// Mutating admin calls target a peer that does not exist, so nothing changes.
func TestScopeMatrix(t *testing.T) {
	ta := startAppliance(t)
	clients := map[string]*wgclient.Client{}
	for _, sc := range []string{"admin", "sessions", "send", "read", "none"} {
		var scopes []peers.Scope
		if sc != "none" {
			scopes = []peers.Scope{peers.Scope(sc)}
		}
		clients[sc] = ta.client(t, ta.addPeer(t, "p-"+sc, scopes...))
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Description string `json:"description"`
		} `json:"paths"`
	}
	if r := do(t, clients["none"], "GET", "/v1/openapi.json", nil); r.Status != 200 || r.JSON(&doc) != nil {
		t.Fatalf("openapi: %d", r.Status)
	}
	n := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			need := ""
			if i := strings.Index(op.Description, "scope `"); i >= 0 {
				need = strings.SplitN(op.Description[i+7:], "`", 2)[0]
			}
			if strings.HasPrefix(path, "/v1/sandbox/") {
				continue // served only in sandbox mode; covered there
			}
			url := path
			for _, v := range []string{"{name}", "{session}", "{id}", "{phone}"} {
				url = strings.ReplaceAll(url, v, "ghost")
			}
			if path == "/v1/events/stream" {
				url += "?after=not-a-number" // answer at once instead of streaming
			}
			for sc, cl := range clients {
				var body any
				if method == "POST" || method == "PATCH" {
					body = map[string]any{}
				}
				r := do(t, cl, method, url, body)
				allowed := need == "" || sc == "admin" || sc == need
				if !allowed {
					wantError(t, r, 403, "forbidden")
				} else if r.Status == 403 {
					t.Errorf("%s %s as %s: 403 although the scope is held", method, url, sc)
				}
				n++
			}
		}
	}
	if n < 40 {
		t.Fatalf("only %d route×scope checks; the document lists too few routes", n)
	}
}

func TestRateLimitPerPeer(t *testing.T) {
	ta := startAppliance(t)
	ctx := context.Background()
	c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "flood", Scopes: []peers.Scope{peers.ScopeRead}, Rate: 0.5, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	flood := ta.client(t, c)
	calm := ta.client(t, ta.addPeer(t, "calm", peers.ScopeRead))
	for i := 0; i < 3; i++ {
		r := do(t, flood, "GET", "/v1/whoami", nil)
		if r.Status != 200 {
			t.Fatalf("request %d within burst: %d", i, r.Status)
		}
		if got := r.Header.Get("RateLimit-Limit"); got != "3" {
			t.Errorf("RateLimit-Limit = %q, want 3", got)
		}
	}
	r := do(t, flood, "GET", "/v1/whoami", nil)
	wantError(t, r, 429, "rate_limited")
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After = %q, want 1-2 seconds at 0.5 req/s", r.Header.Get("Retry-After"))
	}
	if r.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Remaining = %q, want 0", r.Header.Get("RateLimit-Remaining"))
	}
	for i := 0; i < 20; i++ {
		if r := do(t, calm, "GET", "/v1/whoami", nil); r.Status != 200 {
			t.Fatalf("calm peer request %d got %d while another peer is limited", i, r.Status)
		}
	}
}

func TestBadInput(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "root", peers.ScopeAdmin))
	reader := ta.client(t, ta.addPeer(t, "reader", peers.ScopeRead))
	big := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		name, method, path string
		cl                 *wgclient.Client
		body               any
		status             int
		code               string
	}{
		{"malformed json", "POST", "/v1/peers", admin, `{"name":`, 400, "bad_json"},
		{"not json", "POST", "/v1/peers", admin, `hello`, 400, "bad_json"},
		{"empty body", "POST", "/v1/peers", admin, ``, 400, "bad_json"},
		{"trailing data", "POST", "/v1/peers", admin, `{"name":"x"} {}`, 400, "bad_json"},
		{"wrong type", "POST", "/v1/peers", admin, `{"name":5}`, 400, "bad_json"},
		{"unknown field", "POST", "/v1/peers", admin, `{"name":"x","colour":"red"}`, 400, "unknown_field"},
		{"body over limit", "POST", "/v1/peers", admin, big, 413, "too_large"},
		{"bad name", "POST", "/v1/peers", admin, `{"name":"Not Valid"}`, 400, "invalid_argument"},
		{"bad scope", "POST", "/v1/peers", admin, `{"name":"x","scopes":["root"]}`, 400, "invalid_argument"},
		{"bad key", "POST", "/v1/peers", admin, `{"name":"x","public_key":"abc"}`, 400, "invalid_argument"},
		{"bad expiry", "POST", "/v1/peers", admin, `{"name":"x","expires_in":"soon"}`, 400, "invalid_argument"},
		{"negative rate", "PATCH", "/v1/peers/reader", admin, `{"rate":-1}`, 400, "invalid_argument"},
		{"tiny rate", "PATCH", "/v1/peers/reader", admin, `{"rate":1e-300}`, 400, "invalid_argument"},
		{"huge rate", "POST", "/v1/peers", admin, `{"name":"x","rate":1e308}`, 400, "invalid_argument"},
		{"huge burst", "PATCH", "/v1/peers/reader", admin, `{"burst":1000000000}`, 400, "invalid_argument"},
		{"expiry past 2262", "POST", "/v1/peers", admin, `{"name":"x","expires_at":"3000-01-01T00:00:00Z"}`, 400, "invalid_argument"},
		{"expiry in the past", "POST", "/v1/peers", admin, `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, 400, "invalid_argument"},
		{"expiry too long", "POST", "/v1/peers", admin, `{"name":"x","expires_in":"2562047h"}`, 400, "invalid_argument"},
		{"patch expiry past 2262", "PATCH", "/v1/peers/reader", admin, `{"expires_at":"3000-01-01T00:00:00Z"}`, 400, "invalid_argument"},
		{"duplicate", "POST", "/v1/peers", admin, `{"name":"reader"}`, 409, "already_exists"},
		{"unknown peer", "GET", "/v1/peers/nobody", admin, nil, 404, "not_found"},
		{"unknown route", "GET", "/v1/nothing", admin, nil, 404, "not_found"},
		{"root path", "GET", "/", reader, nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/whoami", admin, nil, 405, "method_not_allowed"},
		{"missing scope", "GET", "/v1/peers", reader, nil, 403, "forbidden"},
		{"bad audit limit", "GET", "/v1/audit?limit=0", admin, nil, 400, "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, do(t, tc.cl, tc.method, tc.path, tc.body), tc.status, tc.code)
		})
	}
	// Nothing above may have created a peer.
	for _, p := range ta.Peers().List() {
		if p.Name == "x" {
			t.Fatal("a refused request created peer x")
		}
	}
}

// TestPeersCannotReachEachOther plays a client that routes the whole subnet
// into the tunnel and tries to reach another peer through the appliance.
func TestPeersCannotReachEachOther(t *testing.T) {
	ta := startAppliance(t)
	bob := ta.client(t, ta.addPeer(t, "bob", peers.ScopeRead))
	ln, err := bob.Listen(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from bob\n"))
			c.Close()
		}
	}()
	do(t, bob, "GET", "/v1/whoami", nil) // bob has a session with the appliance

	mallory := ta.addPeer(t, "mallory", peers.ScopeRead)
	mcl := ta.clientWith(t, wgclient.Config{PrivateKey: mallory.PrivateKey, PresharedKey: mallory.Peer.PresharedKey,
		Addr: mallory.Peer.Addr, AllowedIPs: []netip.Prefix{ta.Server().Subnet}})
	if r := do(t, mcl, "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("mallory whoami: %d", r.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	target := net.JoinHostPort(bob.Addr().String(), "8080")
	if c, err := mcl.DialContext(ctx, "tcp", target); err == nil {
		c.Close()
		t.Fatalf("mallory reached bob at %s through the appliance", target)
	}
}

func TestAuditRecordsMutations(t *testing.T) {
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), shortAuditInterval)
	admin := ta.client(t, ta.addPeer(t, "boss", peers.ScopeAdmin))
	if r := do(t, admin, "POST", "/v1/peers", map[string]any{"name": "temp", "scopes": []string{"read"}}); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	do(t, admin, "PATCH", "/v1/peers/temp", map[string]any{"disabled": true})
	do(t, admin, "DELETE", "/v1/peers/temp", nil)
	do(t, admin, "DELETE", "/v1/peers/temp", nil) // 404, still audited
	do(t, admin, "GET", "/v1/peers", nil)         // not audited
	var got struct {
		Entries []struct {
			Peer, Method, Route, Target string
			Status                      int
		}
	}
	// The statuses are written a moment after the answers, and the
	// refusal (404) is counted and written at the end of its interval.
	want := []string{"POST /v1/peers  201", "PATCH /v1/peers/{name} temp 200", "DELETE /v1/peers/{name} temp 204", "DELETE /v1/peers/{name} temp 404"}
	eventually(t, "the statuses and the refusal's row", func() bool {
		r := do(t, admin, "GET", "/v1/audit?peer=boss", nil)
		if r.JSON(&got) != nil || len(got.Entries) < len(want) {
			return false
		}
		for _, e := range got.Entries {
			if e.Status == 0 {
				return false
			}
		}
		return true
	})
	if len(got.Entries) != len(want) {
		t.Fatalf("audit has %d entries, want %d: %+v", len(got.Entries), len(want), got.Entries)
	}
	for i, e := range got.Entries {
		if s := e.Method + " " + e.Route + " " + e.Target + " " + strconv.Itoa(e.Status); s != want[i] || e.Peer != "boss" {
			t.Errorf("entry %d = %q by %s, want %q by boss", i, s, e.Peer, want[i])
		}
	}
	// The CLI reads the same durable log.
	_, out := mustCLI(t, ta.dir, "audit", "--peer", "boss")
	if strings.Count(out, "/v1/peers") != 4 {
		t.Errorf("waappliance audit shows:\n%s", out)
	}
}

func TestPeerLifecycleOverAPI(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "boss", peers.ScopeAdmin))
	r := do(t, admin, "POST", "/v1/peers", map[string]any{"name": "phone", "scopes": []string{"send", "read"}, "rate": 5, "burst": 10, "expires_in": "720h"})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var cr struct {
		Peer       struct{ Name, Address, PublicKey string }
		Config     string
		PrivateKey string `json:"private_key"`
	}
	r.JSON(&cr)
	if cr.PrivateKey == "" || !strings.Contains(cr.Config, "PrivateKey = "+cr.PrivateKey) {
		t.Fatalf("create response lacks the private key in the config: %s", r.Body)
	}
	// The phone connects with what the API returned.
	c := createdFromConfig(t, ta, "phone", cr.Config)
	phone := ta.client(t, c)
	if r := do(t, phone, "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("new phone whoami: %d", r.Status)
	}
	// Listing shows device statistics for the connected peer.
	var list struct {
		Peers []struct {
			Name      string
			Connected bool
			RxBytes   int64 `json:"rx_bytes"`
		}
	}
	do(t, admin, "GET", "/v1/peers", nil).JSON(&list)
	found := false
	for _, p := range list.Peers {
		if p.Name == "phone" {
			found = true
			if !p.Connected || p.RxBytes == 0 {
				t.Errorf("phone listed as connected=%v rx=%d after a request", p.Connected, p.RxBytes)
			}
		}
	}
	if !found {
		t.Fatal("phone not listed")
	}
	// The config route never includes a private key.
	r = do(t, admin, "GET", "/v1/peers/phone/config", nil)
	if strings.Contains(string(r.Body), cr.PrivateKey) || !strings.Contains(string(r.Body), peers.PrivateKeyPlaceholder) {
		t.Fatalf("config route: %s", r.Body)
	}
	// Rotation through the API returns a new key that works; the old one stops.
	r = do(t, admin, "POST", "/v1/peers/phone/rotate", nil)
	var rot struct {
		Config     string
		PrivateKey string `json:"private_key"`
	}
	r.JSON(&rot)
	if r.Status != 200 || rot.PrivateKey == "" || rot.PrivateKey == cr.PrivateKey {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	stopsWorking(t, phone, time.Now())
	newPhone := ta.client(t, createdFromConfig(t, ta, "phone", rot.Config))
	if r := do(t, newPhone, "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("rotated key whoami: %d", r.Status)
	}
}
