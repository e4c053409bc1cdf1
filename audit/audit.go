// Package audit records the mutating API requests durably: when, which
// peer, what route and target, and the resulting status.
//
// What a request did is never left unrecorded: a request that reaches its
// handler has a row committed first (Begin, status 0 while it runs); when
// that commit fails, the request is refused and nothing is done. A request
// whose one effect is a write (a send's outbox row) has its row committed
// in that write's own transaction instead (BeginInWrite): both or neither. Its final
// status (Finish) is written after the response, a few milliseconds later
// in one commit with the other finishes of the moment, so that it neither
// delays the answer nor competes with the write the request started (a
// send's first commits); a crash in between leaves the row at status 0,
// "no outcome recorded", which is what the audit list then shows.
// Refusals (nothing was done) are not one row each: they are counted in
// memory per peer, method, route and status and written as one row with a
// count per interval (Refused, Flush), so a flood of refused requests costs
// a row a minute instead of a row a request.
package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"waappliance/store"
)

// Entry is one recorded request, or, with Count > 1, the refusals of one
// peer, method, route and status in one interval, from At to LastAt.
type Entry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Peer   string    `json:"peer"`
	Method string    `json:"method"`
	Route  string    `json:"route"`
	// Target is what the request acted on; "*" on an aggregated row whose
	// requests named different targets.
	Target string `json:"target"`
	// Status is the answer's HTTP status; 0 when no outcome is recorded:
	// the request is running or just answered, or the appliance stopped
	// before it recorded the outcome (the client may have had its answer).
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
	// Count is how many requests the row stands for: 1 for a single row.
	Count int `json:"count"`
	// LastAt is the time of the last request of an aggregated row; nil on
	// a single row.
	LastAt *time.Time `json:"last_at,omitempty"`
}

// ErrNotRecorded is the error of a write whose audit row (BeginInWrite)
// could not be inserted: the write did not happen either.
var ErrNotRecorded = errors.New("audit: the request's row could not be written")

// Defaults of Options.
const (
	DefaultInterval  = time.Minute
	DefaultMaxKeys   = 1024
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultFinishDelay is past a lone send's own commits (its outbox
	// row, whatsmeow's session write and the ack, about 2 ms) and short
	// enough that a crash leaves few answered rows without their outcome.
	DefaultFinishDelay = 10 * time.Millisecond
)

// maxFinishes bounds the finishes kept in memory: past it Finish writes
// them itself (back-pressure), and after a failed write the excess is
// dropped (those rows stay at status 0, no outcome recorded).
const maxFinishes = 1024

// Options configure a Log. Zero values: Interval DefaultInterval, MaxKeys
// DefaultMaxKeys, Retention DefaultRetention, FinishDelay
// DefaultFinishDelay, Now time.Now.
type Options struct {
	// FinishDelay is how long after the first pending Finish RunFlusher
	// writes the finishes pending then, in one commit.
	FinishDelay time.Duration
	// Interval is how long refusals are counted before their rows are
	// written.
	Interval time.Duration
	// MaxKeys bounds the distinct (peer, method, route, status) counted in
	// one interval; past it, a peer's further refusals are folded into its
	// catch-all key (method and route "*", per status).
	MaxKeys int
	// Retention is how long rows are kept (Prune).
	Retention time.Duration
	Now       func() time.Time
}

// Log is the audit log in the appliance database.
type Log struct {
	db        *store.DB
	interval  time.Duration
	maxKeys   int
	retention time.Duration
	delay     time.Duration
	now       func() time.Time

	mu       sync.Mutex
	pending  map[refusalKey]*refusal
	finishes []finish
	wake     chan struct{} // capacity 1: finishes may be pending
}

// finish is a final status waiting to be written: the row's status, or
// the row taken out (a refusal, counted in pending instead).
type finish struct {
	id     int64
	status int
	del    bool
}

type refusalKey struct {
	peer, method, route string
	status              int
}

type refusal struct {
	first, last time.Time
	target      string
	requestID   string
	count       int
}

