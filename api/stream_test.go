package api

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"waappliance/events"
	"waappliance/peers"
	"waappliance/store"
)

// quietLog is an event log with no events that never changes.
type quietLog struct{}

func (quietLog) List(context.Context, events.Filter) ([]events.Event, error) {
	return []events.Event{}, nil
}
func (quietLog) Changed() <-chan struct{} { return nil }
func (quietLog) Newer(int64) bool         { return false }

// TestShutdownEndsStreams: http.Server.Shutdown with an SSE client
// connected returns at once and the client's stream ends, instead of
// Shutdown waiting for its timeout (request contexts are not cancelled by
// Shutdown).
func TestShutdownEndsStreams(t *testing.T) {
	_, reg := newTestServer(t)
	c, err := reg.Add(context.Background(), peers.AddOptions{Name: "reader", Scopes: []peers.Scope{peers.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Registry: reg, Events: quietLog{}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = c.Peer.Addr.String() + ":1" // as if through the tunnel
		r.Host = "10.77.0.1"
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(t0))
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("Shutdown took %v with a stream open", d)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the client's stream did not end")
	}
}

// TestSendBudgetForgetsGoneKeys: buckets of removed peers and rotated keys
// are dropped once the registry changed.
func TestSendBudgetForgetsGoneKeys(t *testing.T) {
	_, reg := newTestServer(t)
	ctx := context.Background()
	add := func(name string) *peers.Peer {
		c, err := reg.Add(ctx, peers.AddOptions{Name: name, Scopes: []peers.Scope{peers.ScopeSend}})
		if err != nil {
			t.Fatal(err)
		}
		return &c.Peer
	}
	b := newSendBudget(nil)
	a, k := add("a"), add("k")
	b.allow(a, reg)
	b.allow(k, reg)
	if n := b.lim.Len(); n != 2 {
		t.Fatalf("%d buckets, want 2", n)
	}
	if err := reg.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	rot, err := reg.Rotate(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	b.allow(&rot.Peer, reg)
	if n := b.lim.Len(); n != 1 {
		t.Fatalf("%d buckets after a removal and a rotation, want 1 (the new key's)", n)
	}
	if err := reg.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	b.allow(a, reg) // a is gone from the registry too, but asks once more
	if n := b.lim.Len(); n != 1 {
		t.Fatalf("%d buckets after the rotated key's peer went, want 1 (the last caller's)", n)
	}
}

// countingLog counts the queries of the streams it serves.
type countingLog struct {
	*events.Log
	lists atomic.Int64
}

func (c *countingLog) List(ctx context.Context, f events.Filter) ([]events.Event, error) {
	c.lists.Add(1)
	return c.Log.List(ctx, f)
}

// TestStreamSkipsQueryWhenNothingNewer: a wake-up with nothing appended past
// a stream's cursor (another stream's event, here bare Notifies) costs the
// stream no query, and an event appended afterwards still reaches it.
func TestStreamSkipsQueryWhenNothingNewer(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srvCfg, err := peers.InitServer(ctx, db, peers.Server{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := peers.NewRegistry(ctx, db, srvCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Add(ctx, peers.AddOptions{Name: "reader", Scopes: []peers.Scope{peers.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	log := &countingLog{Log: events.New(db, events.Options{})}
	if _, err := log.Append(ctx, "s", "session.state", map[string]string{"state": "new"}); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Registry: reg, Events: log})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = c.Peer.Addr.String() + ":1"
		r.Host = srvCfg.TunnelAddr().String()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent := func() string {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "id: ") {
				return strings.TrimSpace(line)
			}
		}
	}
	if got := readEvent(); got != "id: 1" {
		t.Fatalf("first event: %q", got)
	}
	time.Sleep(50 * time.Millisecond) // the stream reaches its wait
	before := log.lists.Load()
	for i := 0; i < 20; i++ {
		log.Notify()
		time.Sleep(5 * time.Millisecond)
	}
	if n := log.lists.Load() - before; n != 0 {
		t.Fatalf("20 wake-ups with nothing new cost the stream %d queries, want 0", n)
	}
	if _, err := log.Append(ctx, "s", "session.state", map[string]string{"state": "pairing"}); err != nil {
		t.Fatal(err)
	}
	if got := readEvent(); got != "id: 2" {
		t.Fatalf("event after the wake-ups: %q", got)
	}
}
