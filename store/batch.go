package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Batch once Close has begun, to new callers and
// to callers still queued then.
var ErrClosed = errors.New("store: database is closed")

// maxBatch bounds how many fns share one transaction, so one commit's
// latency stays bounded under load.
const maxBatch = 64

// Batch runs fn in a write transaction shared with other concurrent Batch
// callers (group commit: one COMMIT, hence one fsync, for all of them) and
// returns once that transaction has committed, so what fn wrote is durable
// when Batch returns nil.
//
// fn runs inside its own SAVEPOINT (alone in its transaction, in the
// transaction itself): when it returns an error (or panics), only its own
// writes are rolled back and Batch returns that error (a panic as an
// error). When the COMMIT fails, every caller of the batch
// gets the commit error, even one whose fn failed: what a fn read may have
// been a sibling's uncommitted write (a duplicate key, an idempotency
// replay), so no outcome of the batch stands.
//
// A caller whose ctx ends before its fn has started gets ctx.Err() and fn
// never runs. Once fn has started, Batch waits for the commit whatever ctx
// does. fn is given ctx without its cancellation and must use that ctx and
// tx only: interrupting a statement may roll back the whole shared
// transaction, and calling another method of db (Batch, Tx, an Exec
// outside tx) from fn deadlocks or waits for the write lock that this very
// transaction holds. fn must not call tx.Commit or tx.Rollback, and should
// be short: the other callers of the batch wait for it.
//
// A FirstWrite in ctx (WithFirstWrite) runs in fn's savepoint, before fn.
//
// A lone caller does not wait for company: when no commit is under way it
// commits at once, in its own goroutine, taking whatever is queued with it
// (up to 64 fns). Callers that arrive while a commit is under way (a
// caller's or the committer goroutine's) queue, and the committer
// goroutine commits them together once it has ended, up to 64 fns at a
// time. A fn alone in its transaction runs without a savepoint: when it
// fails, the transaction is rolled back (the same outcome).
//
// The transaction holds the write lock of WriteTx, on both engines, so a
// fn may read-modify-write as in WriteTx. PostgreSQL keeps the group
// commit too (one WAL flush for the batch, one lock hand-over). There a
// failed statement aborts the transaction until its savepoint is rolled
// back, so a fn must return the errors of its statements: one that
// swallows an error and returns nil fails the whole batch.
func (db *DB) Batch(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	first := claimFirstWrite(ctx)
	defer func() { first.settle(err == nil) }()
	r := &batchReq{ctx: ctx, fn: first.around(fn), done: make(chan error, 1)}
	lead, err := db.batch.enqueue(db, r)
	if err != nil {
		return err
	}
	if lead != nil {
		db.batch.lead(db, lead, r)
		return <-r.done // lead holds r: commit has answered it
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return ctx.Err()
		}
		return <-r.done // fn has started: its outcome is the commit's
	}
}

// States of a batchReq: the committer claims a queued request just before
// running its fn; a caller whose ctx ends claims it first to withdraw it.
const (
	reqQueued int32 = iota
	reqStarted
	reqCancelled
)

type batchReq struct {
	ctx   context.Context
	fn    func(context.Context, *sql.Tx) error
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on it
}

// batcher is the group-commit queue of a DB and its one committer
// goroutine, started by the first Batch and stopped by Close.
//
// At most one commit is in progress at a time (committing): either a
// leader's, a Batch caller that found none running and commits in its own
// goroutine what is queued, its own request among it, or the committer
// goroutine's. Whoever ends a commit signals the committer when the queue
// is not empty, so what queued meanwhile forms the next batch; a leader
// does not go on committing others' work itself (its caller wants to
// return).
type batcher struct {
	mu         sync.Mutex
	queue      []*batchReq
	started    bool
	closed     bool
	committing bool          // a commit is in progress (a leader's or the committer's)
	idle       sync.Cond     // on mu: broadcast when committing clears
	wake       chan struct{} // capacity 1: the queue may be non-empty
	quit       chan struct{} // closed by stop
	stopped    chan struct{} // closed when the committer has returned

	// onCommit, when set (tests, before the first Batch), is called after
	// each successful commit with the number of fns that ran in it.
	onCommit func(n int)
}

// enqueue queues r. When no commit is in progress and r fits in one batch
// with what is queued before it, it marks one in progress and returns the
// batch (r among it) for the caller to commit with lead; otherwise it
// wakes the committer and returns nil.
func (b *batcher) enqueue(db *DB, r *batchReq) ([]*batchReq, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("store.Batch: %w", ErrClosed)
	}
	if !b.started {
		b.started = true
		b.idle.L = &b.mu
		b.wake = make(chan struct{}, 1)
		b.quit = make(chan struct{})
		b.stopped = make(chan struct{})
		go b.run(db)
	}
	b.queue = append(b.queue, r)
	if !b.committing && len(b.queue) <= maxBatch {
		b.committing = true
		reqs := b.take()
		b.mu.Unlock()
		return reqs, nil
	}
	b.mu.Unlock()
	b.signal()
	return nil, nil
}

