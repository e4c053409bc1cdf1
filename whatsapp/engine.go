// Package whatsapp runs the appliance's WhatsApp accounts: one whatsmeow
// client per session, pairing by QR or phone code, reconnects, the durable
// outbox and its per-session sender, and the translation of whatsmeow
// events into the durable event log.
//
// Durability rules: a send is committed to the outbox before Send returns;
// an inbound message is committed to the event log before whatsmeow acks it
// to WhatsApp (SynchronousAck).
package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	waStore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"

	"waappliance/events"
	"waappliance/internal/backoff"
	"waappliance/media"
	"waappliance/store"
)

var sessionNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Config wires an Engine. DB and Events are required. Zero values: Logger
// discards, Now is time.Now, Prepare is nil (real WhatsApp), send backoff
// 1 s to 1 min, Reconnect 1 s to 1 min with full jitter, MaxAttempts 0
// means retry until the message is older than 24 h.
type Config struct {
	DB     *store.DB
	Events *events.Log
	Logger *slog.Logger
	// Prepare is called on every whatsmeow client before it connects. The
	// sandbox uses it to point clients at wasim.
	Prepare     func(*whatsmeow.Client)
	Now         func() time.Time
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	MaxAttempts int
	// Reconnect is the backoff of connecting and reconnecting sessions
	// (its Rand and After are injectable for tests).
	Reconnect backoff.Policy
	// LatestVersion, when set, is asked at Start for WhatsApp's current web
	// client version (LatestWebVersion on a real appliance); nil keeps the
	// built-in one without asking (sandbox mode, tests: never the internet).
	LatestVersion func(ctx context.Context) (waStore.WAVersionContainer, error)
	// DisplayName is shown on the phone's linked-devices list for phone-code pairing.
	DisplayName string
	// Media is the media store: the bytes a send of a media kind uploads
	// to WhatsApp, and where inbound media is reserved and downloaded to.
	// nil: media kinds fail with a clear error (text and the rest work).
	Media *media.Store
}

// Engine owns every session.
type Engine struct {
	cfg       Config
	log       *slog.Logger
	container *sqlstore.Container

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	unprune  func() // drops pruneMessages from the event log's pruner

	ver        webVersion
	onWhatsApp recipientCache
	dl         downloads // received media (download.go)
}

// New prepares whatsmeow's tables in the shared database. Start connects.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.DB == nil || cfg.Events == nil {
		return nil, errors.New("whatsapp.New: DB and Events are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Chrome (Linux)"
	}
	// Every line at info and above goes through Redact (house rule: no full
	// phone numbers above debug), ours and whatsmeow's alike.
	log := newRedactingLogger(cfg.Logger)
	c := sqlstore.NewWithDB(cfg.DB.DB, string(cfg.DB.Dialect), newWALogger(log, "store"))
	if err := c.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("whatsapp: upgrade whatsmeow tables: %w", err)
	}
	e := &Engine{cfg: cfg, log: log.With("component", "whatsapp"), container: c, sessions: map[string]*session{}}
	e.ver.done = make(chan struct{})
	e.ctx, e.cancel = context.WithCancel(context.Background())
	rows, err := cfg.DB.QueryContext(ctx, `SELECT name, state, jid FROM sessions ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: load sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var st committed
		if err := rows.Scan(&name, &st.State, &st.JID); err != nil {
			return nil, err
		}
		e.sessions[name] = newSession(e, name, st)
	}
	return e, rows.Err()
}

// startConcurrency bounds how many sessions connect at once at start-up.
const startConcurrency = 8

// Start starts the senders and connects every linked session in the
// background (at most startConcurrency at a time), so it returns at once
// even when WhatsApp is unreachable: such sessions show connecting, then
// disconnected, and keep retrying. Logged-out and replaced sessions are not
// connected (a replaced one would take the connection back from the client
// that replaced it, and the two would take turns).
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	ss := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		s.startSender()
		ss = append(ss, s)
	}
	e.unprune = e.cfg.Events.OnPrune(e.pruneMessages)
	e.mu.Unlock()
	e.checkWebVersion()
	var linked []*session
	for _, s := range ss {
		info := s.committed()
		switch {
		case info.State == StatePairing || (info.JID == "" && info.State == StateConnecting):
			// A pairing interrupted by a restart cannot resume. A JID here is
			// the one of the device that was logged out before.
			state := StateNew
			if info.JID != "" {
				state = StateLoggedOut
			}
			s.setState(ctx, state, "pairing interrupted by a restart; start again")
			continue
		case info.JID == "" || info.State == StateLoggedOut || info.State == StateReplaced:
			continue
		}
		s.setState(ctx, StateConnecting, "")
		linked = append(linked, s)
	}
	sem := make(chan struct{}, startConcurrency)
	for _, s := range linked {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			select {
			case sem <- struct{}{}:
			case <-e.ctx.Done():
				return
			}
			defer func() { <-sem }()
			s.startLinked()
		}()
	}
	return nil
}

// Close disconnects every client and stops the senders.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ss := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		ss = append(ss, s)
	}
	unprune := e.unprune
	e.mu.Unlock()
	if unprune != nil {
		unprune()
	}
	e.cancel()
	for _, s := range ss {
		s.close()
	}
	e.wg.Wait()
	return nil
}

func (e *Engine) session(name string) (*session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	s, ok := e.sessions[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, name)
	}
	return s, nil
}

// SessionInfo is what the API shows of a session.
type SessionInfo struct {
	Name            string     `json:"name"`
	State           string     `json:"state"`
	JID             string     `json:"jid,omitempty"`
	PushName        string     `json:"push_name,omitempty"`
	LastConnectedAt *time.Time `json:"last_connected_at"`
	LastError       string     `json:"last_error,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	// BanExpiresAt is when a temporary ban ends, while temporarily_banned
	// (kept in memory: after a restart the session simply tries once).
	BanExpiresAt *time.Time `json:"ban_expires_at,omitempty"`
}

