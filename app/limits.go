package app

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"waappliance/api"
	"waappliance/netstack"
	"waappliance/peers"
)

// Limits bound what peers may hold open at once, so one peer cannot
// exhaust the appliance. PeerConns and PeerStreams are the defaults of
// peers without their own max_conns and max_streams; Conns and Streams cap
// all peers together. Zero values take the Default* constants below.
type Limits struct {
	PeerConns, Conns     int
	PeerStreams, Streams int
	// BodyTimeout bounds reading a request body (0: api.DefaultBodyTimeout).
	BodyTimeout time.Duration
}

// The default limits fit a Raspberry Pi with the unit's MemoryMax=256M:
// see README ("Resource bounds") for what they cost.
const (
	DefaultPeerConns   = 32
	DefaultConns       = 1024
	DefaultPeerStreams = 4
	DefaultStreams     = 256
)

// HTTP server bounds: headers must arrive within ReadHeaderTimeout and fit
// MaxHeaderBytes (the API's requests have a few short headers); an idle
// keep-alive connection is closed after IdleTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PeerConns, DefaultPeerConns)
	def(&l.Conns, DefaultConns)
	def(&l.PeerStreams, DefaultPeerStreams)
	def(&l.Streams, DefaultStreams)
	return l
}

// connLimits are the API listener's connection caps: a peer's own
// max_conns, else the default, looked up in the registry's snapshot on
// every accept; refusals are answered with the API's JSON 429 and logged
// in aggregate.
func (a *Appliance) connLimits() netstack.ConnLimits {
	def := a.opts.Limits.PeerConns
	rl := &refusalLog{log: a.log, now: a.opts.Now, reg: a.reg}
	return netstack.ConnLimits{
		PerPeer: func(addr netip.Addr) int {
			if p, ok := a.reg.Lookup(addr); ok && p.MaxConns > 0 {
				return p.MaxConns
			}
			return def
		},
		Total:   a.opts.Limits.Conns,
		Refuse:  func(c net.Conn, r netstack.Refusal) { api.RefuseConn(c, r.Total, r.Limit) },
		Refused: rl.note,
	}
}

// refusalInterval is how often the log says, per peer, how many of its
// connections were refused.
const refusalInterval = time.Minute

// refusalLog logs refused connections per peer address: the first at once,
// then at most one line per refusalInterval with the count since, so a
// flood shows in the log without becoming one. (Refused connections never
// reach the API, so the audit does not see them.)
type refusalLog struct {
	log *slog.Logger
	now func() time.Time
	reg interface {
		Lookup(netip.Addr) (*peers.Peer, bool)
	}

	mu sync.Mutex
	m  map[netip.Addr]*refusalCount
}

type refusalCount struct {
	last time.Time // of the last line
	n    int       // refused since
}

func (l *refusalLog) note(r netstack.Refusal) {
	now := l.now()
	l.mu.Lock()
	if l.m == nil {
		l.m = map[netip.Addr]*refusalCount{}
	}
	c := l.m[r.Addr]
	if c == nil {
		c = &refusalCount{}
		l.m[r.Addr] = c
	}
	c.n++
	if !c.last.IsZero() && now.Sub(c.last) < refusalInterval {
		l.mu.Unlock()
		return
	}
	n := c.n
	c.last, c.n = now, 0
	l.mu.Unlock()
	name := ""
	if p, ok := l.reg.Lookup(r.Addr); ok {
		name = p.Name
	}
	which := "peer"
	if r.Total {
		which = "total"
	}
	l.log.Warn("connections refused over the connection cap (count since the last such line; at most one a minute per peer)", "peer", name, "addr", r.Addr, "cap", which, "limit", r.Limit, "refused", n)
}

// newHTTPServer is the API's server inside the tunnel, with the header,
// size and idle bounds above (bodies are bounded per request by the API).
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	var nc newConns
	srv := &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout,
		MaxHeaderBytes: MaxHeaderBytes, ConnState: nc.track, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	srv.RegisterOnShutdown(nc.closeAll)
	return srv
}

// newConns are the connections that have not yet sent a request.
// http.Server.Shutdown counts them as busy for their first 5 seconds, so a
// peer holding idle new connections (up to its cap) made every shutdown
// wait its whole timeout; closing them at Shutdown loses no request (none
// was read).
type newConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (n *newConns) track(c net.Conn, st http.ConnState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st == http.StateNew {
		if n.m == nil {
			n.m = map[net.Conn]struct{}{}
		}
		n.m[c] = struct{}{}
		return
	}
	delete(n.m, c)
}

func (n *newConns) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.m {
		c.Close()
	}
}
