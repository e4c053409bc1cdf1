package api

import (
	"bytes"
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
// request id, identity from the tunnel address, the audit of mutating
// requests, per-peer rate limit.
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

	p, err := s.identify(r)
	if p == nil {
		writeError(w, r, s.log, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), peerKey, p))
	if safeMethod(r.Method) {
		o.serve(w, r, p, err)
		return
	}
	// Every mutating request of a known peer is audited, whatever the
	// answer (403, 404, 405, 413 and 429 included), and the audit row is
	// committed before the client sees a byte: the response waits in a
	// buffer meanwhile. Mutating responses are small JSON documents.
	// The route is matched here, not in the per-route layer, so that
	// requests refused before routing (429) are named by it too.
	route, vars := matchRoute(o.next, r)
	bw := &bufferedResponse{header: w.Header(), rw: w}
	o.serve(bw, r, p, err)
	s.record(r, p, route, auditTarget(vars), bw.status())
	bw.sendTo(w)
}

// identify maps the tunnel source address to a peer. Identity comes from
// the tunnel: WireGuard's cryptokey routing makes the inner source address
// proof of the key. We still refuse any address that is not an active
// peer's (defence in depth). A known but inactive peer is returned with the
// refusal, so its mutating attempts are audited; nil means unknown.
func (s *server) identify(r *http.Request) (*peers.Peer, error) {
	if p, ok := r.Context().Value(localPeerKey).(*peers.Peer); ok && r.RemoteAddr == LocalRemoteAddr {
		return p, nil
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil, errorf(http.StatusForbidden, "unknown_peer", "request did not come from a known peer")
	}
	p, ok := s.reg.Lookup(ap.Addr())
	if !ok {
		return nil, errorf(http.StatusForbidden, "unknown_peer", "request did not come from an enabled peer")
	}
	if !p.Active(s.reg.Now()) {
		return p, errorf(http.StatusForbidden, "unknown_peer", "request did not come from an enabled peer")
	}
	return p, nil
}

// serve answers refused (identify's refusal, if any), applies the rate
// limit and runs the router, turning a panic into a 500.
func (o *outerHandler) serve(w http.ResponseWriter, r *http.Request, p *peers.Peer, refused error) {
	s := o.s
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			if bw, ok := w.(*bufferedResponse); ok {
				bw.reset()
			}
			writeError(w, r, s.log, fmt.Errorf("panic: %v", v))
		}
	}()
	if refused != nil {
		writeError(w, r, s.log, refused)
		return
	}
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
	if err := s.limitBody(w, r); err != nil { // front door: body size and read deadline
		writeError(w, r, s.log, err)
		return
	}
	o.next.ServeHTTP(w, r)
}

// ceilSeconds rounds d up to whole seconds, for Retry-After and
// RateLimit-Reset.
func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// safeMethod reports whether method never changes anything (RFC 9110
// 9.2.1); every other method is audited.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// record commits the audit row of a mutating request: route is the matched
// route's template, "" when none matched (404, 405: the raw path is kept).
// A failure is logged and the response still goes out: the change it
// describes has happened.
func (s *server) record(r *http.Request, p *peers.Peer, route, target string, status int) {
	if s.audit == nil {
		return
	}
	if route == "" {
		route = clip(r.URL.Path, 200)
	}
	e := audit.Entry{At: s.reg.Now(), Peer: p.Name, Method: clip(r.Method, 32), Route: route,
		Target: target, Status: status, RequestID: requestID(r.Context())}
	if err := s.audit.Record(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("audit record failed", "request_id", e.RequestID, "err", err)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// bufferedResponse holds a mutating request's response until its audit
// row is committed. Headers go straight to the real writer's map (they are
// not sent before WriteHeader there).
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
	rw     http.ResponseWriter // the real writer, for http.ResponseController
}

func (b *bufferedResponse) Header() http.Header { return b.header }

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (b *bufferedResponse) Unwrap() http.ResponseWriter { return b.rw }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 && code >= 200 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

// reset drops what was written, so a panic's 500 replaces a partial answer.
func (b *bufferedResponse) reset() {
	b.code = 0
	b.body.Reset()
}

func (b *bufferedResponse) sendTo(w http.ResponseWriter) {
	w.WriteHeader(b.status())
	w.Write(b.body.Bytes())
}

// wrap adds the per-route layer: the scope check.
func (s *server) wrap(rt route) http.Handler {
	h := rt.h
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if p := PeerFrom(r.Context()); rt.scope != "" && !p.Has(rt.scope) {
			err = errorf(http.StatusForbidden, "forbidden", "this peer lacks the %q scope", rt.scope)
		} else {
			err = h(w, r)
		}
		if err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// auditTarget names what a mutating request acted on, from its route
// variables.
func auditTarget(vars map[string]string) string {
	for _, v := range []string{"name", "session", "phone"} {
		if t := vars[v]; t != "" {
			return t
		}
	}
	return ""
}
