// Package api is the HTTP API that lives only inside the tunnel: routing
// (gorilla/mux, confined to router.go), identity from the tunnel address,
// scopes, per-peer rate limits, body limits, the audit log, the one JSON
// error shape and the OpenAPI document.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"waappliance/audit"
	"waappliance/peers"
)

// AuditLog is the subset of *audit.Log the API uses; an interface so the
// handlers can be tested without a database.
type AuditLog interface {
	Begin(ctx context.Context, e audit.Entry) (int64, error)
	BeginInWrite(ctx context.Context, e audit.Entry) (context.Context, func() (int64, bool))
	Finish(ctx context.Context, id int64, e audit.Entry) error
	Refused(e audit.Entry)
	List(ctx context.Context, peer string, after int64, limit int) ([]audit.Entry, error)
}

// PeerStats is what the WireGuard device knows of a peer's traffic.
type PeerStats struct {
	LastHandshake time.Time
	RxBytes       int64
	TxBytes       int64
}

// Options wire the API. Registry and Limiters are required; a nil Audit
// disables auditing, nil Stats reports no traffic, nil Changed is a no-op,
// nil Logger discards.
type Options struct {
	Registry *peers.Registry
	Limiters *peers.Limiters
	Audit    AuditLog
	// Stats returns per-peer device statistics.
	Stats func() map[peers.Key]PeerStats
	// Changed is called after the API changed a peer, so the device applies
	// it at once rather than at the next poll.
	Changed func()
	// WhatsApp and Events serve the session, message and event routes; nil
	// answers them with 503.
	WhatsApp Engine
	Events   EventLog
	// Webhooks serves /v1/webhooks; nil answers them with 503.
	Webhooks Webhooks
	// Sandbox, when set, serves the /v1/sandbox routes and marks health and
	// whoami with "sandbox": true.
	Sandbox Sandbox
	Version string
	Logger  *slog.Logger
	// Now is the clock for the message budget; nil is time.Now.
	Now func() time.Time
	// PeerStreams caps each peer's concurrent event streams (a peer's own
	// max_streams overrides it) and Streams all of them; 0 means no cap.
	PeerStreams, Streams int
	// BodyTimeout bounds the reading of a request body, from the end of
	// its headers; 0 means DefaultBodyTimeout. An upload's deadline adds
	// to it (bodyDeadline).
	BodyTimeout time.Duration
	// Media serves /v1/media; nil answers them with 503.
	Media MediaStore
}

type server struct {
	reg     *peers.Registry
	limits  *peers.Limiters
	audit   AuditLog
	stats   func() map[peers.Key]PeerStats
	changed func()
	version string
	sandbox bool
	sb      Sandbox
	wa      Engine
	ev      EventLog
	hooks   Webhooks
	log     *slog.Logger

	sendLimits  *sendBudget
	shutdowns   shutdowns
	origins     originGuard
	streams     streamCaps
	bodyTimeout time.Duration
	// bodyLimits are the raised body limits (route.maxBody) by "METHOD
	// path template"; router fills it.
	bodyLimits map[string]int64
	media      MediaStore
	// sandboxSends takes a sandbox contact's sends one at a time (each
	// holds its inline media several times over: sandboxMaxBody).
	sandboxSends chan struct{}
}

// New returns the API handler. Identity is taken from r.RemoteAddr, which
// must be the tunnel source address of the request.
func New(o Options) http.Handler {
	s := &server{reg: o.Registry, limits: o.Limiters, audit: o.Audit, stats: o.Stats,
		changed: o.Changed, version: o.Version, sandbox: o.Sandbox != nil, sb: o.Sandbox, wa: o.WhatsApp, ev: o.Events, hooks: o.Webhooks,
		log: o.Logger, sendLimits: newSendBudget(o.Now), sandboxSends: make(chan struct{}, 1),
		streams: streamCaps{perPeer: o.PeerStreams, total: o.Streams}, bodyTimeout: o.BodyTimeout, media: o.Media}
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = DefaultBodyTimeout
	}
	if s.stats == nil {
		s.stats = func() map[peers.Key]PeerStats { return nil }
	}
	if s.changed == nil {
		s.changed = func() {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.limits == nil {
		s.limits = peers.NewLimiters(nil)
	}
	return s.router()
}

// shutdowns tells long-lived handlers (the SSE stream) that the
// *http.Server serving them began Shutdown. Shutdown does not cancel
// request contexts; without this a connected stream held it until its
// timeout.
type shutdowns struct {
	mu sync.Mutex
	m  map[*http.Server]chan struct{}
}

// of returns a channel closed when r's server starts shutting down (nil,
// never closed, when r was not served by an *http.Server).
func (sd *shutdowns) of(r *http.Request) <-chan struct{} {
	hs, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if hs == nil {
		return nil
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if ch, ok := sd.m[hs]; ok {
		return ch
	}
	if sd.m == nil {
		sd.m = map[*http.Server]chan struct{}{}
	}
	ch := make(chan struct{})
	sd.m[hs] = ch
	hs.RegisterOnShutdown(func() { close(ch) })
	return ch
}
