// Package events is the appliance's durable event log: an append-only table
// with a monotonically increasing id that clients use as a resume cursor,
// retention with explicit refusal of cursors that fell out of it, and a
// wake-up signal for live streams (SSE).
package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"waappliance/store"
)

// Event types. Each one's data has a schema in the OpenAPI document (a
// test there fails for a type without one).
const (
	TypeMessageReceived = "message.received"
	TypeMessageStatus   = "message.status"
	TypeSessionState    = "session.state"
	TypeLoggedOut       = "session.logged_out"
	// TypeTemporarilyBanned: WhatsApp banned the account for a while
	// (code, reason, expires_at); the session waits for the expiry.
	TypeTemporarilyBanned = "session.temporarily_banned"
	// TypeMessageUndecryptable: a message arrived that the session could
	// not decrypt yet; the session asked for it again, and it follows as a
	// message.received under the same id when it arrives.
	TypeMessageUndecryptable = "message.undecryptable"
	// TypeWebhookDisabled: a webhook subscription was disabled by its
	// failures (or a 410); its session is "".
	TypeWebhookDisabled = "webhook.disabled"
	// TypeMessageReaction: an emoji reaction to a message ("" removes
	// the sender's reaction); data names the message it reacts to.
	TypeMessageReaction = "message.reaction"
	// TypeMessageEdited: the sender changed the text or caption of one of
	// its messages.
	TypeMessageEdited = "message.edited"
	// TypeMessageDeleted: a message was revoked for everyone.
	TypeMessageDeleted = "message.deleted"
	// TypePollVote: a vote in a poll, with the chosen options' names (a
	// later vote of the same voter replaces the earlier one).
	TypePollVote = "poll.vote"
	// TypeMediaReady: the media of a received message is downloaded and
	// can be fetched (GET /v1/media/{id}).
	TypeMediaReady = "media.ready"
	// TypeMediaFailed: the media of a received message could not be
	// downloaded (reason), also after asking the phone to upload it again.
	TypeMediaFailed = "media.failed"
)

// Types lists every event type, in the order above.
var Types = []string{TypeMessageReceived, TypeMessageStatus, TypeSessionState, TypeLoggedOut, TypeTemporarilyBanned, TypeMessageUndecryptable, TypeWebhookDisabled,
	TypeMessageReaction, TypeMessageEdited, TypeMessageDeleted, TypePollVote, TypeMediaReady, TypeMediaFailed}

// DefaultRetention is how long events are kept when Options.Retention is zero.
const DefaultRetention = 7 * 24 * time.Hour

