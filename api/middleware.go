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
	auditKey
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
	rid := newRequestID()
	h := w.Header()
	h["X-Request-Id"] = []string{rid} // canonical already
	setSecurityHeaders(h)             // browser guard (guard.go)

	// The request's values go into its context at once, with one
	// r.WithContext (each copies the request) per request.
	ctx := context.WithValue(r.Context(), requestIDKey, rid)
	p, err := s.identify(r)
	if p == nil {
		writeError(w, r.WithContext(ctx), s.log, err)
		return
	}
	ctx = context.WithValue(ctx, peerKey, p)
	if safeMethod(r.Method) {
		o.serve(w, r.WithContext(ctx), p, err)
		return
	}
	// Every mutating request of a known peer is audited, whatever the
	// answer (403, 404, 405, 413 and 429 included): one that reaches its
	// handler has its row committed before the handler runs (beginAudit),
	// or with its one write (auditInWrite);
	// its status is handed to the audit after the answer (finishAudit),
	// which writes it a moment later without holding the answer back: the
	// row committed first already shows the request, and a crash in
	// between leaves it at status 0, no outcome recorded. Refusals are
	// counted. The route is matched here, not in the per-route layer, so
	// that requests refused before routing (429) are named by it too.
	route, vars := matchRoute(o.next, r)
	ar := s.newAuditReq(r, p, rid, route, auditTarget(vars))
	r = r.WithContext(context.WithValue(ctx, auditKey, ar))
	bw := &bufferedResponse{header: w.Header(), rw: w}
	o.serve(bw, r, p, err)
	s.settleAudit(r, ar, bw)
	bw.sendTo(w)
	s.finishAudit(r, ar, bw.status())
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
	// The browser guard (guard.go): Host and cross-origin writes, before
	// the rate limit so that a refused page spends no budget.
	if err := s.guard(r); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	// The control socket is root's (0600 in the 0700 state dir), not a
	// peer's: it holds no rate bucket.
	if !isLocal(r) {
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
	}
	if err := s.limitBody(w, r, s.bodyLimit(o.next, r)); err != nil { // front door: body size and read deadline
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

// auditReq is the audit of one mutating request: its entry (without the
// status) and, once beginAudit committed its row, the row's id.
type auditReq struct {
	entry audit.Entry
	id    int64
	// inWrite is set for an auditInWrite route's request: the id of the
	// row its first write committed, once it has.
	inWrite func() (int64, bool)
}

// newAuditReq names a mutating request for the audit: route is the matched
// route's template, "" when none matched (404, 405: the raw path is kept).
func (s *server) newAuditReq(r *http.Request, p *peers.Peer, rid, route, target string) *auditReq {
	if route == "" {
		route = clip(r.URL.Path, 200)
	}
	return &auditReq{entry: audit.Entry{At: s.reg.Now(), Peer: p.Name, Method: clip(r.Method, 32), Route: printable(route),
		Target: printable(target), RequestID: rid}}
}

// errStorageUnavailable refuses a mutating request whose audit row could
// not be committed (disk full, a failing disk): nothing was done.
func errStorageUnavailable(err error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "storage_unavailable",
		Message: "the appliance cannot write its database (disk full?); nothing was done, retry later", Err: err}
}

// beginAudit commits the row of a mutating request before its handler
// runs, so no action goes unrecorded; when that fails the request is
// refused with 503 storage_unavailable and the handler never runs. Safe
// requests have no auditReq and pass.
func (s *server) beginAudit(r *http.Request) error {
	ar, _ := r.Context().Value(auditKey).(*auditReq)
	if ar == nil || s.audit == nil {
		return nil
	}
	id, err := s.audit.Begin(context.WithoutCancel(r.Context()), ar.entry)
	if err != nil {
		return errStorageUnavailable(err)
	}
	ar.id = id
	return nil
}

// auditInWrite returns r with its audit row made the FirstWrite of its
// context: the row commits in the transaction of the handler's first
// write, with the message it queues, so that both are durable or neither
// is and the answer waits for one commit instead of two. A handler that
// answers without writing has nothing to record with: settleAudit then
// counts a refusal, or commits the row before a success goes out (an
// idempotent replay).
func (s *server) auditInWrite(r *http.Request) *http.Request {
	ar, _ := r.Context().Value(auditKey).(*auditReq)
	if ar == nil || s.audit == nil {
		return r
	}
	ctx, committed := s.audit.BeginInWrite(r.Context(), ar.entry)
	ar.inWrite = committed
	return r.WithContext(ctx)
}

// settleAudit runs once the handler of an auditInWrite request has
// answered into bw and before the answer goes out: the row its write
// committed becomes the request's; a success that wrote nothing (a replay)
// has its row committed now, or is answered 503 when that fails; a
// refusal that wrote nothing is left to finishAudit to count.
func (s *server) settleAudit(r *http.Request, ar *auditReq, bw *bufferedResponse) {
	if ar.inWrite == nil || ar.id != 0 {
		return
	}
	if id, ok := ar.inWrite(); ok {
		ar.id = id
		return
	}
	if bw.status() >= 400 {
		return // nothing was written: a refusal, counted by finishAudit
	}
	if err := s.beginAudit(r); err != nil {
		bw.reset()
		writeError(bw, r, s.log, err)
	}
}

// finishAudit records the final status of a request whose handler ran
// (audit.Log.Finish writes it shortly after, without waiting), or counts a
// refusal that never reached a handler (rate limit, router, scope, a
// failed beginAudit). It runs after the answer was written: a failure is
// logged, the change it describes has happened, and its row shows the
// attempt.
func (s *server) finishAudit(r *http.Request, ar *auditReq, status int) {
	if s.audit == nil {
		return
	}
	e := ar.entry
	e.Status = status
	if ar.id == 0 {
		s.audit.Refused(e)
		return
	}
	if err := s.audit.Finish(context.WithoutCancel(r.Context()), ar.id, e); err != nil {
		s.log.Error("audit status not recorded", "request_id", e.RequestID, "status", status, "err", err)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// bufferedResponse holds a mutating request's response until its handler
// returns, so that a panic's 500 replaces a partial answer and the status
// is known for the audit (mutating responses are small JSON documents).
// Headers go straight to the real writer's map (they are not sent before
// WriteHeader there).
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

// wrap adds the per-route layer: the browser guard's body and name checks
// (guard.go), the scope check, then the audit row of a mutating request,
// then the handler.
func (s *server) wrap(rt route) http.Handler {
	h := rt.h
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := checkRoute(r, rt)
		switch p := PeerFrom(r.Context()); {
		case err != nil:
		case rt.scope != "" && !p.Has(rt.scope):
			err = errorf(http.StatusForbidden, "forbidden", "this peer lacks the %q scope", rt.scope)
		case rt.auditInWrite:
			err = h(w, s.auditInWrite(r))
		default:
			if err = s.beginAudit(r); err == nil {
				err = h(w, r)
			}
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
