// Package app wires the appliance together: configuration, the lifecycle
// (open → serve → close, in order and bounded), the command line, and
// logging.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	waStore "go.mau.fi/whatsmeow/store"
	"golang.zx2c4.com/wireguard/conn"

	"waappliance/api"
	"waappliance/audit"
	"waappliance/events"
	"waappliance/internal/wasim"
	"waappliance/media"
	"waappliance/netstack"
	"waappliance/peers"
	"waappliance/store"
	"waappliance/webhooks"
	"waappliance/whatsapp"
)

// APIPort is the HTTP API's port inside the tunnel.
const APIPort = 80

// PollInterval is how often a serving appliance looks for peer changes made
// by another process and for expiries.
const PollInterval = 500 * time.Millisecond

// ShutdownTimeout bounds a clean shutdown.
const ShutdownTimeout = 5 * time.Second

// Options configure Open. Zero values: Logger discards, Now is time.Now,
// ListenPort 0 uses the stored port (-1: any free port, for tests), Bind nil
// is wireguard-go's default UDP bind.
type Options struct {
	StateDir   string
	Logger     *slog.Logger
	Now        func() time.Time
	ListenPort int
	Bind       conn.Bind
	// Retention is how long events are kept; 0 means 7 days.
	Retention time.Duration
	// AuditRetention is how long audit rows are kept; 0 means 90 days.
	// AuditInterval is how long refusals are counted before their
	// aggregated rows are written; 0 means a minute.
	AuditRetention, AuditInterval time.Duration
	// NoWhatsApp starts only the tunnel and the peer API (the WhatsApp
	// routes answer 503). Bench helpers and selftest use it.
	NoWhatsApp bool
	// Sandbox is "" for real WhatsApp, SandboxInProcess for a built-in
	// wasim, or the HOST:PORT of a standalone wasim.
	Sandbox string
	// Limits bound what peers may hold open; zero fields take the defaults.
	Limits Limits
	// Database is what --database asked for; the zero value opens the
	// database the state stores (SQLite beside it unless init chose
	// PostgreSQL).
	Database DatabaseChoice
	// LatestWebVersion, when set, asks WhatsApp for its current web client
	// version at start (whatsapp.LatestWebVersion; serve sets it for real
	// WhatsApp). nil keeps whatsmeow's built-in one without asking.
	LatestWebVersion func(ctx context.Context) (waStore.WAVersionContainer, error)
	// WebhookSchedule is the wait after each failed webhook attempt; nil
	// is webhooks.DefaultSchedule (tests shorten it).
	WebhookSchedule []time.Duration
	// MediaMaxBytes is the media store's quota (--media-max-bytes); 0 is
	// DefaultMediaMaxBytes, negative is none.
	MediaMaxBytes int64
}

// SandboxInProcess selects the built-in simulator.
const SandboxInProcess = "in-process"

// Appliance is an opened state directory that can serve.
type Appliance struct {
	opts    Options
	log     *slog.Logger
	db      *store.DB
	server  peers.Server
	reg     *peers.Registry
	limits  *peers.Limiters
	audit   *audit.Log
	events  *events.Log
	wa      *whatsapp.Engine
	media   *media.Store
	sandbox *sandbox
	handler http.Handler
	cancel  context.CancelFunc
	// webhooks (app/webhooks.go)
	hooks    *webhooks.Manager
	hookDial *tunnelDialer

	mu      sync.Mutex
	dev     *netstack.Device
	httpSrv *http.Server
	ctlSrv  *http.Server
	nudge   chan struct{}
	done    chan struct{}
	closed  bool
	// flushDone is closed when the audit flusher has returned.
	flushDone chan struct{}
	// endpoints saves the live peers' endpoints (under endpointsMu).
	endpoints   *endpointSaver
	endpointsMu sync.Mutex

	// What was last applied to the device, guarded by reconcileMu (the
	// reconcile loop and Sync both reconcile).
	reconcileMu sync.Mutex
	appliedGen  int64
	nextExpiry  time.Time
}

