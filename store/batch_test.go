package store

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batchDB opens a database of e with a table t and records the size of
// each committed batch.
func batchDB(t *testing.T, e engine) (*DB, func() []int) {
	t.Helper()
	db := e.open(t)
	if _, err := db.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sizes []int
	db.batch.onCommit = func(n int) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}
	return db, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sizes)
	}
}

func insert(id int) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t(id) VALUES ($1)`, id)
		return err
	}
}

func ids(t *testing.T, db *DB) []int { return tableIDs(t, db, "t") }

// tableIDs lists the ids of a table of the tests, in order.
func tableIDs(t *testing.T, db *DB, table string) []int {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM ` + table + ` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		rows.Scan(&id)
		out = append(out, id)
	}
	return out
}

// hold occupies the committer with a batch whose fn (inserting id 0) waits
// for release, so that what callers queue meanwhile forms the next batch.
func hold(t *testing.T, db *DB) (release func(), done <-chan error) {
	t.Helper()
	started, rel, res := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		res <- db.Batch(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			<-rel
			return insert(0)(ctx, tx)
		})
	}()
	<-started
	return func() { close(rel) }, res
}

// waitQueued waits until n callers are queued behind the committer.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.batch.mu.Lock()
		got := len(db.batch.queue)
		db.batch.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchCommitsConcurrentCallersTogether: a lone caller commits at once
// on its own; callers that queue while a commit is under way share the
// next one, at most maxBatch to a transaction.
func TestBatchCommitsConcurrentCallersTogether(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		ctx := context.Background()
		if err := db.Batch(ctx, insert(1000)); err != nil {
			t.Fatal(err)
		}
		release, held := hold(t, db)
		const n = 100
		errs := make(chan error, n)
		for i := 1; i <= n; i++ {
			go func() { errs <- db.Batch(ctx, insert(i)) }()
		}
		waitQueued(t, db, n)
		release()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if got := sizes(); !slices.Equal(got, []int{1, 1, maxBatch, n - maxBatch}) {
			t.Fatalf("batch sizes %v, want [1 1 %d %d]", got, maxBatch, n-maxBatch)
		}
		if got := ids(t, db); len(got) != n+2 {
			t.Fatalf("%d rows committed, want %d", len(got), n+2)
		}
	})
}

// TestBatchFnErrorsStayTheirOwn: in one batch, a fn that returns an error
// (its own or a failed statement's) or panics has only its own writes
// rolled back and gets its own error; the others commit. The committer
// carries on after a panic.
func TestBatchFnErrorsStayTheirOwn(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		ctx := context.Background()
		errBoom := errors.New("boom")
		fns := map[string]func(context.Context, *sql.Tx) error{
			"ok1": insert(1),
			"own error": func(ctx context.Context, tx *sql.Tx) error {
				insert(2)(ctx, tx)
				return errBoom
			},
			"constraint": func(ctx context.Context, tx *sql.Tx) error {
				if err := insert(3)(ctx, tx); err != nil {
					return err
				}
				return insert(3)(ctx, tx)
			},
			"panic": func(ctx context.Context, tx *sql.Tx) error {
				insert(4)(ctx, tx)
				panic("bad fn")
			},
			"ok5": insert(5),
		}
		release, held := hold(t, db)
		var mu sync.Mutex
		got := map[string]error{}
		var wg sync.WaitGroup
		for name, fn := range fns {
			wg.Go(func() {
				err := db.Batch(ctx, fn)
				mu.Lock()
				got[name] = err
				mu.Unlock()
			})
		}
		waitQueued(t, db, len(fns))
		release()
		wg.Wait()
		<-held
		if got["ok1"] != nil || got["ok5"] != nil {
			t.Fatalf("the good fns failed: %v, %v", got["ok1"], got["ok5"])
		}
		if !errors.Is(got["own error"], errBoom) {
			t.Fatalf("own error: %v", got["own error"])
		}
		if err := got["constraint"]; err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") {
			t.Fatalf("constraint: %v", err)
		}
		if err := got["panic"]; err == nil || !strings.Contains(err.Error(), "panic in fn: bad fn") {
			t.Fatalf("panic: %v", err)
		}
		if r := ids(t, db); !slices.Equal(r, []int{0, 1, 5}) {
			t.Fatalf("rows %v, want [0 1 5]", r)
		}
		if s := sizes(); !slices.Equal(s, []int{1, len(fns)}) {
			t.Fatalf("batch sizes %v, want [1 %d]", s, len(fns))
		}
		if err := db.Batch(ctx, insert(6)); err != nil {
			t.Fatalf("after a panic: %v", err)
		}
	})
}

// TestBatchCommitErrorForAll: when the COMMIT fails (here a deferred
// foreign key), every caller of the batch gets the commit error, also one
// whose fn failed on its own, and nothing of the batch is kept.
func TestBatchCommitErrorForAll(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, _ := batchDB(t, e)
		ctx := context.Background()
		if _, err := db.Exec(`CREATE TABLE p(id INTEGER PRIMARY KEY);
			CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
			t.Fatal(err)
		}
		errBoom := errors.New("boom")
		fns := []func(context.Context, *sql.Tx) error{
			func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO c(id, p) VALUES (1, 42)`) // no p 42: fails at COMMIT
				return err
			},
			insert(7),
			func(context.Context, *sql.Tx) error { return errBoom },
		}
		release, held := hold(t, db)
		errs := make(chan error, len(fns))
		for _, fn := range fns {
			go func() { errs <- db.Batch(ctx, fn) }()
		}
		waitQueued(t, db, len(fns))
		release()
		<-held
		for range fns {
			if err := <-errs; err == nil || errors.Is(err, errBoom) || !strings.Contains(err.Error(), "commit") {
				t.Fatalf("got %v, want the commit error", err)
			}
		}
		if r := ids(t, db); !slices.Equal(r, []int{0}) {
			t.Fatalf("rows %v, want [0]", r)
		}
		if err := db.Batch(ctx, insert(8)); err != nil {
			t.Fatalf("after a failed commit: %v", err)
		}
	})
}

// TestBatchCancel: a caller whose ctx ends before its fn starts gets
// ctx.Err() at once and its fn never runs; one whose fn has started gets
// the commit's outcome, and fn's own ctx is not cancelled.
func TestBatchCancel(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		done, cancelNow := context.WithCancel(context.Background())
		cancelNow()
		var ran atomic.Bool
		mark := func(context.Context, *sql.Tx) error { ran.Store(true); return nil }
		if err := db.Batch(done, mark); !errors.Is(err, context.Canceled) {
			t.Fatalf("a done ctx: %v", err)
		}

		release, held := hold(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- db.Batch(ctx, mark) }()
		waitQueued(t, db, 1)
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled while queued: %v", err)
		}
		release()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		// The withdrawn request is skipped: no empty commit.
		if err := db.Batch(context.Background(), insert(1)); err != nil {
			t.Fatal(err)
		}
		if ran.Load() {
			t.Fatal("the fn of a cancelled caller ran")
		}
		if s := sizes(); !slices.Equal(s, []int{1, 1}) {
			t.Fatalf("batch sizes %v, want [1 1]", s)
		}

		ctx, cancel = context.WithCancel(context.Background())
		err := db.Batch(ctx, func(fctx context.Context, tx *sql.Tx) error {
			cancel()
			return insert(2)(fctx, tx)
		})
		if err != nil {
			t.Fatalf("cancelled after its fn started: %v", err)
		}
		if r := ids(t, db); !slices.Equal(r, []int{0, 1, 2}) {
			t.Fatalf("rows %v, want [0 1 2]", r)
		}
	})
}

// TestBatchClose: Close lets the batch in progress commit, fails the
// callers still queued with ErrClosed, stops the committer and refuses
// new callers.
func TestBatchClose(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, _ := batchDB(t, e)
		ctx := context.Background()
		release, held := hold(t, db)
		const n = 3
		errs := make(chan error, n)
		for i := 1; i <= n; i++ {
			go func() { errs <- db.Batch(ctx, insert(i)) }()
		}
		waitQueued(t, db, n)
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		for {
			db.batch.mu.Lock()
			c := db.batch.closed
			db.batch.mu.Unlock()
			if c {
				break
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) during a commit", err)
		case <-time.After(20 * time.Millisecond):
		}
		release()
		if err := <-held; err != nil {
			t.Fatalf("the batch under way at Close: %v", err)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("queued at Close: %v", err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		select {
		case <-db.batch.stopped:
		default:
			t.Fatal("the committer is still running")
		}
		if err := db.Batch(ctx, insert(9)); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// TestBatchOutcomesMatchCommits: under concurrency with contexts ending at
// random moments, a caller got nil exactly when its row was committed.
func TestBatchOutcomesMatchCommits(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		const workers, each = 8, 100
		var mu sync.Mutex
		var okIDs []int
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Go(func() {
				for j := 0; j < each; j++ {
					id := 1 + w*each + j
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(2000))*time.Microsecond)
					err := db.Batch(ctx, insert(id))
					cancel()
					switch {
					case err == nil:
						mu.Lock()
						okIDs = append(okIDs, id)
						mu.Unlock()
					case !errors.Is(err, context.DeadlineExceeded):
						t.Errorf("id %d: %v", id, err)
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(okIDs)
		if got := ids(t, db); !slices.Equal(got, okIDs) {
			t.Fatalf("committed %d rows, %d callers got nil", len(got), len(okIDs))
		}
		total := 0
		for _, n := range sizes() {
			total += n
		}
		t.Logf("%d of %d calls committed in %d transactions", len(okIDs), workers*each, len(sizes()))
		if total < len(okIDs) {
			t.Fatalf("%d fns ran in commits, %d succeeded", total, len(okIDs))
		}
	})
}

// goid is the id of the calling goroutine, from the first line of its
// stack trace ("goroutine 17 [running]:").
func goid(t *testing.T) int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(string(buf))
	if len(f) < 2 || f[0] != "goroutine" {
		t.Errorf("stack trace %q", buf)
		return -1
	}
	id, err := strconv.Atoi(f[1])
	if err != nil {
		t.Error(err)
	}
	return id
}

// holdLead is hold, checking that the held fn runs in the goroutine of its
// Batch caller: on an idle DB that caller commits itself.
func holdLead(t *testing.T, db *DB) (release func(), done <-chan error) {
	t.Helper()
	started, rel, res := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var caller, ran int
	go func() {
		caller = goid(t)
		res <- db.Batch(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			ran = goid(t)
			close(started)
			<-rel
			return insert(0)(ctx, tx)
		})
	}()
	<-started
	if caller != ran {
		close(rel) // let the committer go, so that Close can return
		<-res
		t.Fatalf("a lone caller's fn ran in goroutine %d, the caller is %d", ran, caller)
	}
	return func() { close(rel) }, res
}

// TestBatchLoneCallerCommitsItself: a lone Batch on an idle DB runs its fn
// in the caller's goroutine (no hand-off to the committer and back); the
// callers that arrive while that commit runs queue and are committed
// together afterwards by the committer goroutine, at most maxBatch to a
// transaction.
func TestBatchLoneCallerCommitsItself(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		ctx := context.Background()
		me, ran := goid(t), 0
		err := db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
			ran = goid(t)
			return insert(1000)(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		if ran != me {
			t.Fatalf("a lone caller's fn ran in goroutine %d, the caller is %d", ran, me)
		}

		release, held := holdLead(t, db)
		const n = 100
		var mu sync.Mutex
		where := map[int]int{} // goroutine a queued fn ran in → fns
		errs := make(chan error, n)
		for i := 1; i <= n; i++ {
			go func() {
				caller := goid(t)
				errs <- db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
					g := goid(t)
					if g == caller {
						t.Errorf("a queued caller (%d) ran its fn itself", i)
					}
					mu.Lock()
					where[g]++
					mu.Unlock()
					return insert(i)(ctx, tx)
				})
			}()
		}
		waitQueued(t, db, n)
		release()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if got := sizes(); !slices.Equal(got, []int{1, 1, maxBatch, n - maxBatch}) {
			t.Fatalf("batch sizes %v, want [1 1 %d %d]", got, maxBatch, n-maxBatch)
		}
		if len(where) != 1 {
			t.Fatalf("the queued fns ran in goroutines %v, want the committer's alone", where)
		}
		if got := ids(t, db); len(got) != n+2 {
			t.Fatalf("%d rows committed, want %d", len(got), n+2)
		}
	})
}

// TestBatchLoneFnFails: a fn alone in its transaction that returns an
// error (its own or a failed statement's, which on PostgreSQL aborts the
// transaction) or panics leaves none of its writes and gets its own error;
// nothing is committed, and the next Batch works.
func TestBatchLoneFnFails(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		ctx := context.Background()
		if err := db.Batch(ctx, insert(1)); err != nil {
			t.Fatal(err)
		}
		errBoom := errors.New("boom")
		cases := []struct {
			name string
			fn   func(context.Context, *sql.Tx) error
			ok   func(error) bool
		}{
			{"own error", func(ctx context.Context, tx *sql.Tx) error {
				if err := insert(2)(ctx, tx); err != nil {
					return err
				}
				return errBoom
			}, func(err error) bool { return errors.Is(err, errBoom) }},
			{"constraint", func(ctx context.Context, tx *sql.Tx) error {
				if err := insert(3)(ctx, tx); err != nil {
					return err
				}
				return insert(1)(ctx, tx)
			}, func(err error) bool { return err != nil && strings.Contains(strings.ToLower(err.Error()), "unique") }},
			{"panic", func(ctx context.Context, tx *sql.Tx) error {
				insert(4)(ctx, tx)
				panic("bad fn")
			}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "panic in fn: bad fn") }},
		}
		next := 10
		for _, c := range cases {
			if err := db.Batch(ctx, c.fn); !c.ok(err) {
				t.Fatalf("%s: got %v", c.name, err)
			}
			if r := ids(t, db); !slices.Equal(r, []int{1}) {
				t.Fatalf("%s: rows %v, want [1]", c.name, r)
			}
			if err := db.Batch(ctx, insert(next)); err != nil {
				t.Fatalf("after %s: %v", c.name, err)
			}
			if _, err := db.Exec(`DELETE FROM t WHERE id = $1`, next); err != nil {
				t.Fatal(err)
			}
			next++
		}
		if s := sizes(); !slices.Equal(s, []int{1, 1, 1, 1}) {
			t.Fatalf("batch sizes %v, want [1 1 1 1]: a failed lone fn commits nothing", s)
		}
	})
}

// TestBatchCloseWaitsForLeader: Close while a caller commits in its own
// goroutine waits for that commit, fails the callers queued behind it with
// ErrClosed, and then refuses new callers.
func TestBatchCloseWaitsForLeader(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		ctx := context.Background()
		release, held := holdLead(t, db)
		const n = 2
		errs := make(chan error, n)
		for i := 1; i <= n; i++ {
			go func() { errs <- db.Batch(ctx, insert(i)) }()
		}
		waitQueued(t, db, n)
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		// The committer goroutine has returned: Close waits for the
		// leader alone now.
		<-db.batch.stopped
		select {
		case err := <-closed:
			release()
			t.Fatalf("Close returned (%v) during a caller's commit", err)
		case <-time.After(20 * time.Millisecond):
		}
		release()
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if s := sizes(); !slices.Equal(s, []int{1}) {
			t.Fatalf("when Close returned, batch sizes %v, want [1]", s)
		}
		if err := <-held; err != nil {
			t.Fatalf("the commit under way at Close: %v", err)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("queued at Close: %v", err)
			}
		}
		if err := db.Batch(ctx, insert(9)); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// TestBatchLeaderCancelledAwaitingLock: a leading caller whose ctx ends
// while its commit waits for the write lock (held here by a WriteTx) gets
// ctx.Err() at once, as a queued caller does, and its fn never runs; the
// request it had taken with it and a caller queued behind it are committed
// together by the committer once the lock is free.
func TestBatchLeaderCancelledAwaitingLock(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, sizes := batchDB(t, e)
		ctx := context.Background()
		if err := db.Batch(ctx, insert(1)); err != nil { // starts the committer
			t.Fatal(err)
		}
		started, rel, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			held <- db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				close(started)
				<-rel
				return insert(0)(ctx, tx)
			})
		}()
		<-started
		// A request queued without a wake-up, as in the moment between a
		// commit's end and the committer's waking: the leader takes it.
		taken := &batchReq{ctx: ctx, fn: insert(7), done: make(chan error, 1)}
		db.batch.mu.Lock()
		db.batch.queue = append(db.batch.queue, taken)
		db.batch.mu.Unlock()
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var ran atomic.Bool
		res := make(chan error, 1)
		go func() {
			res <- db.Batch(lctx, func(context.Context, *sql.Tx) error { ran.Store(true); return nil })
		}()
		for { // the lone caller leads its commit, waiting for the lock
			db.batch.mu.Lock()
			c := db.batch.committing
			db.batch.mu.Unlock()
			if c {
				break
			}
			time.Sleep(time.Millisecond)
		}
		queued := make(chan error, 1)
		go func() { queued <- db.Batch(ctx, insert(5)) }()
		waitQueued(t, db, 1)
		cancel()
		select {
		case err := <-res:
			if !errors.Is(err, context.Canceled) {
				close(rel)
				t.Fatalf("cancelled awaiting the lock: %v", err)
			}
		case <-time.After(10 * time.Second):
			close(rel)
			t.Fatal("a leader cancelled awaiting the lock waited for it")
		}
		close(rel)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		if err := <-queued; err != nil {
			t.Fatalf("queued behind the cancelled leader: %v", err)
		}
		select {
		case err := <-taken.done:
			if err != nil {
				t.Fatalf("taken by the cancelled leader: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the request the cancelled leader had taken was dropped")
		}
		if ran.Load() {
			t.Fatal("the fn of the cancelled leader ran")
		}
		if r := ids(t, db); !slices.Equal(r, []int{0, 1, 5, 7}) {
			t.Fatalf("rows %v, want [0 1 5 7]", r)
		}
		if s := sizes(); !slices.Equal(s, []int{1, 2}) {
			t.Fatalf("batch sizes %v, want [1 2]", s)
		}
	})
}
