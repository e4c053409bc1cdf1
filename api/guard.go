package api

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"waappliance/peers"
)

// The browser guard. Identity is the tunnel source address, so a browser
// on a peer's machine acts as that peer for any page it shows: a page can
// send "simple" cross-origin requests (no preflight) and, by DNS
// rebinding, read answers under its own name. The guard refuses what only
// such a page would send:
//
//   - a Host that is not the appliance's: 421 misdirected_request (DNS
//     rebinding), before the rate limit and any handler;
//   - a cross-origin write (http.CrossOriginProtection): 403 cross_origin;
//   - a body whose media type the route does not declare (text/plain and
//     form bodies need no preflight): 415 unsupported_media_type.
//
// No Access-Control-* header is ever sent, so a preflight always fails.
// Every answer carries securityHeaders. curl, SDKs and the CLI send none
// of Origin and Sec-Fetch-Site and are unaffected.

// securityHeaders go on every answer the API writes (errors, 404s and
// 421s included): nothing here is meant to be rendered, framed, sniffed,
// cached or read by another origin.
//
// The value slices are shared by every answer (len == cap, so a handler's
// Header.Add copies instead of appending in place, and Set replaces them):
// six allocations a request fewer.
var securityHeaders = [...]struct {
	k string
	v []string
}{
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
	{"Referrer-Policy", []string{"no-referrer"}},
	{"Cross-Origin-Resource-Policy", []string{"same-origin"}},
	{"Cache-Control", []string{"no-store"}},
}

func setSecurityHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h[kv.k] = kv.v[:1:1]
	}
}

var errMisdirected = errorf(http.StatusMisdirectedRequest, "misdirected_request",
	"this appliance does not answer to that Host; use its tunnel address or a name set with 'waappliance set --api-host'")

// guard refuses a request whose Host is not the appliance's or that is a
// cross-origin write. Requests on the local control socket (a 0600 Unix
// socket, not a browser's reach) are exempt from the Host check.
func (s *server) guard(r *http.Request) error {
	srv := s.reg.Server()
	if !isLocal(r) && !allowedHost(r.Host, srv) {
		return errMisdirected
	}
	if err := s.origins.of(srv).Check(r); err != nil {
		return &apiError{Status: http.StatusForbidden, Code: "cross_origin",
			Message: "cross-origin requests that change something are refused: a web page cannot act as this peer", Err: err}
	}
	return nil
}

func isLocal(r *http.Request) bool {
	_, ok := r.Context().Value(localPeerKey).(*peers.Peer)
	return ok && r.RemoteAddr == LocalRemoteAddr
}

// allowedHost reports whether the Host header names the appliance: its
// tunnel address or one of the operator's API host names, compared
// case-insensitively with one trailing dot ignored. A port is not part of
// the check (DNS rebinding changes the name, not the port), but it must be
// a number.
func allowedHost(hostport string, srv peers.Server) bool {
	name := hostport
	if !strings.Contains(hostport, ":") {
		// A bare name or IPv4 address (what clients send for port 80):
		// no SplitHostPort, whose error for it allocates.
	} else if h, port, err := net.SplitHostPort(hostport); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		name = h
	} else if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1]
	}
	name = strings.TrimSuffix(name, ".")
	if a, err := netip.ParseAddr(name); err == nil {
		return a.Zone() == "" && (a.Unmap() == srv.TunnelAddr() || slices.Contains(srv.APIHosts, a.Unmap().String()))
	}
	return name != "" && slices.ContainsFunc(srv.APIHosts, func(h string) bool { return strings.EqualFold(h, name) })
}

// originGuard holds the http.CrossOriginProtection for the current set of
// appliance names, rebuilt when the operator changes them. The protection
// compares Origin with Host itself; the appliance's own names are also its
// trusted origins, so "Origin: http://10.77.0.1" passes with "Host:
// 10.77.0.1:80" too.
type originGuard struct {
	cur atomic.Pointer[originsFor]
}

type originsFor struct {
	tunnel netip.Addr
	hosts  []string
	cop    *http.CrossOriginProtection
}

func (g *originGuard) of(srv peers.Server) *http.CrossOriginProtection {
	if c := g.cur.Load(); c != nil && c.tunnel == srv.TunnelAddr() && slices.Equal(c.hosts, srv.APIHosts) {
		return c.cop
	}
	cop := http.NewCrossOriginProtection()
	for _, h := range append([]string{srv.TunnelAddr().String()}, srv.APIHosts...) {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		cop.AddTrustedOrigin("http://" + h) // names are validated: never fails
	}
	g.cur.Store(&originsFor{tunnel: srv.TunnelAddr(), hosts: srv.APIHosts, cop: cop})
	return cop
}

// jsonBody is the request media type of every route that reads a body
// today; routes declare theirs in route.body.
var jsonBody = []string{"application/json"}

// checkBody refuses a request body whose Content-Type is not one the
// route declares (415). A request without a body passes whatever its
// headers say, so a bodyless POST (login, logout, rotate) works as it is.
// A route that reads no body (nil) takes only JSON: a client may send
// "{}", but a text/plain or form body, which a page can send without a
// preflight, is refused.
func checkBody(r *http.Request, accepts []string) error {
	if r.ContentLength == 0 {
		return nil
	}
	if accepts == nil {
		accepts = jsonBody
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && slices.Contains(accepts, mt) {
		if cs, ok := params["charset"]; mt != "application/json" || !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
		"a request body needs Content-Type: %s", strings.Join(accepts, " or "))
}

// checkRoute is the per-route part of the guard, run before the scope
// check: the body's media type and the path variables (names and ids never
// carry control characters or invalid UTF-8).
func checkRoute(r *http.Request, rt route) error {
	if err := checkBody(r, rt.body); err != nil {
		return err
	}
	for k, v := range pathVars(r) {
		if err := cleanName(k, v); err != nil {
			return err
		}
	}
	return nil
}