// Open opens an initialized state directory. It starts nothing.
func Open(ctx context.Context, o Options) (*Appliance, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	} else {
		// The one place the appliance's logger is set: repeated
		// identical lines (a failing disk fails every request alike) are
		// rate-limited.
		o.Logger = slog.New(newLogLimiter(o.Logger.Handler(), logBurst, logInterval, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Limits = o.Limits.withDefaults()
	db, err := openStateDB(ctx, o.StateDir, o.Database, o.Logger)
	if err != nil {
		return nil, err
	}
	a, err := openDB(ctx, o, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func openDB(ctx context.Context, o Options, db *store.DB) (*Appliance, error) {
	srv, err := peers.LoadServer(ctx, db)
	if err != nil {
		return nil, err
	}
	reg, err := peers.NewRegistry(ctx, db, srv, o.Now)
	if err != nil {
		return nil, err
	}
	a := &Appliance{opts: o, log: o.Logger, db: db, server: srv, reg: reg,
		limits: peers.NewLimiters(o.Now), nudge: make(chan struct{}, 1),
		audit:  audit.New(db, audit.Options{Retention: o.AuditRetention, Interval: o.AuditInterval, Now: o.Now}),
		events: events.New(db, events.Options{Retention: o.Retention, Now: o.Now})}
	return a, nil
}

func (a *Appliance) buildHandler() http.Handler {
	opts := api.Options{Registry: a.reg, Limiters: a.limits, Audit: a.audit, Stats: a.stats,
		Changed: a.Nudge, Version: Version(), Logger: a.log, Events: a.events, Now: a.opts.Now,
		PeerStreams: a.opts.Limits.PeerStreams, Streams: a.opts.Limits.Streams, BodyTimeout: a.opts.Limits.BodyTimeout}
	if a.wa != nil {
		opts.WhatsApp = a.wa
	}
	if a.sandbox != nil {
		opts.Sandbox = a.sandbox.withEngine(a.wa)
	}
	if a.hooks != nil { // webhooks
		opts.Webhooks = a.hooks
	}
	if a.media != nil {
		opts.Media = a.media
	}
	return api.New(opts)
}

// Handler is the API handler; identity comes from r.RemoteAddr. Before
// Start it serves the tunnel and peer routes only.
func (a *Appliance) Handler() http.Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.handler == nil {
		a.handler = a.buildHandler()
	}
	return a.handler
}

// SandboxServer is the built-in simulator in sandbox mode (nil otherwise);
// tests use it to inject faults.
func (a *Appliance) SandboxServer() *wasim.Server {
	if a.sandbox == nil {
		return nil
	}
	return a.sandbox.local
}

// Events is the event log.
func (a *Appliance) Events() *events.Log { return a.events }

// WhatsApp is the engine, nil before Start or with NoWhatsApp.
func (a *Appliance) WhatsApp() *whatsapp.Engine {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wa
}

// Peers is the peer registry.
func (a *Appliance) Peers() *peers.Registry { return a.reg }

// Server returns the appliance's WireGuard settings.
func (a *Appliance) Server() peers.Server { return a.server }

// TunnelAddr is the appliance's address inside the tunnel.
func (a *Appliance) TunnelAddr() netip.Addr { return a.server.TunnelAddr() }

// MTU is the tunnel MTU.
func (a *Appliance) MTU() int { return a.server.MTU }

// DB is the appliance database.
func (a *Appliance) DB() *store.DB { return a.db }

// UAPI renders the complete wireguard-go configuration of the appliance
// (key, port, every active peer), for bench helpers that run the same
// handler over a kernel TUN.
func (a *Appliance) UAPI() (string, error) {
	return netstack.UAPI(a.server.PrivateKey, a.server.ListenPort, a.activePeers()), nil
}

func (a *Appliance) activePeers() []netstack.PeerConfig {
	now := a.opts.Now()
	var out []netstack.PeerConfig
	for _, p := range a.reg.List() {
		if p.Active(now) {
			out = append(out, netstack.PeerConfig{PublicKey: p.PublicKey, PresharedKey: p.PresharedKey, Addr: p.Addr})
		}
	}
	return out
}

func (a *Appliance) stats() map[peers.Key]api.PeerStats {
	a.mu.Lock()
	dev := a.dev
	a.mu.Unlock()
	if dev == nil {
		return nil
	}
	st, err := dev.Stats()
	if err != nil {
		return nil
	}
	out := make(map[peers.Key]api.PeerStats, len(st))
	for k, v := range st {
		out[k] = api.PeerStats{LastHandshake: v.LastHandshake, RxBytes: v.RxBytes, TxBytes: v.TxBytes}
	}
	return out
}

// Sync applies pending peer changes (from any process) to the device and
// returns once it has them. Tests use it so a new peer's first handshake is
// not dropped (its retry would wait 5 s); Nudge is the asynchronous form.
func (a *Appliance) Sync() { a.reconcile() }

// Nudge asks the serving appliance to apply peer changes now.
func (a *Appliance) Nudge() {
	select {
	case a.nudge <- struct{}{}:
	default:
	}
}

// Start brings up the WireGuard device and the API inside the tunnel and
// returns once both are listening. Close stops them.
func (a *Appliance) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.dev != nil {
		return errors.New("app: already started or closed")
	}
	unpruneMedia, err := a.openMedia()
	if err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if !a.opts.NoWhatsApp {
		if err := bindMode(ctx, a.db, a.opts.Sandbox != ""); err != nil {
			return err
		}
		var prepare func(*whatsmeow.Client)
		if a.opts.Sandbox != "" {
			sb, err := startSandbox(ctx, a.opts.StateDir, a.opts.Sandbox, a.log)
			if err != nil {
				return err
			}
			a.sandbox, prepare = sb, sb.prepare
			a.log.Warn("SANDBOX MODE: WhatsApp sessions talk to the simulator (wasim), not to WhatsApp", "wasim", a.opts.Sandbox)
		}
		wa, err := whatsapp.New(ctx, whatsapp.Config{DB: a.db, Events: a.events, Logger: a.log, Now: a.opts.Now, Prepare: prepare,
			LatestVersion: a.opts.LatestWebVersion, Media: a.media})
		if err != nil {
			return err
		}
		if err := wa.Start(ctx); err != nil {
			wa.Close()
			return err
		}
		a.wa = wa
	}
	// One hourly pruner for the event log, the audit log (each with its
	// own retention) and the media store (with the events').
	unprune := a.events.OnPrune(a.audit.Prune)
	go func() {
		a.events.RunPruner(bg, time.Hour, func(err error) { a.log.Warn("pruning failed", "err", err) })
		unprune()
		unpruneMedia()
	}()
	a.flushDone = make(chan struct{})
	go func() {
		defer close(a.flushDone)
		a.audit.RunFlusher(bg, func(err error) { a.log.Error("audit refusal counts not written", "err", err) })
	}()
	if err := a.newWebhooks(); err != nil { // webhooks
		if a.wa != nil {
			a.wa.Close()
			a.wa = nil
		}
		return err
	}
	a.handler = a.buildHandler()
	port := a.server.ListenPort
	fail := func(err error) error {
		if a.wa != nil {
			a.wa.Close()
			a.wa = nil
		}
		return err
	}
	switch {
	case a.opts.ListenPort > 0:
		port = a.opts.ListenPort
	case a.opts.ListenPort < 0:
		port = 0
	}
	// The peers go onto the device before it binds the port (see
	// netstack.Config.Peers).
	dev, err := netstack.New(netstack.Config{PrivateKey: a.server.PrivateKey, ListenPort: port,
		Addr: a.server.TunnelAddr(), MTU: a.server.MTU, Bind: a.opts.Bind, Logger: a.log, Peers: a.activePeers(), Limits: a.connLimits()})
	if err != nil {
		return fail(err)
	}
	a.appliedGen, a.nextExpiry = a.reg.Generation(), a.earliestExpiry(a.opts.Now())
	ln, err := dev.Listen(netip.AddrPortFrom(a.server.TunnelAddr(), APIPort))
	if err != nil {
		dev.Close()
		return fail(err)
	}
	ctl, err := listenControl(a.opts.StateDir, a.handler, a.Sync, a.log)
	if err != nil {
		ln.Close()
		dev.Close()
		return fail(err)
	}
	a.ctlSrv = ctl
	a.dev = dev
	a.httpSrv = newHTTPServer(a.handler, a.log)
	a.done = make(chan struct{})
	go func() {
		if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("api server stopped", "err", err)
		}
	}()
	// Clients whose session died with the previous process get a
	// handshake now (see EndpointsFile).
	a.endpoints = &endpointSaver{dir: a.opts.StateDir, last: loadEndpoints(a.opts.StateDir)}
	if err := dev.Reach(a.endpoints.last); err != nil {
		a.log.Warn("reaching the peers of the last run failed", "err", err)
	}
	go a.reconcileLoop(a.done)
	if err := a.startWebhooks(bg, dev); err != nil { // webhooks: their failure stops no other service
		a.log.Error("webhooks not started", "err", err)
	}
	p, _ := dev.Port()
	a.log.Info("appliance up", "udp_port", p, "tunnel_addr", a.server.TunnelAddr(), "api", fmt.Sprintf("http://%s:%d", a.server.TunnelAddr(), APIPort), "peers", len(a.reg.List()), "version", Version())
	return nil
}

// Port is the UDP port the device listens on (0 before Start).
func (a *Appliance) Port() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dev == nil {
		return 0
	}
	p, _ := a.dev.Port()
	return p
}

