package audit

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"waappliance/internal/pgtest"
	"waappliance/store"
)

// openDB opens a fresh database of the engine dsn names (see
// pgtest.ForEngines), closed when t ends.
func openDB(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.OpenDSN(context.Background(), dsn, store.Options{Dir: filepath.Join(t.TempDir(), "s"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestBeginFinish: Begin commits a row with status 0; Finish sets a
// success's status and takes a refusal's row back out into the counts.
func TestBeginFinish(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := New(openDB(t, dsn), Options{})
		e := Entry{Peer: "a", Method: "POST", Route: "/v1/peers", RequestID: "r1"}
		id, err := l.Begin(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		es, _ := l.List(ctx, "", 0, 0)
		if len(es) != 1 || es[0].Status != 0 || es[0].Count != 1 || es[0].LastAt != nil {
			t.Fatalf("after Begin: %+v", es)
		}
		e.Status = 201
		if err := l.Finish(ctx, id, e); err != nil {
			t.Fatal(err)
		}
		id2, _ := l.Begin(ctx, e)
		e.Status = 404
		if err := l.Finish(ctx, id2, e); err != nil {
			t.Fatal(err)
		}
		if n := l.PendingFinishes(); n != 2 {
			t.Fatalf("%d finishes pending, want 2", n)
		}
		if err := l.flushFinishes(ctx); err != nil {
			t.Fatal(err)
		}
		es, _ = l.List(ctx, "", 0, 0)
		if len(es) != 1 || es[0].Status != 201 {
			t.Fatalf("after Finish: %+v", es)
		}
		if l.Pending() != 1 {
			t.Fatalf("the 404 was not counted: %d keys", l.Pending())
		}
		// A 5xx after the handler ran keeps its row: it may have done part.
		id3, _ := l.Begin(ctx, e)
		e.Status = 504
		l.Finish(ctx, id3, e)
		l.flushFinishes(ctx)
		es, _ = l.List(ctx, "", 0, 0)
		if len(es) != 2 || es[1].Status != 504 {
			t.Fatalf("a 504 lost its row: %+v", es)
		}
	})
}

// TestRefusalsAggregated: refusals become one row per peer, method, route
// and status per flush, with the count and the first and last time; the
// map is capped, the overflow folded into the peer's catch-all key.
func TestRefusalsAggregated(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		c := &clock{time.Unix(1_700_000_000, 0).UTC()}
		l := New(openDB(t, dsn), Options{MaxKeys: 3, Now: c.now})
		first := c.t
		for i := range 68000 {
			c.t = first.Add(time.Duration(i) * time.Millisecond)
			l.Refused(Entry{Peer: "flood", Method: "DELETE", Route: "/v1/peers/{name}", Target: fmt.Sprint("t", i%2), Status: 429, RequestID: fmt.Sprint(i)})
		}
		last := c.t
		l.Refused(Entry{Peer: "flood", Method: "POST", Route: "/v1/peers", Status: 403})
		l.Refused(Entry{Peer: "other", Method: "POST", Route: "/v1/peers", Target: "x", Status: 404})
		// The map is full (3 keys): new keys fold into their peer's catch-all.
		for i := range 100 {
			l.Refused(Entry{Peer: "flood", Method: "POST", Route: fmt.Sprint("/v1/random/", i), Status: 404})
		}
		if n := l.Pending(); n != 4 {
			t.Fatalf("%d keys held, want 3 + one catch-all", n)
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if l.Pending() != 0 {
			t.Fatal("Flush kept keys")
		}
		es, _ := l.List(ctx, "", 0, 0)
		got := map[string]Entry{}
		for _, e := range es {
			got[fmt.Sprintf("%s %s %s %d", e.Peer, e.Method, e.Route, e.Status)] = e
		}
		f := got["flood DELETE /v1/peers/{name} 429"]
		if f.Count != 68000 || !f.At.Equal(first) || f.LastAt == nil || !f.LastAt.Equal(last) || f.Target != "*" || f.RequestID != "67999" {
			t.Errorf("flood row: %+v", f)
		}
		if o := got["other POST /v1/peers 404"]; o.Count != 1 || o.Target != "x" {
			t.Errorf("other row: %+v", o)
		}
		if ca := got["flood * * 404"]; ca.Count != 100 {
			t.Errorf("catch-all row: %+v (rows %v)", ca, got)
		}
		if len(es) != 4 {
			t.Errorf("%d rows, want 4: %v", len(es), got)
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if es2, _ := l.List(ctx, "", 0, 0); len(es2) != 4 {
			t.Errorf("an empty flush wrote rows")
		}
	})
}

// TestFlushFailureKeepsCounts: counts a failed flush could not write stay
// for the next one.
func TestFlushFailureKeepsCounts(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db := openDB(t, dsn)
		l := New(db, Options{})
		l.Refused(Entry{Peer: "a", Method: "POST", Route: "/x", Status: 429})
		l.Refused(Entry{Peer: "a", Method: "POST", Route: "/x", Status: 429})
		db.Close()
		if err := l.Flush(context.Background()); err == nil {
			t.Fatal("flush to a closed database succeeded")
		}
		if l.Pending() != 1 {
			t.Fatalf("counts lost: %d keys", l.Pending())
		}
	})
}

// TestPruneRetention: rows whose last request is older than the retention
// go; newer ones and aggregated rows that ran into the window stay.
func TestPruneRetention(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		c := &clock{time.Unix(1_700_000_000, 0).UTC()}
		l := New(openDB(t, dsn), Options{Retention: 24 * time.Hour, Now: c.now})
		start := c.t
		l.Record(ctx, Entry{At: start, Peer: "old", Method: "POST", Route: "/x", Status: 201})
		l.Refused(Entry{At: start.Add(-time.Minute), Peer: "span", Method: "POST", Route: "/x", Status: 429})
		l.Refused(Entry{At: start.Add(13 * time.Hour), Peer: "span", Method: "POST", Route: "/x", Status: 429})
		l.Flush(ctx)
		l.Record(ctx, Entry{At: start.Add(12 * time.Hour), Peer: "new", Method: "POST", Route: "/x", Status: 201})
		c.t = start.Add(25 * time.Hour)
		n, err := l.Prune(ctx, time.Time{})
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want 1", n, err)
		}
		es, _ := l.List(ctx, "", 0, 0)
		if len(es) != 2 || es[0].Peer != "span" || es[1].Peer != "new" {
			t.Fatalf("left: %+v", es)
		}
		c.t = start.Add(48 * time.Hour)
		if n, _ := l.Prune(ctx, time.Time{}); n != 2 {
			t.Fatalf("second prune: %d", n)
		}
	})
}