// take removes up to maxBatch requests from the head of the queue and
// returns them. b.mu is held.
func (b *batcher) take() []*batchReq {
	n := min(len(b.queue), maxBatch)
	reqs := make([]*batchReq, n)
	copy(reqs, b.queue)
	clear(b.queue[:n])
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return reqs
}

// lead commits reqs, taken by enqueue for own, in the caller's
// goroutine, then ends the commit in progress (also when commit panics).
func (b *batcher) lead(db *DB, reqs []*batchReq, own *batchReq) {
	defer b.release()
	b.commit(db, reqs, own)
}

// requeue puts reqs back at the head of the queue, for the committer, but
// own, whose caller's ctx has ended: it is answered with ctx.Err(). Once
// Close has begun they are answered with ErrClosed instead (the committer
// may have failed the queue already).
func (b *batcher) requeue(reqs []*batchReq, own *batchReq) {
	if own.state.CompareAndSwap(reqQueued, reqCancelled) {
		own.done <- own.ctx.Err()
	}
	rest := slices.DeleteFunc(reqs, func(r *batchReq) bool { return r == own })
	if len(rest) == 0 {
		return
	}
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.queue = append(rest, b.queue...)
	}
	b.mu.Unlock()
	if closed {
		for _, r := range rest {
			if r.state.CompareAndSwap(reqQueued, reqStarted) {
				r.done <- fmt.Errorf("store.Batch: %w", ErrClosed)
			}
		}
	}
}

// release ends the commit in progress and hands what queued meanwhile to
// the committer.
func (b *batcher) release() {
	b.mu.Lock()
	b.committing = false
	more := b.queue != nil
	b.idle.Broadcast()
	b.mu.Unlock()
	if more {
		b.signal()
	}
}

