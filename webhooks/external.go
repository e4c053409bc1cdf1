package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenDestination is the dial error for an external webhook whose
// name resolved to an address that is not public.
var ErrForbiddenDestination = errors.New("webhooks: destination address is not public")

// nonPublic are ranges an external webhook may never reach, beyond what
// netip's predicates (loopback, private, link-local — cloud metadata
// 169.254.169.254 included — multicast, unspecified) already catch.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: would reach any IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds any IPv4
	netip.MustParsePrefix("2001::/32"),       // Teredo: embeds any IPv4
}

// publicAddr reports whether a is an address an external webhook may
// connect to.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// checkDial is the external dialer's Control: it runs on the address
// actually being connected, after name resolution, so a name that
// resolves (or rebinds) to a loopback, private, link-local or metadata
// address is refused at connect time, with nothing between check and use.
func checkDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrForbiddenDestination, address)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, ap.Addr())
	}
	return nil
}

// newExternalClient delivers https:// webhooks outside the tunnel: the
// host's resolver, every connected address checked (checkDial), the
// system's certificate roots, no proxy, no redirects.
func newExternalClient(timeout time.Duration) *httpClient {
	d := &net.Dialer{Timeout: timeout, Control: checkDial}
	t := &http.Transport{
		DialContext: d.DialContext,
		Proxy:       nil,
		// One request in flight per subscription and at most MaxPerPeer
		// subscriptions per peer: as many keep-alive connections per
		// receiver, so a burst reuses them instead of dialling (and
		// leaving in TIME_WAIT) a connection per delivery.
		MaxIdleConnsPerHost:   MaxPerPeer,
		MaxConnsPerHost:       MaxPerPeer,
		MaxIdleConns:          1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
	return &httpClient{t: t, c: &http.Client{
		Transport:     t,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// checkExternal accepts https://HOST[:port]/path for a peer allowed
// external webhooks: an IP literal must be public (a name is checked
// when it is dialled, on every connection).
func checkExternal(scheme, host string) error {
	if scheme != "https" {
		return fmt.Errorf("%w: outside the tunnel only https:// is delivered", ErrBadURL)
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if !publicAddr(a) {
			return fmt.Errorf("%w: %s is not a public address (loopback, private, link-local, metadata and reserved ranges are refused)", ErrBadURL, a)
		}
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%w: %s is loopback", ErrBadURL, host)
	}
	return nil
}