// Event is one entry of the log.
type Event struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Session string          `json:"session"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
}

// CursorExpiredError is returned by List for a cursor older than retention;
// Oldest is the first id still available.
type CursorExpiredError struct{ Oldest int64 }

func (e *CursorExpiredError) Error() string {
	return fmt.Sprintf("cursor is older than the retention window; the oldest event still kept is %d", e.Oldest)
}

// ErrCursorExpired matches any *CursorExpiredError with errors.Is.
var ErrCursorExpired = errors.New("cursor expired")

// Is makes errors.Is(err, ErrCursorExpired) true.
func (e *CursorExpiredError) Is(target error) bool { return target == ErrCursorExpired }

// Options configure a Log. Zero values: Retention 7 days, Now time.Now.
type Options struct {
	Retention time.Duration
	Now       func() time.Time
}

// Log is the event log. Safe for concurrent use.
type Log struct {
	db        *store.DB
	retention time.Duration
	now       func() time.Time

	// appended is the highest id appended through this Log, committed or
	// not yet; see Newer.
	appended atomic.Int64

	mu     sync.Mutex
	wake   chan struct{} // closed and replaced on every append
	prune  map[int]PruneFunc
	nextID int

	// betweenReads, when set (tests), runs in List between the cursor
	// check and the query.
	betweenReads func()
}

// PruneFunc deletes what else is kept for the events' retention (the
// outbox) and is older than cutoff; it returns how many rows went.
type PruneFunc func(ctx context.Context, cutoff time.Time) (int64, error)

// OnPrune adds fn to every Prune, with the same cutoff, so one pruner and
// one retention cover all the appliance keeps. The returned func removes it.
func (l *Log) OnPrune(fn PruneFunc) (remove func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prune == nil {
		l.prune = map[int]PruneFunc{}
	}
	id := l.nextID
	l.nextID++
	l.prune[id] = fn
	return func() {
		l.mu.Lock()
		delete(l.prune, id)
		l.mu.Unlock()
	}
}

// New returns the event log stored in db.
func New(db *store.DB, o Options) *Log {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Log{db: db, retention: o.Retention, now: o.Now, wake: make(chan struct{})}
}

// AppendTx appends an event inside the caller's transaction, so it commits
// together with whatever caused it. The caller must call Notify after commit.
//
// The transaction is normally one of store.DB.WriteTx or Batch. Any other
// works too, provided it takes no store write lock after this call: the
// append takes store.DB.AppendLock, held until tx ends, so that event ids
// commit in id order on PostgreSQL as well (a reader following the log
// with List never skips an id that commits after a higher one).
func (l *Log) AppendTx(ctx context.Context, tx store.Querier, session, typ string, data any) (Event, error) {
	e, _, err := l.appendTx(ctx, tx, session, typ, "", data)
	return e, err
}

// appendTx inserts an event; with a key, an event of the same session, type
// and key already in the log makes it a no-op (appended false, e zero).
//
// It takes the append lock first, so appenders take ids one at a time and
// each commits before the next takes one. Under that lock the key is looked
// up before the insert: PostgreSQL takes an id from the sequence even for an
// insert that its ON CONFLICT then drops, and a sequence is not rolled
// back, so an insert of a repeat would leave a gap in the ids. The unique
// index events_dedupe (ON CONFLICT) stays the guarantee.
func (l *Log) appendTx(ctx context.Context, tx store.Querier, session, typ, key string, data any) (e Event, appended bool, err error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, false, fmt.Errorf("events: encode %s: %w", typ, err)
	}
	if err := l.db.AppendLock(ctx, tx); err != nil {
		return Event{}, false, fmt.Errorf("events: append %s: %w", typ, err)
	}
	var k any // NULL: no key, never a conflict
	if key != "" {
		k = key
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM events WHERE session = $1 AND type = $2 AND dedupe_key = $3`, session, typ, key).Scan(&one)
		if err == nil {
			return Event{}, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Event{}, false, fmt.Errorf("events: append %s: %w", typ, err)
		}
	}
	at := l.now().UTC()
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO events(at, session, type, data, dedupe_key) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT(session, type, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
		RETURNING id`, at.UnixNano(), session, typ, string(b), k).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, false, nil // the key was taken after all
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("events: append %s: %w", typ, err)
	}
	for cur := l.appended.Load(); id > cur && !l.appended.CompareAndSwap(cur, id); cur = l.appended.Load() {
	}
	return Event{ID: id, At: at, Session: session, Type: typ, Data: b}, true, nil
}

// Append appends and commits one event, then wakes the streams. It returns
// only after the event is durable. Concurrent appends share a commit
// (store.DB.Batch).
func (l *Log) Append(ctx context.Context, session, typ string, data any) (Event, error) {
	var e Event
	err := l.db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		e, err = l.AppendTx(ctx, tx, session, typ, data)
		return err
	})
	if err != nil {
		return Event{}, fmt.Errorf("events.Append: %w", err)
	}
	l.Notify()
	return e, nil
}

// errDuplicate rolls back AppendOnce's savepoint when the key was taken.
var errDuplicate = errors.New("events: duplicate key")

// AppendOnce is Append made idempotent by key: when the log already holds an
// event of the same session, type and key, it writes nothing and returns
// that event with appended false (and a nil error: the caller may ack what
// it is recording). A key is held by its event's row, so it is free again
// once the event is pruned. The key is the caller's identity for what the
// event records (for an inbound message: chat, sender, message id) and must
// not be empty. Concurrent appends share a commit (store.DB.Batch); the
// event found for a repeat may have been written by another caller of the
// same batch, and is returned only once that batch has committed.
func (l *Log) AppendOnce(ctx context.Context, session, typ, key string, data any) (e Event, appended bool, err error) {
	if key == "" {
		return Event{}, false, fmt.Errorf("events.AppendOnce %s: empty key", typ)
	}
	err = l.db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if e, appended, err = l.appendTx(ctx, tx, session, typ, key, data); err != nil || appended {
			return err
		}
		if e, err = byKey(ctx, tx, session, typ, key); err != nil {
			return err
		}
		// Roll back to the savepoint: nothing of a repeat is to commit
		// (and on PostgreSQL this releases the append lock at once).
		return errDuplicate
	})
	switch {
	case errors.Is(err, errDuplicate):
		return e, false, nil
	case err != nil:
		return Event{}, false, fmt.Errorf("events.AppendOnce: %w", err)
	}
	l.Notify()
	return e, true, nil
}

// AppendOnceTx is AppendOnce inside the caller's transaction (see
// AppendTx): appended is false, and e zero, when the log already holds an
// event of the same session, type and key. The caller then rolls back what
// else it wrote for the event (the whatsapp engine reserves the media of a
// received message in the same transaction), and calls Notify after a
// commit that appended.
func (l *Log) AppendOnceTx(ctx context.Context, tx store.Querier, session, typ, key string, data any) (e Event, appended bool, err error) {
	if key == "" {
		return Event{}, false, fmt.Errorf("events.AppendOnceTx %s: empty key", typ)
	}
	return l.appendTx(ctx, tx, session, typ, key, data)
}

// ByKey returns the event of (session, typ, key) that AppendOnce wrote; ok
// is false when there is none (never written, or pruned). The whatsapp
// engine resolves a reply to a received message with it.
func (l *Log) ByKey(ctx context.Context, session, typ, key string) (e Event, ok bool, err error) {
	e, err = byKey(ctx, l.db, session, typ, key)
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, false, nil
	}
	return e, err == nil, err
}

func byKey(ctx context.Context, q store.Querier, session, typ, key string) (Event, error) {
	var e Event
	var at int64
	var data string
	err := q.QueryRowContext(ctx, `SELECT id, at, session, type, data FROM events WHERE session = $1 AND type = $2 AND dedupe_key = $3`,
		session, typ, key).Scan(&e.ID, &at, &e.Session, &e.Type, &data)
	if err != nil {
		return Event{}, fmt.Errorf("events: event of key: %w", err)
	}
	e.At, e.Data = time.Unix(0, at).UTC(), json.RawMessage(data)
	return e, nil
}

// Notify wakes every waiter of Changed.
func (l *Log) Notify() {
	l.mu.Lock()
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Newer reports whether an event with an id above after may have been
// appended through this Log. False means none was: a stream that has read
// the log up to after (a List shorter than its limit) can skip its next
// query when woken by another stream's event. Every event either existed
// before this process (and that List saw it) or was appended here, and its
// id is counted before its commit, so false is never wrong; true may be (a
// rolled-back append, an event of another session), which costs a query.
func (l *Log) Newer(after int64) bool { return l.appended.Load() > after }

// Changed returns a channel that is closed at the next append.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// Filter selects events. Sessions nil means every session; an empty non-nil
// slice means none. After is the cursor (exclusive); HasAfter says whether
// the client gave one (without it, listing starts at the oldest event kept).
type Filter struct {
	Sessions []string
	// SessionsOnly leaves out events that belong to no session (session
	// "": webhook.disabled, which names another peer's webhook); only
	// admins see those.
	SessionsOnly bool
	After        int64
	HasAfter     bool
	Limit        int
}

// MaxLimit caps Filter.Limit; 0 means 100.
const MaxLimit = 1000

// List returns events with id > After in order. A cursor that points into
// pruned history gets a *CursorExpiredError instead of a silent gap: the
// check and the query read one snapshot (store.DB.ReadTx), so a prune
// that commits in between cannot open a gap. Ids commit in id order (see
// AppendTx), so the last id of a List is a cursor behind which no event
// can still appear.
func (l *Log) List(ctx context.Context, f Filter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, MaxLimit)
	var out []Event
	err := l.db.ReadTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = l.list(ctx, tx, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (l *Log) list(ctx context.Context, tx *sql.Tx, f Filter) ([]Event, error) {
	out := []Event{}
	if f.HasAfter {
		pruned, err := prunedThrough(ctx, tx)
		if err != nil {
			return nil, err
		}
		if f.After < pruned {
			oldest, err := oldest(ctx, tx)
			if err != nil {
				return nil, err
			}
			return nil, &CursorExpiredError{Oldest: oldest}
		}
	}
	if l.betweenReads != nil {
		l.betweenReads()
	}
	if f.Sessions != nil && len(f.Sessions) == 0 {
		return out, nil
	}
	args := []any{f.After}
	q := `SELECT id, at, session, type, data FROM events WHERE id > $1`
	if f.Sessions != nil {
		ph := make([]string, len(f.Sessions))
		for i, s := range f.Sessions {
			args = append(args, s)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		q += ` AND session IN (` + strings.Join(ph, ", ") + `)`
	}
	if f.SessionsOnly {
		q += ` AND session <> ''`
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("events.List: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var at int64
		var data string
		if err := rows.Scan(&e.ID, &at, &e.Session, &e.Type, &data); err != nil {
			return nil, fmt.Errorf("events.List: %w", err)
		}
		e.At, e.Data = time.Unix(0, at).UTC(), json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}

// prunedKey is the settings row holding the highest id ever pruned.
const prunedKey = "events_pruned_through"

// prunedThrough is the highest id ever pruned, 0 when none was.
func prunedThrough(ctx context.Context, q store.Querier) (int64, error) {
	v, ok, err := store.SettingsOf(q).Get(ctx, prunedKey)
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("events: pruned mark %q: %w", v, err)
	}
	return n, nil
}

// Oldest is the id of the oldest event kept, or the next id to be assigned
// when the log is empty.
func (l *Log) Oldest(ctx context.Context) (int64, error) {
	return oldest(ctx, l.db)
}

func oldest(ctx context.Context, q store.Querier) (int64, error) {
	var id sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MIN(id) FROM events`).Scan(&id); err != nil {
		return 0, err
	}
	if id.Valid {
		return id.Int64, nil
	}
	p, err := prunedThrough(ctx, q)
	return p + 1, err
}

