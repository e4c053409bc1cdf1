package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"waappliance/internal/pgtest"
)

// TestFollowersNeverSkipAnID: many appenders against readers that follow
// the log as a client resuming after=N does. On PostgreSQL ids come from a
// sequence before commit, so without ordering a reader can see id 12
// commit before 11 and then, resuming after 12, skip 11 for good. Every
// reader must see every id, in order, with none skipped.
//
// Half of the appenders go through Append and AppendOnce (Batch, which
// already runs alone under the store's write lock); the other half append
// with AppendTx in transactions of their own that take no write lock, the
// path where the append lock alone keeps ids in commit order. Without
// store.DB.AppendLock in appendTx this test fails on PostgreSQL.
func TestFollowersNeverSkipAnID(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const appenders, each, readers = 8, 100, 4
		const total = appenders * each

		// appendOwn appends in a transaction that is neither WriteTx nor
		// Batch, and notifies after its commit, as AppendTx's doc asks.
		appendOwn := func(g, i int) error {
			tx, err := l.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := l.AppendTx(ctx, tx, "shop", TypeMessageStatus, map[string]int{"g": g, "i": i}); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			l.Notify()
			return nil
		}

		var appending sync.WaitGroup
		done := make(chan struct{})
		for g := range appenders {
			appending.Go(func() {
				for i := range each {
					var err error
					switch g % 4 {
					case 0:
						_, err = l.Append(ctx, "shop", TypeSessionState, map[string]int{"g": g, "i": i})
					case 1:
						key := fmt.Sprintf("g%d-%d", g, i)
						var ok bool
						if _, ok, err = l.AppendOnce(ctx, "shop", TypeMessageReceived, key, i); err == nil && !ok {
							err = fmt.Errorf("the new key %s was taken", key)
						}
						if err == nil && i%10 == 0 { // a redelivery: no new event
							if _, ok, err = l.AppendOnce(ctx, "shop", TypeMessageReceived, key, i); err == nil && ok {
								err = fmt.Errorf("the repeat of %s appended", key)
							}
						}
					default:
						err = appendOwn(g, i)
					}
					if err != nil {
						t.Errorf("appender %d, append %d: %v", g, i, err)
						return
					}
				}
			})
		}
		go func() {
			appending.Wait()
			close(done)
		}()

		seen := make([][]int64, readers)
		var reading sync.WaitGroup
		for r := range readers {
			reading.Go(func() {
				limit := []int{1000, 7, 50, 1}[r]
				var cursor int64
				finished := false
				for {
					select {
					case <-done:
						finished = true
					default:
					}
					evs, err := l.List(ctx, Filter{After: cursor, HasAfter: true, Limit: limit})
					if err != nil {
						t.Errorf("reader %d after %d: %v", r, cursor, err)
						return
					}
					for _, e := range evs {
						seen[r] = append(seen[r], e.ID)
						cursor = e.ID
					}
					// Only a read that began after every append returned,
					// and found nothing more, ends the follow.
					if finished && len(evs) < limit {
						return
					}
				}
			})
		}
		reading.Wait()
		<-done
		if t.Failed() {
			return
		}

		var want []int64
		for cursor := int64(0); ; {
			evs, err := l.List(ctx, Filter{After: cursor, HasAfter: true, Limit: MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				want = append(want, e.ID)
			}
			cursor = evs[len(evs)-1].ID
		}
		if len(want) != total || want[0] != 1 || want[total-1] != total {
			t.Fatalf("the log holds %d events, ids %d…%d; want 1…%d (a repeat key took an id?)", len(want), want[0], want[len(want)-1], total)
		}
		for r, ids := range seen {
			if slices.Equal(ids, want) {
				continue
			}
			for i := range want {
				if i >= len(ids) || ids[i] != want[i] {
					t.Errorf("reader %d skipped an id: after %v it read %v, the log has %v", r, ids[max(0, i-3):i], ids[i:min(len(ids), i+3)], want[max(0, i-3):min(len(want), i+3)])
					break
				}
			}
		}
		if latest, err := l.Latest(ctx); err != nil || latest != total {
			t.Errorf("latest %d (%v), want %d", latest, err, total)
		}
	})
}

