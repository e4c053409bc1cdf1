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
// another process (the CLI) through a generation counter, which every
// change bumps in its own transaction and then announces on the store
// channel "peers" (store.DB.Changed), so a serving process can wait for it
// instead of only polling.
type Registry struct {
	db     *store.DB
	server Server
	now    func() time.Time

	mu   sync.Mutex // serialises reloads
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	gen    int64
	server Server  // with the endpoint and default limits as stored now
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

// Server returns the appliance settings the registry was opened with; the
// endpoint, the default rate and burst and the API host names are as of
// the last reload (`set` may change them while another process serves).
func (r *Registry) Server() Server { return r.snap.Load().server }

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
		return Peer{}, peerErr("peers.Get", name, ErrNotFound)
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

// generationKey is the settings row counting the peer changes.
const generationKey = "peers_generation"

func (r *Registry) generation(ctx context.Context, q store.Querier) (int64, error) {
	v, ok, err := store.SettingsOf(q).Get(ctx, generationKey)
	if err != nil {
		return 0, fmt.Errorf("peers: generation: %w", err)
	}
	if !ok {
		return 0, fmt.Errorf("peers: generation: no %s setting", generationKey)
	}
	return strconv.ParseInt(v, 10, 64)
}

const peerCols = `name, public_key, preshared_key, addr, scopes, sessions, rate, burst, expires_at, disabled, created_at, updated_at, send_per_minute, max_conns, max_streams, webhooks_external`

// reload reads the generation, the settings and the peers in one snapshot
// (store.DB.ReadTx), so the generation it records is that of the peers it
// loaded.
func (r *Registry) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s *snapshot
	err := r.db.ReadTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		gen, err := r.generation(ctx, tx)
		if err != nil {
			return err
		}
		srv, err := r.changeableSettings(ctx, tx)
		if err != nil {
			return fmt.Errorf("peers: reload: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+peerCols+` FROM peers ORDER BY name`)
		if err != nil {
			return fmt.Errorf("peers: reload: %w", err)
		}
		defer rows.Close()
		s = &snapshot{gen: gen, server: srv, byName: map[string]*Peer{}, byAddr: map[netip.Addr]*Peer{}}
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
		return nil
	})
	if err != nil {
		return err
	}
	r.snap.Store(s)
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// changeableSettings returns r.server with the settings UpdateServer may
// change (endpoint, default rate and burst, API host names) as stored in
// tx now.
func (r *Registry) changeableSettings(ctx context.Context, tx store.Querier) (Server, error) {
	stored, err := loadServer(ctx, tx)
	if err != nil {
		return Server{}, err
	}
	s := r.server
	s.Endpoint, s.DefaultRate, s.DefaultBurst = stored.Endpoint, stored.DefaultRate, stored.DefaultBurst
	s.APIHosts = stored.APIHosts
	return s, nil
}

// UpdateServer changes the stored settings (see the function UpdateServer)
// and reloads the snapshot, so Server has the change at once.
func (r *Registry) UpdateServer(ctx context.Context, ch ServerChange) (Server, error) {
	if _, err := UpdateServer(ctx, r.db, ch); err != nil {
		return Server{}, err
	}
	if err := r.reload(ctx); err != nil {
		return Server{}, err
	}
	return r.Server(), nil
}

func scanPeer(rows scanner) (*Peer, error) {
	var (
		p                        Peer
		pub, psk, addr, sc, sess string
		expires                  sql.NullInt64
		maxConns, maxStreams     sql.NullInt64
		disabled, external       int
		created, updated         int64
	)
	if err := rows.Scan(&p.Name, &pub, &psk, &addr, &sc, &sess, &p.Rate, &p.Burst, &expires, &disabled, &created, &updated, &p.SendPerMinute, &maxConns, &maxStreams, &external); err != nil {
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
	p.WebhooksExternal = external != 0
	p.MaxConns, p.MaxStreams = int(maxConns.Int64), int(maxStreams.Int64)
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
	// MaxConns and MaxStreams cap the peer's connections and event
	// streams; 0 means the appliance's default.
	MaxConns   int
	MaxStreams int
	// ExpiresAt, when non-zero, is when the peer stops working.
	ExpiresAt time.Time
	Sessions  []string
	// WebhooksExternal allows webhooks outside the tunnel (https only).
	WebhooksExternal bool
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

// Add creates a peer with a fresh preshared key and the next free tunnel
// address (see allocator). The address is chosen and inserted in one write
// transaction and the column is UNIQUE, so concurrent adds (even from other
// processes) never share an address.
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
			return nil, peerErr("peers.Add", o.Name, err)
		}
		cs[i] = c
	}
	err := r.write(ctx, func(tx *sql.Tx) error {
		al, err := r.loadAllocator(ctx, tx)
		if err != nil {
			return err
		}
		for i := range cs {
			if err := r.insert(ctx, tx, &cs[i].Peer, al); err != nil {
				return peerErr("peers.Add", cs[i].Peer.Name, err)
			}
		}
		return al.save(ctx, tx)
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
		return c, ErrBadName
	}
	if o.Rate == 0 {
		o.Rate = r.Server().DefaultRate
	}
	if o.Burst == 0 {
		o.Burst = r.Server().DefaultBurst
	}
	if o.SendPerMinute == 0 {
		o.SendPerMinute = DefaultSendPerMinute
	}
	if err := ValidateLimit(o.Rate, o.Burst); err != nil {
		return c, err
	}
	if err := ValidateSendPerMinute(o.SendPerMinute); err != nil {
		return c, err
	}
	if err := validateCaps(o.MaxConns, o.MaxStreams); err != nil {
		return c, err
	}
	if err := validSessions(o.Sessions); err != nil {
		return c, err
	}
	now := r.now().UTC()
	if err := ValidateExpiry(o.ExpiresAt, now); err != nil {
		return c, err
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
		return c, fmt.Errorf("%w: it is the appliance's own key", ErrKeyInUse)
	}
	psk, err := GenerateSymmetricKey()
	if err != nil {
		return c, err
	}
	c.Peer = Peer{Name: o.Name, PublicKey: pub, PresharedKey: psk, Scopes: o.Scopes, Sessions: o.Sessions,
		Rate: o.Rate, Burst: o.Burst, SendPerMinute: o.SendPerMinute, MaxConns: o.MaxConns, MaxStreams: o.MaxStreams, ExpiresAt: o.ExpiresAt.UTC(), CreatedAt: now, UpdatedAt: now, WebhooksExternal: o.WebhooksExternal}
	if o.ExpiresAt.IsZero() {
		c.Peer.ExpiresAt = time.Time{}
	}
	return c, nil
}

// insert gives p the next free address and inserts it.
func (r *Registry) insert(ctx context.Context, tx *sql.Tx, p *Peer, al *allocator) error {
	var nameTaken, keyTaken int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM peers WHERE name = $1`, p.Name).Scan(&nameTaken); err != nil {
		return err
	}
	if nameTaken > 0 {
		return ErrExists
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM peers WHERE public_key = $1`, p.PublicKey.String()).Scan(&keyTaken); err != nil {
		return err
	}
	if keyTaken > 0 {
		return fmt.Errorf("%w by another peer", ErrKeyInUse)
	}
	addr, err := al.next()
	if err != nil {
		return err
	}
	p.Addr = addr
	_, err = tx.ExecContext(ctx, `INSERT INTO peers(`+peerCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
		p.Name, p.PublicKey.String(), p.PresharedKey.String(), addr.String(), joinScopes(p.Scopes), strings.Join(p.Sessions, ","),
		p.Rate, p.Burst, nullTime(p.ExpiresAt), 0, p.CreatedAt.UnixNano(), p.UpdatedAt.UnixNano(), p.SendPerMinute, nullCap(p.MaxConns), nullCap(p.MaxStreams), boolInt(p.WebhooksExternal))
	return err
}