// reconcileLoop applies peer changes (from the API, from another process via
// the generation counter, and expiries) to the device and cuts off the
// connections of peers that lost access.
func (a *Appliance) reconcileLoop(done chan struct{}) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	eps := time.NewTicker(endpointsEvery)
	defer eps.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		case <-a.nudge:
		case <-eps.C:
			a.saveEndpoints()
			continue
		}
		a.reconcile()
	}
}

// saveEndpoints keeps the live peers' endpoints for the next start.
func (a *Appliance) saveEndpoints() {
	a.mu.Lock()
	dev, s := a.dev, a.endpoints
	a.mu.Unlock()
	if dev == nil || s == nil {
		return
	}
	a.endpointsMu.Lock()
	defer a.endpointsMu.Unlock()
	if err := s.save(dev, time.Now()); err != nil {
		a.log.Warn("saving peer endpoints failed", "err", err)
	}
}

// earliestExpiry is the next time an active peer expires (zero: none).
func (a *Appliance) earliestExpiry(now time.Time) time.Time {
	var next time.Time
	for _, p := range a.reg.List() {
		if p.Active(now) && !p.ExpiresAt.IsZero() && (next.IsZero() || p.ExpiresAt.Before(next)) {
			next = p.ExpiresAt
		}
	}
	return next
}

