package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/events"
	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id   int64
	typ  string
	data string
}

// readSSE opens the stream (resuming from lastID when > 0) and sends parsed
// events on the returned channel until ctx ends or the stream breaks.
func readSSE(t *testing.T, ctx context.Context, cl *wgclient.Client, query string, lastID int64) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://10.77.0.1/v1/events/stream"+query, nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	hc := &http.Client{Transport: cl.HTTP.Transport} // no overall timeout for a stream
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			case line == "" && ev.id > 0:
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	return ch, resp
}

func TestSSEResumeMissesNothingAndRepeatsNothing(t *testing.T) {
	ta := startAppliance(t)
	cl := ta.client(t, ta.addPeer(t, "reader", peers.ScopeRead))
	log := ta.Events()
	ctx := context.Background()
	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := log.Append(ctx, "shop", events.TypeSessionState, map[string]int{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(0, 5) // history before the client connects

	sctx, cancel := context.WithCancel(ctx)
	ch, resp := readSSE(t, sctx, cl, "", 0)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []sseEvent
	want := func(n int) {
		deadline := time.After(10 * time.Second)
		for len(got) < n {
			select {
			case e, ok := <-ch:
				if !ok {
					return
				}
				got = append(got, e)
			case <-deadline:
				t.Fatalf("got %d events, want %d", len(got), n)
			}
		}
	}
	want(5)
	appendN(5, 3) // live
	want(8)
	cancel() // the client drops
	for range ch {
	}
	appendN(8, 4) // written while it is away
	ch, _ = readSSE(t, ctx, cl, "", got[len(got)-1].id)
	want(12)
	appendN(12, 1)
	want(13)
	for i, e := range got {
		if e.typ != events.TypeSessionState || e.data == "" || !strings.Contains(e.data, fmt.Sprintf(`{"n":%d}`, i)) {
			t.Fatalf("event %d = %+v: missed, repeated or out of order", i, e)
		}
		if i > 0 && e.id <= got[i-1].id {
			t.Fatalf("ids not increasing at %d", i)
		}
	}
}

func TestEventsListAllowListAndStaleCursor(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	now := time.Now()
	ta := serveState(t, dir)
	log := ta.Events()
	ctx := context.Background()
	for _, s := range []string{"shop", "support", "shop"} {
		log.Append(ctx, s, events.TypeSessionState, map[string]string{"s": s})
	}
	c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "shopper", Scopes: []peers.Scope{peers.ScopeRead}, Sessions: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	shopper := ta.client(t, c)
	var out struct {
		Events []struct {
			ID      int64
			Session string
		}
		NextAfter int64 `json:"next_after"`
	}
	r := do(t, shopper, "GET", "/v1/events", nil)
	if r.Status != 200 || r.JSON(&out) != nil {
		t.Fatalf("events: %d %s", r.Status, r.Body)
	}
	if len(out.Events) != 2 {
		t.Fatalf("shopper sees %d events, want the 2 of its session: %s", len(out.Events), r.Body)
	}
	for _, e := range out.Events {
		if e.Session != "shop" {
			t.Fatalf("allow-list leak: %+v", e)
		}
	}
	wantError(t, do(t, shopper, "GET", "/v1/events?session=support", nil), 404, "not_found")
	wantError(t, do(t, shopper, "GET", "/v1/events?after=-1", nil), 400, "invalid_argument")
	// Resume from next_after: nothing new yet.
	r = do(t, shopper, "GET", "/v1/events?after="+strconv.FormatInt(out.NextAfter, 10), nil)
	if r.JSON(&out) != nil || len(out.Events) != 0 {
		t.Fatalf("resume: %s", r.Body)
	}
	_ = now
}

func TestEventsStaleCursorGets410(t *testing.T) {
	ta := startAppliance(t)
	cl := ta.client(t, ta.addPeer(t, "reader", peers.ScopeRead))
	ctx := context.Background()
	old, _ := ta.Events().Append(ctx, "shop", events.TypeSessionState, 1)
	ta.Events().Append(ctx, "shop", events.TypeSessionState, 2)
	// Prune with a log that sees the future: everything so far is past retention.
	future := events.New(ta.DB(), events.Options{Retention: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if _, err := future.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	kept, _ := ta.Events().Append(ctx, "shop", events.TypeSessionState, 3)
	r := do(t, cl, "GET", "/v1/events?after="+strconv.FormatInt(old.ID, 10), nil)
	wantError(t, r, 410, "cursor_expired")
	if r.Header.Get("X-Oldest-Event-Id") != strconv.FormatInt(kept.ID, 10) || !strings.Contains(string(r.Body), strconv.FormatInt(kept.ID, 10)) {
		t.Fatalf("410 does not name the oldest id %d: %s %v", kept.ID, r.Body, r.Header)
	}
	// The stream refuses the same cursor the same way.
	req, _ := http.NewRequest("GET", "http://10.77.0.1/v1/events/stream", nil)
	req.Header.Set("Last-Event-ID", strconv.FormatInt(old.ID, 10))
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 410 {
		t.Fatalf("stream with a stale Last-Event-ID: %d", resp.StatusCode)
	}
}

// TestCloseWithOpenStreamIsPrompt: an SSE client connected at shutdown
// does not hold Close for the shutdown timeout: Shutdown waits for active
// connections, so a prompt Close means the stream's handler ended. (Whether
// the client sees the end is up to the tunnel, which Close takes down
// right after.)
func TestCloseWithOpenStreamIsPrompt(t *testing.T) {
	ta := startAppliance(t)
	cl := ta.client(t, ta.addPeer(t, "reader", peers.ScopeRead))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, resp := readSSE(t, ctx, cl, "", 0)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	t0 := time.Now()
	if err := ta.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v with a stream open (shutdown timeout %v)", d, app.ShutdownTimeout)
	}
}
