package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"waappliance/peers"
	"waappliance/store"
)

// discard is a ResponseWriter that keeps nothing but its headers, so that
// the benchmark measures the API's work and not a recorder's.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkWhoami is the API's own per-request cost of GET /v1/whoami
// (identity, browser guard, rate limit, router, handler, JSON), in
// process, without the tunnel:
//
//	go test ./api -run XXX -bench Whoami -benchmem
func BenchmarkWhoami(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "s"), true)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	srv, _ := peers.InitServer(ctx, db, peers.Server{})
	reg, _ := peers.NewRegistry(ctx, db, srv, nil)
	c, err := reg.Add(ctx, peers.AddOptions{Name: "p", Scopes: []peers.Scope{peers.ScopeRead}, Rate: 1e6, Burst: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	h := New(Options{Registry: reg})
	req := tunnelRequest("GET", "/v1/whoami", "")
	req.RemoteAddr = c.Peer.Addr.String() + ":40000"
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("whoami: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
