package store

import (
	"context"
	"database/sql"
	"sync"
)

// A FirstWrite is a write that must commit together with the first write
// of a caller's and never without it. It exists for the audit row of a
// request whose one effect is a write (a send's outbox row): committed in
// that very transaction instead of in a commit of its own before it, the
// row and the effect are both durable or neither is, and the request
// waits for one commit instead of two.
//
// WithFirstWrite puts it in a context. The first Batch or WriteTx run on
// that context (or on one derived from it) runs fn in its transaction
// before its own fn (in Batch, inside that caller's savepoint). Once that
// transaction has committed the FirstWrite is Done, and later
// transactions on the context leave it out; when it rolls back, the next
// one runs fn again. The writes of one context are expected one after
// another (a request's): a transaction that starts while another on the
// same context is running fn goes without it.
type FirstWrite struct {
	fn    func(ctx context.Context, tx *sql.Tx) error
	mu    sync.Mutex
	state int // firstPending, firstRunning, firstDone
}

const (
	firstPending = iota
	firstRunning
	firstDone
)

type firstWriteKey struct{}

// WithFirstWrite returns ctx carrying fn as a FirstWrite, and the
// FirstWrite, to ask afterwards whether it committed.
func WithFirstWrite(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) (context.Context, *FirstWrite) {
	f := &FirstWrite{fn: fn}
	return context.WithValue(ctx, firstWriteKey{}, f), f
}

// Done reports whether fn has committed.
func (f *FirstWrite) Done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state == firstDone
}

// claimFirstWrite returns the pending FirstWrite of ctx, now running, or
// nil when there is none to run.
func claimFirstWrite(ctx context.Context) *FirstWrite {
	f, _ := ctx.Value(firstWriteKey{}).(*FirstWrite)
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != firstPending {
		return nil
	}
	f.state = firstRunning
	return f
}

// around returns fn preceded by f's own write (fn itself when f is nil).
func (f *FirstWrite) around(fn func(context.Context, *sql.Tx) error) func(context.Context, *sql.Tx) error {
	if f == nil {
		return fn
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		if err := f.fn(ctx, tx); err != nil {
			return err
		}
		return fn(ctx, tx)
	}
}

// settle records the outcome of the transaction f ran in: Done when it
// committed, pending again when it did not. f may be nil.
func (f *FirstWrite) settle(committed bool) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if committed {
		f.state = firstDone
	} else {
		f.state = firstPending
	}
}
