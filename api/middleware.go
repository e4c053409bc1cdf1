package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"waappliance/audit"
	"waappliance/peers"
)

type ctxKey int

const (
	peerKey ctxKey = iota
	requestIDKey
	localPeerKey
)

// LocalRemoteAddr is the RemoteAddr of requests on the appliance's local
// control socket.
const LocalRemoteAddr = "@local"

// WithLocalPeer marks a connection's context as coming from the local
// control socket (a 0600 Unix socket in the 0700 state dir, for the CLI):
// its requests act as p. Only in-process code can set it; tunnel
// connections never carry it.
func WithLocalPeer(ctx context.Context, p *peers.Peer) context.Context {
	return context.WithValue(ctx, localPeerKey, p)
}

// handlerFunc is an API handler: it writes a success response or returns an
// error that writeError turns into the one JSON error shape.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// PeerFrom returns the peer that sent the request; handlers run only after
// identity middleware put it there.
func PeerFrom(ctx context.Context) *peers.Peer {
	p, _ := ctx.Value(peerKey).(*peers.Peer)
	return p
}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handle adapts a handlerFunc to http.Handler.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// outerHandler runs for every request, matched or not: panic recovery,
// request id, identity from the tunnel address, per-peer rate limit.
type outerHandler struct {
	s    *server
	next http.Handler
}

func (s *server) outer(next http.Handler) http.Handler { return &outerHandler{s, next} }

func (o *outerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := o.s
	ctx := context.WithValue(r.Context(), requestIDKey, newRequestID())
	r = r.WithContext(ctx)
	w.Header().Set("X-Request-Id", requestID(ctx))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			writeError(w, r, s.log, fmt.Errorf("panic: %v", v))
		}
	}()

	// Identity comes from the tunnel: WireGuard's cryptokey routing makes the
	// inner source address proof of the key. We still refuse any address
	// that is not an active peer's (defence in depth).
	p, ok := r.Context().Value(localPeerKey).(*peers.Peer)
	if !ok || r.RemoteAddr != LocalRemoteAddr {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			writeError(w, r, s.log, errorf(http.StatusForbidden, "unknown_peer", "request did not come from a known peer"))
			return
		}
		p, ok = s.reg.Lookup(ap.Addr())
		if !ok || !p.Active(s.reg.Now()) {
			writeError(w, r, s.log, errorf(http.StatusForbidden, "unknown_peer", "request did not come from an enabled peer"))
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), peerKey, p))

	d := s.limits.Allow(p.PublicKey, p.Rate, p.Burst)
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.Reset)))
	if !d.OK {
		h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(d.RetryAfter))))
		writeError(w, r, s.log, errorf(http.StatusTooManyRequests, "rate_limited", "rate limit of %g requests/s (burst %d) exceeded; retry later", p.Rate, p.Burst))
		return
	}
	o.next.ServeHTTP(w, r)
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// wrap adds the per-route layers: scope check and, for mutating routes, the
// durable audit record.
func (s *server) wrap(rt route) http.Handler {
	h := rt.h
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := PeerFrom(r.Context())
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		var err error
		if rt.scope != "" && !p.Has(rt.scope) {
			err = errorf(http.StatusForbidden, "forbidden", "this peer lacks the %q scope", rt.scope)
		} else {
			err = h(rec, r)
		}
		if err != nil {
			writeError(rec, r, s.log, err)
		}
		if rt.method != http.MethodGet && s.audit != nil {
			e := audit.Entry{At: s.reg.Now(), Peer: p.Name, Method: r.Method, Route: rt.path,
				Target: auditTarget(r), Status: rec.status, RequestID: requestID(r.Context())}
			if aerr := s.audit.Record(context.WithoutCancel(r.Context()), e); aerr != nil {
				s.log.Error("audit record failed", "request_id", e.RequestID, "err", aerr)
			}
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (SSE) flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// auditTarget names what a mutating request acted on.
func auditTarget(r *http.Request) string {
	for _, v := range []string{"name", "session", "phone"} {
		if t := pathVar(r, v); t != "" {
			return t
		}
	}
	return ""
}