// withLive adds what only the live session knows to si.
func (e *Engine) withLive(si SessionInfo) SessionInfo {
	e.mu.Lock()
	s := e.sessions[si.Name]
	e.mu.Unlock()
	if s == nil || si.State != StateTemporarilyBanned {
		return si
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.banUntil.IsZero() {
		t := s.banUntil
		si.BanExpiresAt = &t
	}
	return si
}

// Create adds a session in state new.
func (e *Engine) Create(ctx context.Context, name string) (SessionInfo, error) {
	if !sessionNameRE.MatchString(name) {
		return SessionInfo{}, fmt.Errorf("%w: %q", ErrBadSessionName, name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return SessionInfo{}, ErrClosed
	}
	if _, ok := e.sessions[name]; ok {
		return SessionInfo{}, fmt.Errorf("%w: %q", ErrSessionExists, name)
	}
	now := e.cfg.Now().UnixNano()
	if err := e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions(name, state, created_at, updated_at) VALUES ($1, $2, $3, $4)`, name, StateNew, now, now)
		return err
	}); err != nil {
		return SessionInfo{}, fmt.Errorf("whatsapp.Create %q: %w", name, err)
	}
	s := newSession(e, name, committed{State: StateNew})
	e.sessions[name] = s
	s.startSender()
	return s.info(ctx)
}

// List returns every session, by name.
func (e *Engine) List(ctx context.Context) ([]SessionInfo, error) {
	rows, err := e.cfg.DB.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("whatsapp.List: %w", err)
	}
	defer rows.Close()
	out := []SessionInfo{}
	for rows.Next() {
		si, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e.withLive(si))
	}
	return out, rows.Err()
}

// Get returns one session.
func (e *Engine) Get(ctx context.Context, name string) (SessionInfo, error) {
	s, err := e.session(name)
	if err != nil {
		return SessionInfo{}, err
	}
	si, err := s.info(ctx)
	return e.withLive(si), err
}

const sessionCols = `name, state, jid, push_name, last_connected_at, last_error, created_at`

type scanner interface{ Scan(...any) error }

func scanSession(r scanner) (SessionInfo, error) {
	var si SessionInfo
	var last sql.NullInt64
	var created int64
	if err := r.Scan(&si.Name, &si.State, &si.JID, &si.PushName, &last, &si.LastError, &created); err != nil {
		return si, err
	}
	if last.Valid {
		t := time.Unix(0, last.Int64).UTC()
		si.LastConnectedAt = &t
	}
	si.CreatedAt = time.Unix(0, created).UTC()
	return si, nil
}

// Delete logs the session out (when linked), removes its device keys, its
// outbox, and the session itself. Its past events stay in the event log
// until retention prunes them.
func (e *Engine) Delete(ctx context.Context, name string) error {
	s, err := e.session(name)
	if err != nil {
		return err
	}
	s.logout(ctx, true)
	s.close()
	if err := e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE name = $1`, name)
		return err
	}); err != nil {
		return fmt.Errorf("whatsapp.Delete %q: %w", name, err)
	}
	e.mu.Lock()
	delete(e.sessions, name)
	e.mu.Unlock()
	e.dropDownloads(ctx, name)
	e.forgetSession(name)
	e.cfg.Events.Append(ctx, name, events.TypeSessionState, map[string]string{"state": "deleted"})
	return nil
}

// Logout unlinks the device at WhatsApp and keeps the session row.
func (e *Engine) Logout(ctx context.Context, name string) error {
	s, err := e.session(name)
	if err != nil {
		return err
	}
	s.logout(ctx, false)
	return nil
}
