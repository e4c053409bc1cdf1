// Package webhooks delivers the event log to URLs that peers subscribe:
// through the tunnel to the subscribing peer's own address, one event per
// request, in log order, signed per Standard Webhooks v1, retried with
// backoff, and resumed after any restart from a cursor kept in the
// database.
package webhooks

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"waappliance/audit"
	"waappliance/events"
	"waappliance/peers"
	"waappliance/store"
)

// Errors returned to API callers; the texts are written for users.
var (
	// ErrNotFound is returned for a subscription id that does not exist
	// (or, for a peer, is not its own).
	ErrNotFound = errors.New("webhook not found")
	// ErrBadURL is returned by Create for a URL that is not on the
	// subscribing peer's own tunnel address.
	ErrBadURL = errors.New("invalid webhook url")
	// ErrBadEvents is returned by Create for an unknown event type.
	ErrBadEvents = errors.New("invalid webhook events")
	// ErrBadSessions is returned by Create for a session the peer may not
	// read, or a malformed name.
	ErrBadSessions = errors.New("invalid webhook sessions")
	// ErrBadRewind is returned by Rewind for a cursor past the newest
	// event (it would skip events yet to come).
	ErrBadRewind = errors.New("invalid webhook rewind")
	// ErrTooMany is returned by Create past MaxPerPeer subscriptions.
	ErrTooMany = errors.New("too many webhooks for this peer")
)

// maxURL bounds a webhook URL.
const maxURL = 2048

// MaxPerPeer caps one peer's subscriptions: each is a goroutine and an
// HTTP connection.
const MaxPerPeer = 16

// Dialer opens connections through the WireGuard device (netstack.Device).
// An interface so the netstack need not know of webhooks, and a test can
// dial loopback.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Peers is the subset of *peers.Registry delivery reads: the peer is
// looked up before every attempt, so one removed, disabled or without
// `read` stops receiving at once.
type Peers interface {
	Get(name string) (peers.Peer, error)
	Server() peers.Server
}

// Auditor records a subscription disabled by failures (*audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// DefaultSchedule is the wait after each failed attempt, Standard Webhooks'
// schedule (about 27.6 hours in all); after the last, the subscription is
// disabled. (internal/backoff was not on main when this was written.)
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Defaults of Config.
const (
	DefaultTimeout = 15 * time.Second
	// RotationOverlap is how long a rotated-out secret keeps signing.
	RotationOverlap = 24 * time.Hour
	// maxResponse is how much of a response body is read (and ignored),
	// so the connection can be reused.
	maxResponse = 64 << 10
)

// Config wires a Manager. DB, Events, Peers and Dialer are required; nil
// Audit records nothing; nil Logger discards; zero Timeout is
// DefaultTimeout; nil Schedule is DefaultSchedule; nil Now is time.Now;
// nil Wait sleeps on a timer; nil Jitter spreads each wait by ±10%.
type Config struct {
	DB     *store.DB
	Events *events.Log
	Peers  Peers
	Dialer Dialer
	Audit  Auditor
	Logger *slog.Logger

	Timeout  time.Duration
	Schedule []time.Duration
	Now      func() time.Time
	// Wait sleeps d or until ctx ends (tests inject a clock here).
	Wait   func(ctx context.Context, d time.Duration) error
	Jitter func(d time.Duration) time.Duration
	// PeerPoll is how often a subscription whose peer may not read now
	// (disabled, expired, no `read`) checks again; zero is 5 s.
	PeerPoll time.Duration
}

