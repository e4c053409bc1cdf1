package peers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"waappliance/store"
)

// Registry is the durable set of peers with an in-memory snapshot for the
// hot path (address → peer on every request). Mutations go to the database
// first and then refresh the snapshot; Refresh picks up changes made by
// another process (the CLI) through a generation counter.
type Registry struct {
	db     *store.DB
	server Server
	now    func() time.Time

	mu   sync.Mutex // serialises reloads
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	gen    int64
	list   []*Peer // by name
	byName map[string]*Peer
	byAddr map[netip.Addr]*Peer
}

// NewRegistry loads the peers of db. now is the clock (nil: time.Now).
func NewRegistry(ctx context.Context, db *store.DB, server Server, now func() time.Time) (*Registry, error) {
	if now == nil {
		now = time.Now
	}
	r := &Registry{db: db, server: server, now: now}
	if err := r.reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Server returns the appliance settings the registry was opened with.
func (r *Registry) Server() Server { return r.server }

// Now returns the registry's clock reading.
func (r *Registry) Now() time.Time { return r.now() }

// Generation is the change counter of the loaded snapshot.
func (r *Registry) Generation() int64 { return r.snap.Load().gen }

// List returns copies of all peers, by name.
func (r *Registry) List() []Peer {
	s := r.snap.Load()
	out := make([]Peer, len(s.list))
	for i, p := range s.list {
		out[i] = clonePeer(p)
	}
	return out
}

// Get returns the peer called name, or ErrNotFound.
func (r *Registry) Get(name string) (Peer, error) {
	p, ok := r.snap.Load().byName[name]
	if !ok {
		return Peer{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return clonePeer(p), nil
}

// Lookup returns the peer whose tunnel address is addr, whether or not it is
// active; the caller checks Active.
func (r *Registry) Lookup(addr netip.Addr) (*Peer, bool) {
	p, ok := r.snap.Load().byAddr[addr.Unmap()]
	return p, ok
}

// Refresh reloads the snapshot if another process changed the peers. It
// reports whether anything changed.
func (r *Registry) Refresh(ctx context.Context) (bool, error) {
	gen, err := r.generation(ctx, r.db)
	if err != nil {
		return false, err
	}
	if gen == r.snap.Load().gen {
		return false, nil
	}
	return true, r.reload(ctx)
}

type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (r *Registry) generation(ctx context.Context, q queryer) (int64, error) {
	var v string
	if err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'peers_generation'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("peers: generation: %w", err)
	}
	return strconv.ParseInt(v, 10, 64)
}

const peerCols = `name, public_key, preshared_key, addr, scopes, sessions, rate, burst, expires_at, disabled, created_at, updated_at, send_per_minute`

func (r *Registry) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("peers: reload: %w", err)
	}
	defer tx.Rollback()
	gen, err := r.generation(ctx, tx)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+peerCols+` FROM peers ORDER BY name`)
	if err != nil {
		return fmt.Errorf("peers: reload: %w", err)
	}
	defer rows.Close()
	s := &snapshot{gen: gen, byName: map[string]*Peer{}, byAddr: map[netip.Addr]*Peer{}}
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return fmt.Errorf("peers: reload: %w", err)
		}
		s.list = append(s.list, p)
		s.byName[p.Name] = p
		s.byAddr[p.Addr] = p
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("peers: reload: %w", err)
	}
	r.snap.Store(s)
	return nil
}

func scanPeer(rows *sql.Rows) (*Peer, error) {
	var (
		p                        Peer
		pub, psk, addr, sc, sess string
		expires                  sql.NullInt64
		disabled                 int
		created, updated         int64
	)
	if err := rows.Scan(&p.Name, &pub, &psk, &addr, &sc, &sess, &p.Rate, &p.Burst, &expires, &disabled, &created, &updated, &p.SendPerMinute); err != nil {
		return nil, err
	}
	var err error
	if p.PublicKey, err = ParseKey(pub); err != nil {
		return nil, fmt.Errorf("peer %q public key: %w", p.Name, err)
	}
	if p.PresharedKey, err = ParseKey(psk); err != nil {
		return nil, fmt.Errorf("peer %q preshared key: %w", p.Name, err)
	}
	if p.Addr, err = netip.ParseAddr(addr); err != nil {
		return nil, fmt.Errorf("peer %q addr: %w", p.Name, err)
	}
	if p.Scopes, err = ParseScopes(sc); err != nil {
		return nil, fmt.Errorf("peer %q: %w", p.Name, err)
	}
	if sess != "" {
		p.Sessions = strings.Split(sess, ",")
	}
	if expires.Valid {
		p.ExpiresAt = time.Unix(0, expires.Int64).UTC()
	}
	p.Disabled = disabled != 0
	p.CreatedAt = time.Unix(0, created).UTC()
	p.UpdatedAt = time.Unix(0, updated).UTC()
	return &p, nil
}