// TestConcurrentRefusalsAndFlushes: refusals counted from many goroutines
// while several flushers write them: every refusal ends up counted in
// exactly one row, none lost between the swap of the map and the commit.
func TestConcurrentRefusalsAndFlushes(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := New(openDB(t, dsn), Options{})
		const refusers, each, flushers = 8, 500, 3
		var refusing, flushing sync.WaitGroup
		stop := make(chan struct{})
		for f := range flushers {
			flushing.Go(func() {
				for {
					if err := l.Flush(ctx); err != nil {
						t.Errorf("flusher %d: %v", f, err)
						return
					}
					select {
					case <-stop:
						return
					default:
					}
				}
			})
		}
		for g := range refusers {
			refusing.Go(func() {
				for i := range each {
					l.Refused(Entry{Peer: fmt.Sprint("p", g%3), Method: "POST", Route: "/v1/messages", Target: fmt.Sprint(i % 2), Status: 429})
				}
			})
		}
		refusing.Wait()
		close(stop)
		flushing.Wait()
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for after := int64(0); ; {
			es, err := l.List(ctx, "", after, MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				counts[e.Peer] += e.Count
				after = e.ID
			}
		}
		want := map[string]int{"p0": 3 * each, "p1": 3 * each, "p2": 2 * each}
		if !maps.Equal(counts, want) {
			t.Fatalf("counted %v, want %v", counts, want)
		}
	})
}

