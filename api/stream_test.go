package api

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"waappliance/events"
	"waappliance/peers"
)

// quietLog is an event log with no events that never changes.
type quietLog struct{}

func (quietLog) List(context.Context, events.Filter) ([]events.Event, error) {
	return []events.Event{}, nil
}
func (quietLog) Changed() <-chan struct{} { return nil }

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