func clonePeer(p *Peer) Peer {
	c := *p
	c.Scopes = slices.Clone(p.Scopes)
	c.Sessions = slices.Clone(p.Sessions)
	return c
}

// AddOptions describe a new peer. Zero values: no scopes, the server's
// default rate and burst, a generated keypair, never expires, all sessions.
type AddOptions struct {
	Name   string
	Scopes []Scope
	// PublicKey, when set, is the client's own key; no private key is made.
	PublicKey Key
	Rate      float64
	Burst     int
	// SendPerMinute is the message budget; 0 means DefaultSendPerMinute.
	SendPerMinute int
	// ExpiresAt, when non-zero, is when the peer stops working.
	ExpiresAt time.Time
	Sessions  []string
}

// Created is a peer just added or rotated. PrivateKey is set only when the
// appliance generated the keypair; it is shown once and never stored.
type Created struct {
	Peer       Peer
	PrivateKey Key
}

func validSessions(ss []string) error {
	for _, s := range ss {
		if !ValidName(s) {
			return fmt.Errorf("%w: %q", ErrBadSession, s)
		}
	}
	return nil
}

func validLimit(rate float64, burst int) error {
	if rate <= 0 || rate > 1e9 || burst < 1 || burst > 1e9 {
		return ErrBadLimit
	}
	return nil
}

// Add creates a peer with a fresh preshared key and the lowest free tunnel
// address. The address is chosen and inserted in one write transaction and
// the column is UNIQUE, so concurrent adds (even from other processes) never
// share an address.
func (r *Registry) Add(ctx context.Context, o AddOptions) (Created, error) {
	cs, err := r.AddBatch(ctx, []AddOptions{o})
	if err != nil {
		return Created{}, err
	}
	return cs[0], nil
}