// Latest is the id of the newest event, 0 when none was ever written: the
// highest id in the log, or, when a prune emptied it, the highest id
// pruned. (Not the sequence: on PostgreSQL it also counts ids of appends
// that rolled back, so it could name an event that never existed.)
func (l *Log) Latest(ctx context.Context) (int64, error) {
	var latest int64
	err := l.db.ReadTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&latest); err != nil {
			return fmt.Errorf("events.Latest: %w", err)
		}
		pruned, err := prunedThrough(ctx, tx)
		latest = max(latest, pruned)
		return err
	})
	return latest, err
}

// Prune deletes events older than the retention and records the highest
// pruned id, in one transaction, then runs the OnPrune funcs with the same
// cutoff. It returns how many events were deleted.
func (l *Log) Prune(ctx context.Context) (int64, error) {
	cutoffTime := l.now().Add(-l.retention)
	cutoff := cutoffTime.UnixNano()
	var n int64
	err := l.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var maxID sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM events WHERE at < $1`, cutoff).Scan(&maxID); err != nil {
			return err
		}
		if !maxID.Valid {
			return nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id <= $1`, maxID.Int64)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		// The mark only grows; the write lock makes the read-compare-write
		// one step.
		pruned, err := prunedThrough(ctx, tx)
		if err != nil || maxID.Int64 <= pruned {
			return err
		}
		return store.SettingsOf(tx).Set(ctx, prunedKey, strconv.FormatInt(maxID.Int64, 10))
	})
	if err != nil {
		return 0, fmt.Errorf("events.Prune: %w", err)
	}
	l.mu.Lock()
	fns := make([]PruneFunc, 0, len(l.prune))
	for _, fn := range l.prune {
		fns = append(fns, fn)
	}
	l.mu.Unlock()
	var errs []error
	for _, fn := range fns {
		if _, err := fn(ctx, cutoffTime); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// RunPruner prunes every interval until ctx ends.
func (l *Log) RunPruner(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := l.Prune(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
