// Package api is the HTTP API that lives only inside the tunnel: routing
// (gorilla/mux, confined to router.go), identity from the tunnel address,
// scopes, per-peer rate limits, body limits, the audit log, the one JSON
// error shape and the OpenAPI document.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"waappliance/audit"
	"waappliance/peers"
)

// AuditLog is the subset of *audit.Log the API uses; an interface so the
// handlers can be tested without a database.
type AuditLog interface {
	Record(ctx context.Context, e audit.Entry) error
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
	// Sandbox, when set, serves the /v1/sandbox routes and marks health and
	// whoami with "sandbox": true.
	Sandbox Sandbox
	Version string
	Logger  *slog.Logger
	// Now is the clock for the message budget; nil is time.Now.
	Now func() time.Time
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
	log     *slog.Logger

	sendLimits *peers.Limiters
}

// New returns the API handler. Identity is taken from r.RemoteAddr, which
// must be the tunnel source address of the request.
func New(o Options) http.Handler {
	s := &server{reg: o.Registry, limits: o.Limiters, audit: o.Audit, stats: o.Stats,
		changed: o.Changed, version: o.Version, sandbox: o.Sandbox != nil, sb: o.Sandbox, wa: o.WhatsApp, ev: o.Events,
		log: o.Logger, sendLimits: peers.NewLimiters(o.Now)}
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