// TestAppendOnceSameKeyConcurrently: the same key from 10 goroutines, on
// two handles of the database (two processes), appends exactly one event,
// and every caller gets that event.
func TestAppendOnceSameKeyConcurrently(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		l2 := New(reopen(t, l.db, dsn), Options{Retention: time.Hour, Now: func() time.Time { return now }})
		ctx := context.Background()
		before, err := l.Append(ctx, "shop", TypeSessionState, "before")
		if err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			key := fmt.Sprint("race-", round)
			const n = 10
			start := make(chan struct{})
			got := make([]Event, n)
			won := make([]bool, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					log := l
					if i%2 == 1 {
						log = l2
					}
					<-start
					var err error
					if got[i], won[i], err = log.AppendOnce(ctx, "shop", TypeMessageReceived, key, i); err != nil {
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			winners := 0
			for i := range n {
				if won[i] {
					winners++
				}
				if got[i].ID != got[0].ID || got[i].ID == 0 {
					t.Fatalf("round %d: callers got events %d and %d", round, got[0].ID, got[i].ID)
				}
			}
			if winners != 1 {
				t.Fatalf("round %d: %d of %d callers appended, want 1", round, winners, n)
			}
			var rows int
			if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE dedupe_key = $1`, key).Scan(&rows); err != nil || rows != 1 {
				t.Fatalf("round %d: %d rows hold the key (%v)", round, rows, err)
			}
			if want := before.ID + 1 + int64(round); got[0].ID != want {
				t.Fatalf("round %d: the event has id %d, want %d: the repeats took ids", round, got[0].ID, want)
			}
		}
	})
}

// TestFollowDeliversInOrderAndWakes: Follow hands over what was there,
// then sleeps and wakes on each append, in id order across full batches;
// a cursor out of retention is refused before anything is delivered.
func TestFollowDeliversInOrderAndWakes(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		now := time.Unix(1_700_000_000, 0)
		l := newLog(t, dsn, &now)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range 7 {
			if _, err := l.Append(ctx, "shop", TypeSessionState, map[string]int{"i": i}); err != nil {
				t.Fatal(err)
			}
		}
		fctx, stop := context.WithCancel(ctx)
		fl, err := Follow(fctx, l, Filter{Limit: 3, Sessions: []string{"shop"}})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		next := func() {
			select {
			case b, ok := <-fl.C:
				if !ok {
					t.Fatalf("follower ended: %v", fl.Err())
				}
				for _, e := range b {
					got = append(got, e.ID)
				}
			case <-ctx.Done():
				t.Fatal("no batch")
			}
		}
		for len(got) < 7 {
			next()
		}
		if _, err := l.Append(ctx, "other", TypeSessionState, nil); err != nil { // filtered out
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, "shop", TypeSessionState, nil); err != nil {
			t.Fatal(err)
		}
		next()
		if want := []int64{1, 2, 3, 4, 5, 6, 7, 9}; !slices.Equal(got, want) {
			t.Fatalf("ids %v, want %v", got, want)
		}
		stop()
		if _, ok := <-fl.C; ok {
			t.Fatal("a batch after the context ended")
		}
		if err := fl.Err(); err != nil {
			t.Fatalf("Err after cancel: %v", err)
		}

		now = now.Add(2 * time.Hour)
		if _, err := l.Append(ctx, "shop", TypeSessionState, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := Follow(ctx, l, Filter{After: 2, HasAfter: true}); !errors.Is(err, ErrCursorExpired) {
			t.Fatalf("Follow from a pruned cursor: %v", err)
		}
	})
}