// TestConcurrentBeginFinish: requests begun and finished from many
// goroutines each keep their own row with their own final status.
func TestConcurrentBeginFinish(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := New(openDB(t, dsn), Options{})
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				e := Entry{Peer: "a", Method: "POST", Route: "/v1/peers", RequestID: fmt.Sprint(i)}
				id, err := l.Begin(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				e.Status = 200 + i
				if err := l.Finish(ctx, id, e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		es, err := l.List(ctx, "a", 0, MaxLimit)
		if err != nil || len(es) != n {
			t.Fatalf("%d rows (%v), want %d", len(es), err, n)
		}
		for _, e := range es {
			if fmt.Sprint(e.Status-200) != e.RequestID {
				t.Errorf("row of request %s has status %d", e.RequestID, e.Status)
			}
		}
		if es, _ := l.List(ctx, "nobody", 0, 0); len(es) != 0 {
			t.Errorf("another peer's filter saw %d rows", len(es))
		}
	})
}

// TestFinishAfterTheAnswer: Finish does not wait for the database; the
// flusher writes the pending finishes FinishDelay later in one commit. A
// crash before that (the process gone, the database reopened) leaves the
// begun rows at status 0, which List shows as they are: no outcome.
func TestFinishAfterTheAnswer(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := openDB(t, dsn)
		l := New(db, Options{FinishDelay: time.Hour})
		e := Entry{Peer: "a", Method: "POST", Route: "/v1/sessions/{session}/messages", Target: "s", RequestID: "r1"}
		id, err := l.Begin(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		e.Status = 202
		if err := l.Finish(ctx, id, e); err != nil {
			t.Fatal(err)
		}
		// The "crash": a fresh Log on the same database, the first one's
		// memory lost.
		es, err := New(db, Options{}).List(ctx, "", 0, 0)
		if err != nil || len(es) != 1 || es[0].Status != 0 || es[0].RequestID != "r1" {
			t.Fatalf("after a crash between answer and Finish: %+v (%v), want the row at status 0", es, err)
		}

		// The flusher writes what is pending after its delay, and a
		// refusal's row is taken out into the counts.
		l = New(db, Options{FinishDelay: 5 * time.Millisecond, Interval: time.Hour})
		run, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); l.RunFlusher(run, func(err error) { t.Error(err) }) }()
		defer func() { stop(); <-done }()
		l.Finish(ctx, id, e)
		id2, _ := l.Begin(ctx, e)
		e.Status = 409
		l.Finish(ctx, id2, e)
		deadline := time.Now().Add(10 * time.Second)
		for {
			es, _ = l.List(ctx, "", 0, 0)
			if len(es) == 1 && es[0].Status == 202 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the flusher did not write the finishes: %+v", es)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if l.PendingFinishes() != 0 || l.Pending() != 1 {
			t.Fatalf("pending: %d finishes, %d refusal keys; want 0, 1", l.PendingFinishes(), l.Pending())
		}
	})
}

// TestFinishBackPressure: past maxFinishes pending, Finish writes them
// itself, so memory stays bounded without a flusher.
func TestFinishBackPressure(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := New(openDB(t, dsn), Options{FinishDelay: time.Hour})
		for i := range maxFinishes {
			e := Entry{Peer: "a", Method: "POST", Route: "/v1/peers", RequestID: fmt.Sprint(i)}
			id, err := l.Begin(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			e.Status = 201
			if err := l.Finish(ctx, id, e); err != nil {
				t.Fatal(err)
			}
		}
		if n := l.PendingFinishes(); n != 0 {
			t.Fatalf("%d finishes pending past the cap", n)
		}
		es, _ := l.List(ctx, "a", int64(maxFinishes-10), MaxLimit)
		for _, e := range es {
			if e.Status != 201 {
				t.Fatalf("row %d: status %d", e.ID, e.Status)
			}
		}
	})
}