// New returns the audit log stored in db.
func New(db *store.DB, o Options) *Log {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.FinishDelay <= 0 {
		o.FinishDelay = DefaultFinishDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Log{db: db, interval: o.Interval, maxKeys: o.MaxKeys, retention: o.Retention, delay: o.FinishDelay, now: o.Now,
		pending: map[refusalKey]*refusal{}, wake: make(chan struct{}, 1)}
}

// Record appends e as a single row (its ID is assigned) and returns once it
// is committed. Concurrent records share a commit with each other and with
// the other durable writes of the moment (store.DB.Batch).
func (l *Log) Record(ctx context.Context, e Entry) error {
	if _, err := l.insert(ctx, e); err != nil {
		return fmt.Errorf("audit.Record: %w", err)
	}
	return nil
}

// Begin commits e's row with status 0 before its request is served and
// returns the row's id for Finish. An error means no row: the caller must
// refuse the request without doing anything.
func (l *Log) Begin(ctx context.Context, e Entry) (int64, error) {
	e.Status = 0
	id, err := l.insert(ctx, e)
	if err != nil {
		return 0, fmt.Errorf("audit.Begin: %w", err)
	}
	return id, nil
}

// BeginInWrite is Begin for a request whose one effect is a write: it
// returns ctx carrying e's row as that write's companion
// (store.WithFirstWrite), so that the first Batch or WriteTx run on ctx
// commits the row in its own transaction, with what the request did, or
// not at all; the request waits for one commit instead of two. committed
// gives the row's id once that transaction has committed (ok false
// before, and for good when the request wrote nothing: then nothing was
// done and the caller counts a refusal or Begins the row itself).
func (l *Log) BeginInWrite(ctx context.Context, e Entry) (_ context.Context, committed func() (id int64, ok bool)) {
	e.Status = 0
	var id int64
	ctx, fw := store.WithFirstWrite(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		if id, err = l.insertTx(ctx, tx, e); err != nil {
			return fmt.Errorf("%w: %w", ErrNotRecorded, err)
		}
		return nil
	})
	return ctx, func() (int64, bool) {
		if !fw.Done() {
			return 0, false
		}
		return id, true
	}
}

func (l *Log) insert(ctx context.Context, e Entry) (id int64, err error) {
	err = l.db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, err = l.insertTx(ctx, tx, e)
		return err
	})
	return id, err
}

func (l *Log) insertTx(ctx context.Context, tx *sql.Tx, e Entry) (int64, error) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO audit(at, peer, method, route, target, status, request_id, count)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 1) RETURNING id`,
		e.At.UnixNano(), e.Peer, e.Method, e.Route, e.Target, e.Status, e.RequestID).Scan(&id)
	return id, err
}

// Finish records the final status of the row Begin committed as id. It
// does not wait for the database: the status is written by RunFlusher
// FinishDelay later, in one commit with the other finishes pending then,
// or by Flush; until then (and for good after a crash) the row shows
// status 0. A client error (4xx: nothing was done) takes the row back out
// and counts the request with the other refusals instead (Refused). Only
// when maxFinishes are pending does Finish write them itself, and then an
// error is that write's.
func (l *Log) Finish(ctx context.Context, id int64, e Entry) error {
	f := finish{id: id, status: e.Status, del: isRefusal(e.Status)}
	if f.del {
		l.Refused(e) // counted even if the row could not be taken out
	}
	l.mu.Lock()
	l.finishes = append(l.finishes, f)
	n := len(l.finishes)
	l.mu.Unlock()
	if n == 1 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	if n >= maxFinishes {
		return l.flushFinishes(ctx)
	}
	return nil
}

// flushFinishes writes the pending finishes in one Batch. When that fails
// they are kept for the next flush, within maxFinishes.
func (l *Log) flushFinishes(ctx context.Context) error {
	l.mu.Lock()
	batch := l.finishes
	l.finishes = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := l.db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, f := range batch {
			var err error
			if f.del {
				_, err = tx.ExecContext(ctx, `DELETE FROM audit WHERE id = $1`, f.id)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE audit SET status = $1 WHERE id = $2`, f.status, f.id)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		l.mu.Lock()
		keep := max(0, min(len(batch), maxFinishes-len(l.finishes)))
		l.finishes = append(l.finishes, batch[:keep]...)
		l.mu.Unlock()
		return fmt.Errorf("audit.Finish: %d statuses not written: %w", len(batch), err)
	}
	return nil
}

// PendingFinishes is the number of finishes not yet written.
func (l *Log) PendingFinishes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.finishes)
}

// isRefusal reports whether a handler's status says nothing was done: the
// 4xx answers. A 5xx after the handler ran keeps its own row: the action may
// have been partly done (a WhatsApp call that timed out may have gone
// through).
func isRefusal(status int) bool { return status >= 400 && status < 500 }

