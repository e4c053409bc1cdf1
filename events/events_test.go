package events

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waappliance/internal/pgtest"
	"waappliance/store"
)

// openStore opens a fresh database of the engine dsn names (see
// pgtest.ForEngines), closed when t ends.
func openStore(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.OpenDSN(context.Background(), dsn, store.Options{Dir: filepath.Join(t.TempDir(), "s"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// reopen opens a second handle on db's database, as another process does,
// closed when t ends.
func reopen(t *testing.T, db *store.DB, dsn string) *store.DB {
	t.Helper()
	var db2 *store.DB
	var err error
	if dsn == "" {
		db2, err = store.OpenPath(context.Background(), db.Path)
	} else {
		db2, err = store.OpenDSN(context.Background(), dsn, store.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	return db2
}

func newLog(t *testing.T, dsn string, now *time.Time) *Log {
	t.Helper()
	return New(openStore(t, dsn), Options{Retention: time.Hour, Now: func() time.Time { return *now }})
}

func TestAppendListResume(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx := context.Background()
		for i, s := range []string{"shop", "support", "shop", "shop"} {
			if _, err := l.Append(ctx, s, TypeMessageReceived, map[string]int{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := l.List(ctx, Filter{})
		if err != nil || len(all) != 4 {
			t.Fatalf("list: %d %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Fatal("ids not increasing")
			}
		}
		shop, _ := l.List(ctx, Filter{Sessions: []string{"shop"}, After: all[0].ID, HasAfter: true, Limit: 1})
		if len(shop) != 1 || shop[0].ID != all[2].ID || string(shop[0].Data) != `{"n":2}` {
			t.Fatalf("resume after %d in shop: %+v", all[0].ID, shop)
		}
		none, _ := l.List(ctx, Filter{Sessions: []string{}})
		if len(none) != 0 {
			t.Fatal("an empty allow-list saw events")
		}
	})
}

func TestPruneRefusesStaleCursor(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx := context.Background()
		var ids []int64
		for i := 0; i < 3; i++ {
			e, _ := l.Append(ctx, "s", TypeSessionState, i)
			ids = append(ids, e.ID)
		}
		now = now.Add(2 * time.Hour)
		fresh, _ := l.Append(ctx, "s", TypeSessionState, 3)
		n, err := l.Prune(ctx)
		if err != nil || n != 3 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		_, err = l.List(ctx, Filter{After: ids[0], HasAfter: true})
		var ce *CursorExpiredError
		if !errors.As(err, &ce) || ce.Oldest != fresh.ID || !errors.Is(err, ErrCursorExpired) {
			t.Fatalf("stale cursor: %v", err)
		}
		// The last pruned id is still a valid cursor: nothing after it is missing.
		got, err := l.List(ctx, Filter{After: ids[2], HasAfter: true})
		if err != nil || len(got) != 1 || got[0].ID != fresh.ID {
			t.Fatalf("cursor at the boundary: %v %v", got, err)
		}
		// Without a cursor a new client starts at the oldest kept event.
		got, _ = l.List(ctx, Filter{})
		if len(got) != 1 {
			t.Fatalf("no cursor: %v", got)
		}
		// Ids keep increasing after a prune that emptied the table.
		now = now.Add(2 * time.Hour)
		l.Prune(ctx)
		e, _ := l.Append(ctx, "s", TypeSessionState, 4)
		if e.ID <= fresh.ID {
			t.Fatalf("id reused after prune: %d <= %d", e.ID, fresh.ID)
		}
	})
}

func TestChangedWakesWaiters(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Now()
		l := newLog(t, dsn, &now)
		ch := l.Changed()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Error("waiter not woken by Append")
			}
		}()
		l.Append(context.Background(), "s", TypeSessionState, nil)
		wg.Wait()
	})
}

// TestListPruneBetweenReadsNoGap: a prune that commits between List's
// cursor check and its query must not turn a stale cursor into a silent
// gap: List reads one snapshot, so it answers either 410 or every event
// after the cursor.
func TestListPruneBetweenReadsNoGap(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx := context.Background()
		var ids []int64
		for i := range 5 {
			e, err := l.Append(ctx, "shop", TypeSessionState, map[string]int{"n": i})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		now = now.Add(2 * time.Hour) // everything so far is past retention
		pruned := false
		l.betweenReads = func() {
			if pruned {
				return
			}
			pruned = true
			if n, err := l.Prune(ctx); err != nil || n != 5 {
				t.Errorf("prune between the reads: %d %v", n, err)
			}
			if _, err := l.Append(ctx, "shop", TypeSessionState, "after the prune"); err != nil {
				t.Error(err)
			}
		}
		cursor := ids[1]
		got, err := l.List(ctx, Filter{After: cursor, HasAfter: true})
		if !pruned {
			t.Fatal("the hook did not run")
		}
		switch {
		case errors.Is(err, ErrCursorExpired):
		case err != nil:
			t.Fatal(err)
		case len(got) == 0 || got[0].ID != cursor+1:
			t.Fatalf("silent gap: after %d the list starts at %v", cursor, got)
		}
		// The next read sees the prune and refuses the cursor.
		l.betweenReads = nil
		if _, err := l.List(ctx, Filter{After: cursor, HasAfter: true}); !errors.Is(err, ErrCursorExpired) {
			t.Fatalf("stale cursor after the prune: %v", err)
		}
	})
}