func joinScopes(sc []Scope) string {
	s := make([]string, len(sc))
	for i, v := range sc {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

// validateCaps checks the per-peer connection and stream caps.
func validateCaps(conns, streams int) error {
	if err := ValidateMaxConns(conns); err != nil {
		return err
	}
	return ValidateMaxStreams(streams)
}

// nullCap stores a cap of 0 (the appliance's default) as NULL.
func nullCap(n int) sql.NullInt64 { return sql.NullInt64{Int64: int64(n), Valid: n > 0} }

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// lastAddrKey is the settings row holding the address handed out last.
const lastAddrKey = "peers_last_addr"

// allocator hands out the peers' tunnel addresses round-robin: the next
// free host address after the one handed out last, wrapping around at the
// end of the subnet. An address freed a moment ago is therefore the last to
// be reused, so a new peer never inherits it while the old key's
// connections may still be draining. It lives inside one write transaction;
// the UNIQUE addr column remains the guarantee.
type allocator struct {
	first, last uint32          // the peers' host range: after the appliance, before broadcast
	prev        uint32          // handed out last; first-1 when none
	used        map[uint32]bool // the addresses in the range that peers hold
}

func (r *Registry) loadAllocator(ctx context.Context, tx *sql.Tx) (*allocator, error) {
	sub := r.server.Subnet.Masked()
	base := addrToU32(sub.Addr())
	size := uint32(1) << (32 - sub.Bits())
	al := &allocator{first: base + 2, last: base + size - 2, used: map[uint32]bool{}}
	al.prev = al.first - 1
	rows, err := tx.QueryContext(ctx, `SELECT addr FROM peers`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var highest uint32
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			continue
		}
		u := addrToU32(a)
		if u >= al.first && u <= al.last && !al.used[u] {
			al.used[u] = true
			highest = max(highest, u)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	v, ok, err := store.SettingsOf(tx).Get(ctx, lastAddrKey)
	switch a, perr := netip.ParseAddr(v); {
	case err != nil:
		return nil, err
	case ok && perr == nil && a.Is4() && addrToU32(a) >= al.first && addrToU32(a) <= al.last:
		al.prev = addrToU32(a)
	case highest != 0:
		// A state from before round-robin allocation: continue after the
		// highest address in use.
		al.prev = highest
	}
	return al, nil
}

// next returns the next free address after prev, wrapping around.
func (al *allocator) next() (netip.Addr, error) {
	if al.last < al.first || len(al.used) >= int(al.last-al.first+1) {
		return netip.Addr{}, ErrSubnetFull
	}
	a := al.prev
	for {
		a++
		if a > al.last || a < al.first {
			a = al.first
		}
		if !al.used[a] {
			al.used[a], al.prev = true, a
			return u32ToAddr(a), nil
		}
	}
}

func (al *allocator) save(ctx context.Context, tx *sql.Tx) error {
	if al.prev < al.first {
		return nil
	}
	return store.SettingsOf(tx).Set(ctx, lastAddrKey, u32ToAddr(al.prev).String())
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// write runs fn in a write transaction, bumps the generation, commits,
// announces the change and reloads the snapshot. fn holds the store's write
// lock (store.DB.WriteTx, on either engine) from its first statement, so
// what it reads is current until it commits: a read-modify-write in fn
// never loses a concurrent change, from this process or another.
func (r *Registry) write(ctx context.Context, fn func(*sql.Tx) error) error {
	err := r.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	if err != nil {
		return err
	}
	notifyChanged(ctx, r.db)
	return r.reload(ctx)
}

// bumpGeneration counts a change, in the transaction that makes it.
func bumpGeneration(ctx context.Context, tx *sql.Tx) error {
	_, err := store.SettingsOf(tx).Add(ctx, generationKey, 1)
	return err
}

// notifyChanged announces a committed change of the peers or the server
// settings on the store channel "peers". The change is committed whatever
// happens here; a waiter that misses the announcement still sees the new
// generation at its next Refresh.
func notifyChanged(ctx context.Context, db *store.DB) {
	_ = db.Notify(ctx, "peers")
}

func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Remove deletes the peer called name.
func (r *Registry) Remove(ctx context.Context, name string) error {
	err := r.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM peers WHERE name = $1`, name)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return peerErr("peers.Remove", name, err)
}

// UpdateOptions change a peer; nil fields stay as they are. A zero
// *ExpiresAt clears the expiry.
type UpdateOptions struct {
	Scopes        *[]Scope
	Sessions      *[]string
	Rate          *float64
	Burst         *int
	SendPerMinute *int
	// MaxConns and MaxStreams: 0 resets to the appliance's default.
	MaxConns   *int
	MaxStreams *int
	ExpiresAt  *time.Time
	Disabled   *bool
	// WebhooksExternal allows or forbids webhooks outside the tunnel.
	WebhooksExternal *bool
}

// Update changes the peer called name and returns it. It reads the current
// row and writes it back in one write transaction, so a change made a moment
// ago by another process (a CLI `peer disable`) or a concurrent Update is
// never overwritten with stale values of the fields o leaves alone.
func (r *Registry) Update(ctx context.Context, name string, o UpdateOptions) (Peer, error) {
	if o.Sessions != nil {
		if err := validSessions(*o.Sessions); err != nil {
			return Peer{}, peerErr("peers.Update", name, err)
		}
	}
	now := r.now().UTC()
	if o.ExpiresAt != nil {
		if err := ValidateExpiry(*o.ExpiresAt, now); err != nil {
			return Peer{}, peerErr("peers.Update", name, err)
		}
	}
	var out Peer
	err := r.write(ctx, func(tx *sql.Tx) error {
		cur, err := scanPeer(tx.QueryRowContext(ctx, `SELECT `+peerCols+` FROM peers WHERE name = $1`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if o.Scopes != nil {
			cur.Scopes = *o.Scopes
		}
		if o.Sessions != nil {
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
		if err := ValidateLimit(cur.Rate, cur.Burst); err != nil {
			return err
		}
		if err := ValidateSendPerMinute(cur.SendPerMinute); err != nil {
			return err
		}
		if o.MaxConns != nil {
			cur.MaxConns = *o.MaxConns
		}
		if o.MaxStreams != nil {
			cur.MaxStreams = *o.MaxStreams
		}
		if err := validateCaps(cur.MaxConns, cur.MaxStreams); err != nil {
			return err
		}
		if o.ExpiresAt != nil {
			cur.ExpiresAt = o.ExpiresAt.UTC()
			if o.ExpiresAt.IsZero() {
				cur.ExpiresAt = time.Time{}
			}
		}
		if o.Disabled != nil {
			cur.Disabled = *o.Disabled
		}
		if o.WebhooksExternal != nil {
			cur.WebhooksExternal = *o.WebhooksExternal
		}
		cur.UpdatedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE peers SET scopes=$1, sessions=$2, rate=$3, burst=$4, send_per_minute=$5, max_conns=$6, max_streams=$7, expires_at=$8, disabled=$9, updated_at=$10, webhooks_external=$12 WHERE name=$11`,
			joinScopes(cur.Scopes), strings.Join(cur.Sessions, ","), cur.Rate, cur.Burst, cur.SendPerMinute, nullCap(cur.MaxConns), nullCap(cur.MaxStreams), nullTime(cur.ExpiresAt), boolInt(cur.Disabled), now.UnixNano(), name, boolInt(cur.WebhooksExternal))
		out = clonePeer(cur)
		return err
	})
	if err != nil {
		return Peer{}, peerErr("peers.Update", name, err)
	}
	return out, nil
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
		res, err := tx.ExecContext(ctx, `UPDATE peers SET public_key=$1, preshared_key=$2, updated_at=$3 WHERE name=$4`,
			priv.Public().String(), psk.String(), now.UnixNano(), name)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		p, err := scanPeer(tx.QueryRowContext(ctx, `SELECT `+peerCols+` FROM peers WHERE name = $1`, name))
		if err != nil {
			return err
		}
		c.Peer = clonePeer(p)
		return nil
	})
	if err != nil {
		return Created{}, peerErr("peers.Rotate", name, err)
	}
	c.PrivateKey = priv
	return c, nil
}

// IsNotFound reports whether err is ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