// Subscription is a webhook as the API shows it; secrets are never in it.
type Subscription struct {
	ID       int64    `json:"id"`
	Peer     string   `json:"peer"`
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	Sessions []string `json:"sessions"`
	// State is "enabled" or "disabled"; DisabledReason says why
	// ("disabled by request", "gone (410)", "failing", "cursor expired").
	State          string `json:"state"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Cursor is the id of the last event delivered (or skipped as not
	// selected): delivery resumes after it.
	Cursor int64 `json:"cursor"`
	// Attempts counts the failed attempts at the event after Cursor.
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	// PreviousSecretUntil is when a rotated-out secret stops signing.
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	// Lag is filled by Get.
	Lag *Lag `json:"lag,omitempty"`
}

// Lag is how far a subscription is behind the log.
type Lag struct {
	// Events is how many events after the cursor it may still deliver
	// (its types and sessions; the peer's allow-list may skip some).
	Events int64 `json:"events"`
	// OldestAt is when the oldest of them was appended; nil when none.
	OldestAt *time.Time `json:"oldest_at,omitempty"`
	// OldestAgeSeconds is the age of that event.
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

// row is a subscription with what delivery needs and the API never shows.
type row struct {
	Subscription
	secret     string
	oldSecret  string
	oldUntil   time.Time
	disabled   bool
	nextAt     time.Time
	lastStatus int
}

// Manager owns the subscriptions and one delivery goroutine per enabled
// subscription. Safe for concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	http *httpClient // through the tunnel
	ext  *httpClient // https:// outside it

	mu      sync.Mutex
	ctx     context.Context // Start's; nil before
	workers map[int64]*worker
	wg      sync.WaitGroup
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Manager; Start begins delivering.
func New(cfg Config) (*Manager, error) {
	if cfg.DB == nil || cfg.Events == nil || cfg.Peers == nil || cfg.Dialer == nil {
		return nil, errors.New("webhooks.New: DB, Events, Peers and Dialer are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wait == nil {
		cfg.Wait = sleep
	}
	if cfg.Jitter == nil {
		cfg.Jitter = jitter
	}
	if cfg.PeerPoll <= 0 {
		cfg.PeerPoll = 5 * time.Second
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: l, http: newHTTPClient(cfg.Dialer, cfg.Timeout), ext: newExternalClient(cfg.Timeout), workers: map[int64]*worker{}}, nil
}

// Start starts delivery of every enabled subscription; it ends with ctx
// (then Close waits for the goroutines).
func (m *Manager) Start(ctx context.Context) error {
	subs, err := m.list(ctx, "")
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	for _, s := range subs {
		if !s.disabled {
			m.startWorker(s.ID)
		}
	}
	return nil
}

// Close stops every delivery and waits for it. An attempt in flight is
// cut off and retried at the next start, under the same webhook-id.
func (m *Manager) Close() {
	m.mu.Lock()
	ws := m.workers
	m.workers = map[int64]*worker{}
	m.ctx = nil
	m.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	m.wg.Wait()
	m.http.close()
	m.ext.close()
}

func (m *Manager) startWorker(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.workers[id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	m.workers[id] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(w.done)
		m.run(ctx, id)
		m.mu.Lock()
		if m.workers[id] == w {
			delete(m.workers, id)
		}
		m.mu.Unlock()
	}()
}

// stopWorker stops id's delivery and waits until it stopped, so the
// caller may change the row without a delivery writing over it.
func (m *Manager) stopWorker(id int64) {
	m.mu.Lock()
	w := m.workers[id]
	delete(m.workers, id)
	m.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// Running reports whether id has a delivery goroutine (tests, doctor).
func (m *Manager) Running(id int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers[id] != nil
}

// CreateRequest is the body of POST /v1/webhooks.
type CreateRequest struct {
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	Sessions []string `json:"sessions"`
}

// Created is a new subscription with its secret, shown only here.
type Created struct {
	Subscription
	Secret string `json:"secret"`
}

// CheckURL accepts http://<p's own tunnel address>[:port]/path: the
// delivery is dialled through the tunnel to p alone. Another peer's
// address, the appliance's own, userinfo and https inside the tunnel
// (there is no certificate to check there; WireGuard already encrypts and
// authenticates) are refused. Outside the tunnel only a peer an admin
// allowed (WebhooksExternal) may subscribe, to https:// on a public
// address (see checkExternal; names are checked again at every dial).
func CheckURL(p peers.Peer, subnet netip.Prefix, raw string) (string, error) {
	if len(raw) > maxURL {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadURL, maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: want http://%s[:port]/path", ErrBadURL, p.Addr)
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: no userinfo or fragment", ErrBadURL)
	}
	host := u.Hostname()
	a, err := netip.ParseAddr(host)
	inTunnel := err == nil && subnet.IsValid() && subnet.Contains(a.Unmap())
	switch {
	case !inTunnel && !p.WebhooksExternal:
		return "", fmt.Errorf("%w: %q is not a tunnel address; webhooks go through the tunnel to http://%s[:port]/path (your own address), or outside it only for a peer an admin allowed (peer set %s --webhooks-external)", ErrBadURL, host, p.Addr, p.Name)
	case !inTunnel:
		if err := checkExternal(u.Scheme, host); err != nil {
			return "", err
		}
	case a.Unmap() != p.Addr:
		return "", fmt.Errorf("%w: %s is not your tunnel address; a webhook goes to http://%s[:port]/path only", ErrBadURL, a, p.Addr)
	case u.Scheme != "http":
		return "", fmt.Errorf("%w: inside the tunnel use http:// (WireGuard encrypts it), not %s://", ErrBadURL, u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	if u.Scheme == "https" {
		port = cmp.Or(u.Port(), "443")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: port %q", ErrBadURL, port)
	}
	return u.String(), nil
}

// Create adds a subscription of p, delivering events after the newest one
// now in the log.
func (m *Manager) Create(ctx context.Context, p peers.Peer, req CreateRequest) (Created, error) {
	u, err := CheckURL(p, m.cfg.Peers.Server().Subnet, req.URL)
	if err != nil {
		return Created{}, err
	}
	evs, err := checkEvents(req.Events)
	if err != nil {
		return Created{}, err
	}
	sess := slices.Clone(req.Sessions)
	if sess == nil {
		sess = []string{}
	}
	for _, s := range sess {
		if !peers.ValidName(s) {
			return Created{}, fmt.Errorf("%w: %q is not a session name", ErrBadSessions, s)
		}
		if !p.AllowsSession(s) {
			return Created{}, fmt.Errorf("%w: session %q is not one you may read", ErrBadSessions, s)
		}
	}
	latest, err := m.cfg.Events.Latest(ctx)
	if err != nil {
		return Created{}, err
	}
	secret := NewSecret()
	now := m.cfg.Now().UTC()
	ej, _ := json.Marshal(evs)
	sj, _ := json.Marshal(sess)
	var id int64
	err = m.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE peer = $1`, p.Name).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPerPeer {
			return fmt.Errorf("%w (at most %d)", ErrTooMany, MaxPerPeer)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO webhooks(peer, url, events, sessions, secret, cursor, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`, p.Name, u, string(ej), string(sj), secret, latest, now.UnixNano()).Scan(&id)
	})
	if err != nil {
		return Created{}, fmt.Errorf("webhooks.Create: %w", err)
	}
	r, err := m.get(ctx, id)
	if err != nil {
		return Created{}, err
	}
	m.startWorker(id)
	return Created{Subscription: r.Subscription, Secret: secret}, nil
}

func checkEvents(evs []string) ([]string, error) {
	if len(evs) == 0 {
		return []string{"*"}, nil
	}
	var out []string
	for _, e := range evs {
		if e == events.TypeWebhookDisabled {
			return nil, fmt.Errorf("%w: %s is not delivered by webhooks (a disabled webhook cannot receive; watch /v1/events)", ErrBadEvents, e)
		}
		if e != "*" && !slices.Contains(events.Types, e) {
			return nil, fmt.Errorf("%w: unknown event type %q (known: * or %v)", ErrBadEvents, e, events.Types)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if slices.Contains(out, "*") {
		return []string{"*"}, nil
	}
	return out, nil
}

const columns = `id, peer, url, events, sessions, secret, old_secret, old_secret_until, disabled, disabled_reason,
	cursor, attempts, next_attempt_at, last_success_at, last_error, last_status, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanRow(sc scanner) (*row, error) {
	var r row
	var evs, sess string
	var old sql.NullString
	var oldUntil, lastOK sql.NullInt64
	var disabled, next, created, updated int64
	err := sc.Scan(&r.ID, &r.Peer, &r.URL, &evs, &sess, &r.secret, &old, &oldUntil, &disabled, &r.DisabledReason,
		&r.Cursor, &r.Attempts, &next, &lastOK, &r.LastError, &r.LastStatus, &created, &updated)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(evs), &r.Events); err != nil {
		return nil, fmt.Errorf("webhooks: events of %d: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(sess), &r.Sessions); err != nil {
		return nil, fmt.Errorf("webhooks: sessions of %d: %w", r.ID, err)
	}
	r.disabled = disabled != 0
	r.State = "enabled"
	if r.disabled {
		r.State = "disabled"
	}
	if old.Valid && oldUntil.Valid {
		r.oldSecret, r.oldUntil = old.String, time.Unix(0, oldUntil.Int64).UTC()
		r.PreviousSecretUntil = &r.oldUntil
	}
	if next != 0 {
		r.nextAt = time.Unix(0, next).UTC()
		r.NextAttemptAt = &r.nextAt
	}
	if lastOK.Valid {
		t := time.Unix(0, lastOK.Int64).UTC()
		r.LastSuccessAt = &t
	}
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &r, nil
}

func (m *Manager) get(ctx context.Context, id int64) (*row, error) {
	r, err := scanRow(m.cfg.DB.QueryRowContext(ctx, `SELECT `+columns+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: get %d: %w", id, err)
	}
	return r, nil
}

func (m *Manager) list(ctx context.Context, peer string) ([]*row, error) {
	q, args := `SELECT `+columns+` FROM webhooks ORDER BY id`, []any{}
	if peer != "" {
		q, args = `SELECT `+columns+` FROM webhooks WHERE peer = $1 ORDER BY id`, []any{peer}
	}
	rows, err := m.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	defer rows.Close()
	var out []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// List returns the subscriptions of peer, or every one for "".
func (m *Manager) List(ctx context.Context, peer string) ([]Subscription, error) {
	rs, err := m.list(ctx, peer)
	if err != nil {
		return nil, err
	}
	out := make([]Subscription, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Subscription)
	}
	return out, nil
}

// Get returns subscription id with its lag.
func (m *Manager) Get(ctx context.Context, id int64) (Subscription, error) {
	r, err := m.get(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	lag, err := m.lag(ctx, r)
	if err != nil {
		return Subscription{}, err
	}
	r.Lag = &lag
	return r.Subscription, nil
}

func (m *Manager) lag(ctx context.Context, r *row) (Lag, error) {
	return lagOf(ctx, m.cfg.DB, m.cfg.Peers, m.cfg.Now(), r)
}

// Backlogs returns every enabled subscription with its Lag as of now,
// read from db and ps alone: doctor calls it on a stopped appliance's
// state to warn of a cursor about to fall out of the event retention.
func Backlogs(ctx context.Context, db *store.DB, ps Peers, now time.Time) ([]Subscription, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+columns+` FROM webhooks WHERE disabled = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: backlogs: %w", err)
	}
	var rs []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: backlogs: %w", err)
	}
	out := make([]Subscription, 0, len(rs))
	for _, r := range rs {
		lag, err := lagOf(ctx, db, ps, now, r)
		if err != nil {
			return nil, err
		}
		r.Lag = &lag
		out = append(out, r.Subscription)
	}
	return out, nil
}

func lagOf(ctx context.Context, db *store.DB, ps Peers, now time.Time, r *row) (Lag, error) {
	args := []any{r.Cursor}
	q := `SELECT COUNT(*), MIN(at) FROM events WHERE id > $1`
	if !slices.Contains(r.Events, "*") {
		q += ` AND type IN (` + placeholders(&args, r.Events) + `)`
	}
	sess := r.Sessions
	if len(sess) == 0 {
		if p, err := ps.Get(r.Peer); err == nil {
			sess = p.Sessions
		}
	}
	if len(sess) > 0 {
		q += ` AND session IN (` + placeholders(&args, sess) + `)`
	}
	var lag Lag
	var oldest sql.NullInt64
	if err := db.QueryRowContext(ctx, q, args...).Scan(&lag.Events, &oldest); err != nil {
		return Lag{}, fmt.Errorf("webhooks: lag of %d: %w", r.ID, err)
	}
	if oldest.Valid {
		t := time.Unix(0, oldest.Int64).UTC()
		lag.OldestAt = &t
		lag.OldestAgeSeconds = max(0, now.Sub(t).Seconds())
	}
	return lag, nil
}

func placeholders(args *[]any, vals []string) string {
	s := ""
	for i, v := range vals {
		*args = append(*args, v)
		if i > 0 {
			s += ", "
		}
		s += "$" + strconv.Itoa(len(*args))
	}
	return s
}

// Delete removes subscription id (its delivery stops first).
func (m *Manager) Delete(ctx context.Context, id int64) error {
	m.stopWorker(id)
	err := m.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %d", ErrNotFound, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhooks.Delete: %w", err)
	}
	return nil
}

// update stops id's delivery, runs fn on its row in a write transaction,
// and restarts delivery when the row is then enabled.
func (m *Manager) update(ctx context.Context, id int64, fn func(ctx context.Context, tx *sql.Tx, r *row) error) (Subscription, error) {
	m.stopWorker(id)
	err := m.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := scanRow(tx.QueryRowContext(ctx, `SELECT `+columns+` FROM webhooks WHERE id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %d", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		return fn(ctx, tx, r)
	})
	r, gerr := m.get(ctx, id)
	if gerr == nil && !r.disabled {
		m.startWorker(id)
	}
	if err != nil {
		return Subscription{}, err
	}
	if gerr != nil {
		return Subscription{}, gerr
	}
	return r.Subscription, nil
}

// SetEnabled enables or disables subscription id. Enabling resumes from
// the cursor with a fresh attempt count.
func (m *Manager) SetEnabled(ctx context.Context, id int64, enabled bool) (Subscription, error) {
	now := m.cfg.Now().UTC().UnixNano()
	return m.update(ctx, id, func(ctx context.Context, tx *sql.Tx, r *row) error {
		if enabled {
			_, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled = 0, disabled_reason = '', attempts = 0, next_attempt_at = 0, updated_at = $2 WHERE id = $1`, id, now)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled = 1, disabled_reason = $2, updated_at = $3 WHERE id = $1`, id, "disabled by request", now)
		return err
	})
}

// RotateSecret gives id a new secret, returned only here; the old one
// keeps signing alongside it for RotationOverlap.
func (m *Manager) RotateSecret(ctx context.Context, id int64) (Created, error) {
	secret := NewSecret()
	now := m.cfg.Now().UTC()
	s, err := m.update(ctx, id, func(ctx context.Context, tx *sql.Tx, r *row) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhooks SET old_secret = secret, old_secret_until = $2, secret = $3, updated_at = $4 WHERE id = $1`,
			id, now.Add(RotationOverlap).UnixNano(), secret, now.UnixNano())
		return err
	})
	if err != nil {
		return Created{}, err
	}
	return Created{Subscription: s, Secret: secret}, nil
}

// Rewind moves id's cursor to after (replaying every event after it); a
// cursor out of retention is a *events.CursorExpiredError.
func (m *Manager) Rewind(ctx context.Context, id int64, after int64) (Subscription, error) {
	if after < 0 {
		return Subscription{}, fmt.Errorf("%w: after must not be negative", ErrBadRewind)
	}
	if _, err := m.cfg.Events.List(ctx, events.Filter{After: after, HasAfter: true, Limit: 1}); err != nil {
		return Subscription{}, err
	}
	latest, err := m.cfg.Events.Latest(ctx)
	if err != nil {
		return Subscription{}, err
	}
	if after > latest {
		return Subscription{}, fmt.Errorf("%w: after %d is past the newest event (%d)", ErrBadRewind, after, latest)
	}
	now := m.cfg.Now().UTC().UnixNano()
	return m.update(ctx, id, func(ctx context.Context, tx *sql.Tx, r *row) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhooks SET cursor = $2, attempts = 0, next_attempt_at = 0, updated_at = $3 WHERE id = $1`, id, after, now)
		return err
	})
}