// TestPruneRunsOnPrune: the pruner runs the registered funcs with the
// events' cutoff, until they are removed.
func TestPruneRunsOnPrune(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		var got []time.Time
		remove := l.OnPrune(func(ctx context.Context, cutoff time.Time) (int64, error) {
			got = append(got, cutoff)
			return 0, nil
		})
		if _, err := l.Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		remove()
		l.Prune(context.Background())
		if len(got) != 1 || !got[0].Equal(now.Add(-time.Hour)) {
			t.Fatalf("OnPrune calls %v, want one with cutoff %v", got, now.Add(-time.Hour))
		}
	})
}

// TestAppendOnceIdempotentUntilPruned: an event with a key is written once
// per (session, type, key) — the repeat returns the first event, takes no
// id, and wins no race — and the key goes with its event when it is pruned.
func TestAppendOnceIdempotentUntilPruned(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx := context.Background()
		const key = "15550002@s.whatsapp.net 15550002@s.whatsapp.net 3EB0AA"
		first, ok, err := l.AppendOnce(ctx, "shop", TypeMessageReceived, key, map[string]string{"text": "first copy"})
		if err != nil || !ok {
			t.Fatalf("first: %v %v", ok, err)
		}
		wake := l.Changed()
		again, ok, err := l.AppendOnce(ctx, "shop", TypeMessageReceived, key, map[string]string{"text": "second copy"})
		if err != nil || ok || again.ID != first.ID || string(again.Data) != `{"text":"first copy"}` || !again.At.Equal(first.At) {
			t.Fatalf("repeat: appended %v, %+v, %v; want the first event %+v", ok, again, err, first)
		}
		select {
		case <-wake:
			t.Fatal("a repeat that wrote nothing woke the streams")
		default:
		}
		if latest, _ := l.Latest(ctx); latest != first.ID {
			t.Fatalf("the ignored repeat took an id: latest %d, first %d", latest, first.ID)
		}
		// The key is scoped by session and type; events without one never clash.
		for _, c := range []struct{ session, typ, key string }{
			{"support", TypeMessageReceived, key}, {"shop", TypeMessageStatus, key}, {"shop", TypeMessageReceived, key + "B"},
		} {
			if _, ok, err := l.AppendOnce(ctx, c.session, c.typ, c.key, 1); err != nil || !ok {
				t.Errorf("%+v: appended %v, %v", c, ok, err)
			}
		}
		for i := 0; i < 2; i++ {
			if _, err := l.Append(ctx, "shop", TypeMessageReceived, 1); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := l.AppendOnce(ctx, "shop", TypeMessageReceived, "", 1); err == nil {
			t.Error("an empty key was taken")
		}
		all, _ := l.List(ctx, Filter{})
		if len(all) != 6 || all[1].ID != first.ID+1 {
			t.Fatalf("log: %d events, second id %d (first %d); want 6 without a gap", len(all), all[1].ID, first.ID)
		}

		// Concurrent copies (two clients of a session, a redelivery racing the
		// first): one event.
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := l.AppendOnce(ctx, "shop", TypeMessageReceived, "race", i)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d of %d concurrent copies appended, want 1", won, n)
		}

		// Pruned with its event: the keys are gone and the same key is new again.
		now = now.Add(2 * time.Hour)
		if _, err := l.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		var keys int
		if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE dedupe_key IS NOT NULL`).Scan(&keys); err != nil || keys != 0 {
			t.Fatalf("%d keys left after pruning every event (%v)", keys, err)
		}
		if e, ok, err := l.AppendOnce(ctx, "shop", TypeMessageReceived, key, 2); err != nil || !ok || e.ID <= first.ID {
			t.Fatalf("after pruning: appended %v, id %d, %v", ok, e.ID, err)
		}
	})
}

// TestBatchedAppendsNoGapWakeAfterCommit: appends that share one commit
// (queued while another batch holds the committer) give contiguous ids,
// repeats of a key inside the batch leave no gap and one event, and a
// stream woken by any of them can already read it.
func TestBatchedAppendsNoGapWakeAfterCommit(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx := context.Background()
		first, err := l.Append(ctx, "shop", TypeSessionState, 0)
		if err != nil {
			t.Fatal(err)
		}
		woken := make(chan []Event, 1)
		wake := l.Changed()
		go func() {
			<-wake
			evs, err := l.List(ctx, Filter{After: first.ID, HasAfter: true})
			if err != nil {
				t.Error(err)
			}
			woken <- evs
		}()
		started, release := make(chan struct{}), make(chan struct{})
		held := make(chan error, 1)
		go func() {
			held <- l.db.Batch(ctx, func(context.Context, *sql.Tx) error {
				close(started)
				<-release
				return nil
			})
		}()
		<-started
		const copies, plain = 8, 4
		var wg sync.WaitGroup
		var appended atomic.Int32
		for i := 0; i < copies; i++ {
			wg.Go(func() {
				if _, ok, err := l.AppendOnce(ctx, "shop", TypeMessageReceived, "k", i); err != nil {
					t.Error(err)
				} else if ok {
					appended.Add(1)
				}
			})
		}
		for i := 0; i < plain; i++ {
			wg.Go(func() {
				if _, err := l.Append(ctx, "shop", TypeMessageStatus, i); err != nil {
					t.Error(err)
				}
			})
		}
		time.Sleep(50 * time.Millisecond) // let them queue behind the held batch
		select {
		case <-wake:
			t.Fatal("streams woken before anything committed")
		default:
		}
		close(release)
		wg.Wait()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		if appended.Load() != 1 {
			t.Fatalf("%d of %d copies appended, want 1", appended.Load(), copies)
		}
		all, _ := l.List(ctx, Filter{After: first.ID, HasAfter: true})
		if len(all) != 1+plain {
			t.Fatalf("%d events, want %d", len(all), 1+plain)
		}
		for i, e := range all {
			if e.ID != first.ID+1+int64(i) {
				t.Fatalf("ids %d…: event %d has id %d, a gap", first.ID+1, i, e.ID)
			}
		}
		if latest, _ := l.Latest(ctx); latest != all[len(all)-1].ID {
			t.Fatalf("latest %d, last event %d", latest, all[len(all)-1].ID)
		}
		if evs := <-woken; len(evs) == 0 {
			t.Fatal("a woken stream found nothing committed")
		}
	})
}

// TestSessionsOnlyHidesGlobalEvents: an event of no session (webhook.disabled
// names another peer's webhook) is left out for non-admins (SessionsOnly),
// and listed for admins.
func TestSessionsOnlyHidesGlobalEvents(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx := context.Background()
		if _, err := l.Append(ctx, "shop", TypeMessageReceived, map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, "", TypeWebhookDisabled, map[string]any{"webhook": 7, "peer": "other"}); err != nil {
			t.Fatal(err)
		}
		admin, err := l.List(ctx, Filter{})
		if err != nil || len(admin) != 2 {
			t.Fatalf("admin view: %d %v", len(admin), err)
		}
		peer, err := l.List(ctx, Filter{SessionsOnly: true})
		if err != nil || len(peer) != 1 || peer[0].Session != "shop" {
			t.Fatalf("a non-admin saw %+v (%v), want only the shop event", peer, err)
		}
	})
}
