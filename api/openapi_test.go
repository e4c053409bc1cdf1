package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"waappliance/peers"
	"waappliance/store"
)

func newTestServer(t testing.TB) (http.Handler, *peers.Registry) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := peers.InitServer(ctx, db, peers.Server{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := peers.NewRegistry(ctx, db, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Registry: reg, Sandbox: fakeSandbox{}}), reg
}

// fakeSandbox only lets the router register the sandbox routes.
type fakeSandbox struct{ Sandbox }

// TestOpenAPICoversRoutes fails when a route is registered but not
// documented, or documented but not served.
func TestOpenAPICoversRoutes(t *testing.T) {
	h, _ := newTestServer(t)
	served := registeredRoutes(h)
	if len(served) == 0 {
		t.Fatal("could not list the router's routes")
	}
	var documented []string
	paths := buildOpenAPI("test")["paths"].(map[string]any)
	for k, item := range paths {
		for m := range item.(map[string]any) {
			documented = append(documented, strings.ToUpper(m)+" "+k)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but missing from the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("route %s is documented but not served", d)
		}
	}
	if doc := buildOpenAPI("x"); doc["openapi"] != "3.1.0" {
		t.Errorf("openapi version %v", doc["openapi"])
	}
}

// TestUnknownAddressRefused: a request whose source is not an enabled
// peer's tunnel address never reaches a handler.
func TestUnknownAddressRefused(t *testing.T) {
	h, reg := newTestServer(t)
	c, err := reg.Add(context.Background(), peers.AddOptions{Name: "a", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(remote string) int {
		req := httptest.NewRequest("GET", "/v1/whoami", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		remote string
		status int
	}{
		{c.Peer.Addr.String() + ":40000", 200},
		{"10.77.0.99:40000", 403},
		{"127.0.0.1:40000", 403},
		{"garbage", 403},
	} {
		if got := serve(tc.remote); got != tc.status {
			t.Errorf("from %s: %d, want %d", tc.remote, got, tc.status)
		}
	}
	if _, err := reg.SetDisabled(context.Background(), "a", true); err != nil {
		t.Fatal(err)
	}
	if got := serve(c.Peer.Addr.String() + ":1"); got != 403 {
		t.Errorf("disabled peer: %d, want 403", got)
	}
}

// FuzzCreatePeer throws arbitrary bodies at POST /v1/peers: never a 5xx,
// never a panic, always the JSON error shape on failure.
func FuzzCreatePeer(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"name":"b","scopes":["send","read"],"rate":5,"burst":9}`,
		`{"name":"c","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"name":"d","expires_in":"1h"}`, `{`, `[]`, `{"name":null}`, `{"name":"e","sessions":["shop"]}`,
		`{"name":"f","expires_at":"2030-01-01T00:00:00Z"}`, `{"name":"g","rate":1e300,"burst":-5}`} {
		f.Add(s)
	}
	h, reg := newTestServer(f)
	admin, err := reg.Add(context.Background(), peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1e9, Burst: 1e9})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/peers", strings.NewReader(body))
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code != 201 && !strings.Contains(rec.Body.String(), `"request_id"`) {
			t.Fatalf("body %q: error without the error shape: %s", body, rec.Body)
		}
		for _, p := range reg.List() {
			if p.Name != "admin" {
				reg.Remove(context.Background(), p.Name)
			}
		}
	})
}