// AddBatch adds several peers in one transaction: all or none. It exists
// for bulk provisioning (and the 10,000-peer benchmark), where one snapshot
// reload instead of one per peer matters.
func (r *Registry) AddBatch(ctx context.Context, opts []AddOptions) ([]Created, error) {
	cs := make([]Created, len(opts))
	for i, o := range opts {
		c, err := r.prepare(o)
		if err != nil {
			return nil, err
		}
		cs[i] = c
	}
	err := r.write(ctx, func(tx *sql.Tx) error {
		used, err := usedAddrs(ctx, tx)
		if err != nil {
			return err
		}
		for i := range cs {
			if err := r.insert(ctx, tx, &cs[i].Peer, used); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// prepare validates o and makes the keys; the address comes in insert.
func (r *Registry) prepare(o AddOptions) (Created, error) {
	var c Created
	if !ValidName(o.Name) {
		return c, fmt.Errorf("peers.Add %q: %w", o.Name, ErrBadName)
	}
	if o.Rate == 0 {
		o.Rate = r.server.DefaultRate
	}
	if o.Burst == 0 {
		o.Burst = r.server.DefaultBurst
	}
	if o.SendPerMinute == 0 {
		o.SendPerMinute = DefaultSendPerMinute
	}
	if err := validLimit(o.Rate, o.Burst); err != nil || o.SendPerMinute < 1 || o.SendPerMinute > 1e6 {
		return c, fmt.Errorf("peers.Add %q: %w", o.Name, ErrBadLimit)
	}
	if err := validSessions(o.Sessions); err != nil {
		return c, fmt.Errorf("peers.Add %q: %w", o.Name, err)
	}
	pub := o.PublicKey
	if pub.IsZero() {
		priv, err := GeneratePrivateKey()
		if err != nil {
			return c, err
		}
		c.PrivateKey, pub = priv, priv.Public()
	}
	if pub == r.server.PublicKey() {
		return c, fmt.Errorf("peers.Add %q: %w: that is the appliance's own key", o.Name, ErrExists)
	}
	psk, err := GenerateSymmetricKey()
	if err != nil {
		return c, err
	}
	now := r.now().UTC()
	c.Peer = Peer{Name: o.Name, PublicKey: pub, PresharedKey: psk, Scopes: o.Scopes, Sessions: o.Sessions,
		Rate: o.Rate, Burst: o.Burst, SendPerMinute: o.SendPerMinute, ExpiresAt: o.ExpiresAt, CreatedAt: now, UpdatedAt: now}
	return c, nil
}

// insert gives p the lowest free address (marking it used) and inserts it.
func (r *Registry) insert(ctx context.Context, tx *sql.Tx, p *Peer, used map[netip.Addr]bool) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM peers WHERE name = ? OR public_key = ?`, p.Name, p.PublicKey.String()).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("peers.Add %q: %w (name or public key in use)", p.Name, ErrExists)
	}
	addr, err := r.freeAddr(used)
	if err != nil {
		return fmt.Errorf("peers.Add %q: %w", p.Name, err)
	}
	p.Addr, used[addr] = addr, true
	_, err = tx.ExecContext(ctx, `INSERT INTO peers(`+peerCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.Name, p.PublicKey.String(), p.PresharedKey.String(), addr.String(), joinScopes(p.Scopes), strings.Join(p.Sessions, ","),
		p.Rate, p.Burst, nullTime(p.ExpiresAt), 0, p.CreatedAt.UnixNano(), p.UpdatedAt.UnixNano(), p.SendPerMinute)
	return err
}

func joinScopes(sc []Scope) string {
	s := make([]string, len(sc))
	for i, v := range sc {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func usedAddrs(ctx context.Context, tx *sql.Tx) (map[netip.Addr]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT addr FROM peers`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	used := map[netip.Addr]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if a, err := netip.ParseAddr(s); err == nil {
			used[a] = true
		}
	}
	return used, rows.Err()
}

// freeAddr returns the lowest host address of the subnet that is neither the
// appliance's, nor the broadcast address, nor used.
func (r *Registry) freeAddr(used map[netip.Addr]bool) (netip.Addr, error) {
	sub := r.server.Subnet.Masked()
	for a := r.server.TunnelAddr().Next(); sub.Contains(a); a = a.Next() {
		if !sub.Contains(a.Next()) { // broadcast
			break
		}
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, ErrSubnetFull
}

// write runs fn in a write transaction, bumps the generation, commits and
// reloads the snapshot.
func (r *Registry) write(ctx context.Context, fn func(*sql.Tx) error) error {
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'peers_generation'`)
		return err
	})
	if err != nil {
		return err
	}
	return r.reload(ctx)
}

func (r *Registry) mustAffect(res sql.Result, name string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}

// Remove deletes the peer called name.
func (r *Registry) Remove(ctx context.Context, name string) error {
	return r.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM peers WHERE name = ?`, name)
		if err != nil {
			return err
		}
		return r.mustAffect(res, name)
	})
}

// UpdateOptions change a peer; nil fields stay as they are. A zero
// *ExpiresAt clears the expiry.
type UpdateOptions struct {
	Scopes        *[]Scope
	Sessions      *[]string
	Rate          *float64
	Burst         *int
	SendPerMinute *int
	ExpiresAt     *time.Time
	Disabled      *bool
}

// Update changes the peer called name and returns it.
func (r *Registry) Update(ctx context.Context, name string, o UpdateOptions) (Peer, error) {
	cur, err := r.Get(name)
	if err != nil {
		return Peer{}, err
	}
	if o.Scopes != nil {
		cur.Scopes = *o.Scopes
	}
	if o.Sessions != nil {
		if err := validSessions(*o.Sessions); err != nil {
			return Peer{}, err
		}
		cur.Sessions = *o.Sessions
	}
	if o.Rate != nil {
		cur.Rate = *o.Rate
	}
	if o.Burst != nil {
		cur.Burst = *o.Burst
	}
	if o.SendPerMinute != nil {
		cur.SendPerMinute = *o.SendPerMinute
	}
	if err := validLimit(cur.Rate, cur.Burst); err != nil || cur.SendPerMinute < 1 || cur.SendPerMinute > 1e6 {
		return Peer{}, ErrBadLimit
	}
	if o.ExpiresAt != nil {
		cur.ExpiresAt = *o.ExpiresAt
	}
	if o.Disabled != nil {
		cur.Disabled = *o.Disabled
	}
	now := r.now().UTC()
	err = r.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE peers SET scopes=?, sessions=?, rate=?, burst=?, send_per_minute=?, expires_at=?, disabled=?, updated_at=? WHERE name=?`,
			joinScopes(cur.Scopes), strings.Join(cur.Sessions, ","), cur.Rate, cur.Burst, cur.SendPerMinute, nullTime(cur.ExpiresAt), boolInt(cur.Disabled), now.UnixNano(), name)
		if err != nil {
			return err
		}
		return r.mustAffect(res, name)
	})
	if err != nil {
		return Peer{}, err
	}
	return r.Get(name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetDisabled disables or enables the peer called name.
func (r *Registry) SetDisabled(ctx context.Context, name string, disabled bool) (Peer, error) {
	return r.Update(ctx, name, UpdateOptions{Disabled: &disabled})
}

// Rotate gives the peer a new generated keypair and preshared key; the old
// key stops working. The new private key is returned once.
func (r *Registry) Rotate(ctx context.Context, name string) (Created, error) {
	var c Created
	priv, err := GeneratePrivateKey()
	if err != nil {
		return c, err
	}
	psk, err := GenerateSymmetricKey()
	if err != nil {
		return c, err
	}
	now := r.now().UTC()
	err = r.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE peers SET public_key=?, preshared_key=?, updated_at=? WHERE name=?`,
			priv.Public().String(), psk.String(), now.UnixNano(), name)
		if err != nil {
			return err
		}
		return r.mustAffect(res, name)
	})
	if err != nil {
		return c, err
	}
	c.PrivateKey = priv
	c.Peer, err = r.Get(name)
	return c, err
}

// IsNotFound reports whether err is ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