func (a *Appliance) reconcile() {
	a.reconcileMu.Lock()
	defer a.reconcileMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.reg.Refresh(ctx); err != nil {
		a.log.Warn("peer refresh failed", "err", err)
		return
	}
	a.mu.Lock()
	dev := a.dev
	a.mu.Unlock()
	if dev == nil {
		return
	}
	// Only a new generation or a passed expiry can change the active set;
	// skip the walk over every peer otherwise (it matters at 10,000 peers).
	now := a.opts.Now()
	gen := a.reg.Generation()
	if gen == a.appliedGen && (a.nextExpiry.IsZero() || now.Before(a.nextExpiry)) {
		return
	}
	active := a.activePeers()
	gone, err := dev.Apply(active)
	if err != nil {
		a.log.Warn("applying peers failed", "err", err)
		return
	}
	a.appliedGen, a.nextExpiry = gen, a.earliestExpiry(now)
	if len(gone) > 0 {
		n := 0
		for _, p := range gone {
			n += dev.CloseConns(p.Addr)
			a.limits.Forget(p.PublicKey)
		}
		a.log.Info("peers changed", "active", len(active), "cut_off", len(gone), "closed_conns", n)
	}
}

// OpenConns is the number of API connections from the tunnel address addr
// that are open (0 before Start). It lets tests watch a revoked peer's
// connections being closed on the appliance's side.
func (a *Appliance) OpenConns(addr netip.Addr) int {
	a.mu.Lock()
	dev := a.dev
	a.mu.Unlock()
	if dev == nil {
		return 0
	}
	return dev.OpenConns(addr)
}

// RateBuckets is the number of per-key request rate buckets held; a key
// that leaves the device (removed, disabled, rotated away, expired) loses
// its bucket.
func (a *Appliance) RateBuckets() int { return a.limits.Len() }

// Close stops the API server, the WhatsApp clients and senders, the device
// and the database, in that order, within ShutdownTimeout. It is safe to
// call more than once.
func (a *Appliance) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	srv, dev, done, wa, cancel := a.httpSrv, a.dev, a.done, a.wa, a.cancel
	ctl, flushDone := a.ctlSrv, a.flushDone
	a.mu.Unlock()
	var errs []error
	if ctl != nil {
		ctl.Close()
		os.Remove(filepath.Join(a.opts.StateDir, ControlSocket))
	}
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		cancel()
	}
	if done != nil {
		close(done)
	}
	// No request is served any more: write the refusals counted so far.
	if cancel != nil && flushDone != nil {
		cancel()
		<-flushDone
	}
	if err := a.audit.Flush(context.Background()); err != nil {
		a.log.Error("audit refusal counts not written", "err", err)
	}
	if a.hooks != nil { // webhooks: attempts in flight are cut off, retried at the next start
		a.hooks.Close()
	}
	if wa != nil {
		errs = append(errs, wa.Close())
	}
	if a.sandbox != nil {
		a.sandbox.close()
	}
	if cancel != nil {
		cancel()
	}
	if dev != nil {
		a.saveEndpoints() // the sessions a restart should revive
		errs = append(errs, dev.Close())
	}
	errs = append(errs, a.db.Close())
	return errors.Join(errs...)
}

// bindMode binds the state dir to real or sandbox mode the first time it
// serves, and refuses the other mode afterwards, so simulated and real
// accounts never mix.
func bindMode(ctx context.Context, db *store.DB, sandbox bool) error {
	want := "real"
	if sandbox {
		want = "sandbox"
	}
	have, err := peers.Setting(ctx, db, "mode")
	if err != nil {
		return err
	}
	switch have {
	case "":
		return peers.SetSetting(ctx, db, "mode", want)
	case want:
		return nil
	}
	return fmt.Errorf("this state dir was first served in %s mode; refusing to serve it in %s mode (simulated and real WhatsApp accounts never mix — use another --state)", have, want)
}