func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// stop makes Batch refuse new callers, lets a commit in progress (the
// committer's or a leader's) finish, fails the callers still queued with
// ErrClosed and waits for the committer to return. Safe to call more than
// once.
func (b *batcher) stop() {
	b.mu.Lock()
	first := !b.closed
	b.closed = true
	started := b.started
	b.mu.Unlock()
	if !started {
		return
	}
	if first {
		close(b.quit)
	}
	<-b.stopped
	b.mu.Lock()
	for b.committing {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

// run is the committer: it takes what is queued (at most maxBatch) and
// commits it as one transaction, until stop. It waits while a leader's
// commit is in progress: the leader signals when it ends.
func (b *batcher) run(db *DB) {
	defer close(b.stopped)
	for {
		select {
		case <-b.quit:
			b.mu.Lock()
			rest := b.queue
			b.queue = nil
			b.mu.Unlock()
			for _, r := range rest {
				if r.state.CompareAndSwap(reqQueued, reqStarted) {
					r.done <- fmt.Errorf("store.Batch: %w", ErrClosed)
				}
			}
			return
		case <-b.wake:
		}
		select {
		case <-b.quit:
			continue // Close wins over queued work
		default:
		}
		b.mu.Lock()
		if b.committing || b.queue == nil {
			b.mu.Unlock()
			continue
		}
		b.committing = true
		reqs := b.take()
		b.mu.Unlock()
		b.commit(db, reqs, nil)
		b.release()
	}
}

// commit runs reqs in one transaction, each fn in a savepoint (a fn alone
// without one), commits, and only then answers each caller. own is the
// leader's request (nil for the committer goroutine): when its ctx ends
// while the write lock is awaited, the leader withdraws it and leaves the
// others to the committer, as a queued caller would have returned at once.
func (b *batcher) commit(db *DB, reqs []*batchReq, own *batchReq) {
	ctx := context.Background()
	errs := make([]error, len(reqs))
	ran := make([]bool, len(reqs))
	n := 0
	// fail answers every caller that has not withdrawn (ran or not) with
	// err: nothing of this batch is committed.
	fail := func(err error) {
		for i, r := range reqs {
			if ran[i] || r.state.CompareAndSwap(reqQueued, reqStarted) {
				r.done <- err
			}
		}
	}
	tx, done, err := begin(db, own)
	if errors.Is(err, errLeaderGone) {
		b.requeue(reqs, own)
		return
	}
	if err != nil {
		fail(fmt.Errorf("store.Batch: %w", err))
		return
	}
	defer done()
	answered := false
	defer func() {
		// A panic out of the commit itself (the driver's: a fn's own is
		// its error already) must neither hold the write lock nor leave
		// callers waiting, now that it may unwind a caller's goroutine,
		// which net/http recovers: roll back, fail them, then go on
		// panicking.
		if v := recover(); v != nil {
			tx.Rollback()
			if !answered {
				fail(fmt.Errorf("store.Batch: panic in commit: %v", v))
			}
			panic(v)
		}
	}()
	sp := savepoints{db: db, tx: tx}
	for i, r := range reqs {
		if !claim(r) {
			continue // its caller's ctx ended before its turn
		}
		ran[i] = true
		n++
		if len(reqs) == 1 {
			// Alone: no savepoint to set and release (a round trip each
			// on PostgreSQL); a failure rolls back the transaction, which
			// holds nothing else, and PostgreSQL needs that rollback after
			// a failed statement anyway.
			if errs[i] = callFn(tx, r); errs[i] != nil {
				tx.Rollback()
				answered = true
				r.done <- errs[i]
				return
			}
			continue
		}
		var txErr error
		if errs[i], txErr = sp.run(ctx, r); txErr != nil {
			tx.Rollback()
			fail(fmt.Errorf("store.Batch: transaction aborted: %w", txErr))
			return
		}
	}
	if n == 0 {
		tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("store.Batch: commit: %w", err))
		return
	}
	answered = true
	if b.onCommit != nil {
		b.onCommit(n)
	}
	for i, r := range reqs {
		if ran[i] {
			r.done <- errs[i]
		}
	}
}

// errLeaderGone: begin's wait ended with the leader's ctx.
var errLeaderGone = errors.New("store.Batch: the leading caller's ctx ended")

// begin takes the write lock, as WriteTx does. For a leader (own not nil)
// the wait ends when own's ctx does (errLeaderGone, nothing begun); the
// transaction itself is never tied to that ctx, which may end at any time
// after its fn has started.
func begin(db *DB, own *batchReq) (*sql.Tx, func(), error) {
	if own == nil {
		return db.beginWrite(context.Background())
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(own.ctx, cancel)
	tx, done, err := db.beginWrite(ctx)
	if !stop() { // own's ctx has ended: ctx is cancelled or about to be
		if err == nil {
			tx.Rollback()
			done()
		}
		cancel()
		return nil, nil, errLeaderGone
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return tx, func() { done(); cancel() }, nil
}

// claim marks r started, just before its fn runs, and reports whether it
// may run: not when its caller has withdrawn it, nor when its ctx has
// ended meanwhile (then it withdraws r itself and answers ctx.Err(), as
// the caller would: a leader's own request waits in the leader's
// goroutine, where no one else watches its ctx).
func claim(r *batchReq) bool {
	if err := r.ctx.Err(); err != nil {
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			r.done <- err
		}
		return false
	}
	return r.state.CompareAndSwap(reqQueued, reqStarted)
}

// savepoints runs each fn of a batch in the savepoint batch_fn. Between
// two fns the savepoint of the first is released and the next one's set in
// one step, on PostgreSQL in one round trip ("RELEASE …; SAVEPOINT …", which
// pgx sends as one simple query when there are no arguments): the committer
// runs one statement at a time, and the two round trips a fn cost there were
// most of a send's. The last fn's savepoint is left to COMMIT, which ends it
// on both engines, and a failed fn's rollback to it leaves it set for the
// next fn (the state it holds is the same).
type savepoints struct {
	db *DB
	tx *sql.Tx
	// set: batch_fn holds the state after the last successful fn;
	// release: the last fn succeeded inside it (release before reuse).
	set, release bool
}

// run runs r.fn in the savepoint. fnErr is fn's own outcome; txErr means
// the savepoint could not be set or rolled back, so the transaction can no
// longer be trusted.
func (sp *savepoints) run(ctx context.Context, r *batchReq) (fnErr, txErr error) {
	switch {
	case sp.release:
		txErr = sp.exec(ctx, `RELEASE batch_fn`, `SAVEPOINT batch_fn`)
	case !sp.set:
		txErr = sp.exec(ctx, `SAVEPOINT batch_fn`)
	}
	if txErr != nil {
		return nil, txErr
	}
	sp.set, sp.release = true, false
	if fnErr = callFn(sp.tx, r); fnErr != nil {
		return fnErr, sp.exec(ctx, `ROLLBACK TO batch_fn`)
	}
	sp.release = true
	return nil, nil
}

// exec runs stmts in order: on PostgreSQL as one query (one round trip),
// on SQLite one by one (each a kept prepared statement; see stmtcache.go).
func (sp *savepoints) exec(ctx context.Context, stmts ...string) error {
	if sp.db.Dialect == Postgres {
		_, err := sp.tx.ExecContext(ctx, strings.Join(stmts, "; "))
		return err
	}
	for _, q := range stmts {
		if _, err := sp.tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// callFn runs r.fn, turning a panic into its caller's error so that the
// committer carries on.
func callFn(tx *sql.Tx, r *batchReq) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("store.Batch: panic in fn: %v", v)
		}
	}()
	return r.fn(context.WithoutCancel(r.ctx), tx)
}