// Refused counts a request that was refused before anything was done (by
// the rate limit, the router, a scope or a failed Begin) in the current
// interval's row of its peer, method, route and status. It never blocks on
// the database.
func (l *Log) Refused(e Entry) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	k := refusalKey{e.Peer, e.Method, e.Route, e.Status}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.countLocked(k, &refusal{first: e.At, last: e.At, target: e.Target, requestID: e.RequestID, count: 1})
}

// countLocked adds r to key k, or to k's catch-all key when k is new and
// the map is full. Catch-all keys are not capped: there is at most one per
// peer and status.
func (l *Log) countLocked(k refusalKey, r *refusal) {
	cur, ok := l.pending[k]
	if !ok && len(l.pending) >= l.maxKeys {
		k = refusalKey{k.peer, "*", "*", k.status}
		r.target = "*"
		cur, ok = l.pending[k]
	}
	if !ok {
		cp := *r
		l.pending[k] = &cp
		return
	}
	if r.first.Before(cur.first) {
		cur.first = r.first
	}
	if r.last.After(cur.last) {
		cur.last, cur.requestID = r.last, r.requestID
	}
	if cur.target != r.target {
		cur.target = "*"
	}
	cur.count += r.count
}

// Flush writes the pending finishes and the refusals counted so far, one
// row per key, and returns once they are committed. When a commit fails
// what it held is kept for the next Flush (within maxFinishes and
// MaxKeys).
func (l *Log) Flush(ctx context.Context) error {
	return errors.Join(l.flushFinishes(ctx), l.flushRefusals(ctx))
}

func (l *Log) flushRefusals(ctx context.Context) error {
	l.mu.Lock()
	batch := l.pending
	l.pending = map[refusalKey]*refusal{}
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := l.db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for k, r := range batch {
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit(at, peer, method, route, target, status, request_id, count, last_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				r.first.UnixNano(), k.peer, k.method, k.route, r.target, k.status, r.requestID, r.count, r.last.UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		l.mu.Lock()
		for k, r := range batch {
			l.countLocked(k, r)
		}
		l.mu.Unlock()
		return fmt.Errorf("audit.Flush: %w", err)
	}
	return nil
}

// Pending is the number of refusal keys counted and not yet flushed.
func (l *Log) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// RunFlusher writes the pending finishes FinishDelay after the first of
// them, and everything (Flush) every Interval, until ctx ends. The owner
// flushes once more after it stopped, when no request can be finished or
// refused any more (the appliance's Close).
func (l *Log) RunFlusher(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	fin := time.NewTimer(l.delay)
	fin.Stop()
	report := func(err error) {
		if err != nil && onErr != nil && !errors.Is(err, store.ErrClosed) {
			onErr(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
			fin.Reset(l.delay)
		case <-fin.C:
			report(l.flushFinishes(context.WithoutCancel(ctx)))
		case <-t.C:
			report(l.Flush(context.WithoutCancel(ctx)))
		}
	}
}

// Prune deletes the rows older than the retention (by the time of their
// last request) and returns how many. It has the shape of an
// events.PruneFunc but keeps its own cutoff, so one pruner serves both.
func (l *Log) Prune(ctx context.Context, _ time.Time) (int64, error) {
	cutoff := l.now().Add(-l.retention).UnixNano()
	var total int64
	for {
		// In chunks, each its own write transaction, so that the write
		// lock is never held for long after a flood.
		var n int64
		err := l.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 AND COALESCE(last_at, at) < $1 LIMIT $2)`, cutoff, pruneChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("audit.Prune: %w", err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// pruneChunk is how many rows one DELETE of Prune takes at most.
const pruneChunk = 5000

// MaxLimit caps List's limit.
const MaxLimit = 1000

// List returns up to limit entries with id > after, oldest first, optionally
// only those of peer. limit <= 0 means 100.
func (l *Log) List(ctx context.Context, peer string, after int64, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxLimit)
	args := []any{after}
	q := `SELECT id, at, peer, method, route, target, status, request_id, count, last_at FROM audit WHERE id > $1`
	if peer != "" {
		args = append(args, peer)
		q += fmt.Sprintf(` AND peer = $%d`, len(args))
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit.List: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		var last sql.NullInt64
		if err := rows.Scan(&e.ID, &at, &e.Peer, &e.Method, &e.Route, &e.Target, &e.Status, &e.RequestID, &e.Count, &last); err != nil {
			return nil, fmt.Errorf("audit.List: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		if last.Valid {
			t := time.Unix(0, last.Int64).UTC()
			e.LastAt = &t
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
