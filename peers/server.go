package peers

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"waappliance/store"
)

// Defaults for InitOptions' zero values.
const (
	DefaultListenPort = 51820
	DefaultMTU        = 1420
	DefaultRate       = 20
	DefaultBurst      = 40
	// DefaultSendPerMinute is a peer's WhatsApp message budget when none is given.
	DefaultSendPerMinute = 60
)

// DefaultSubnet is the tunnel subnet when none is given.
var DefaultSubnet = netip.MustParsePrefix("10.77.0.0/24")

// Server is the appliance's own WireGuard identity and tunnel settings.
type Server struct {
	PrivateKey Key
	ListenPort int
	// Subnet is the tunnel subnet; the appliance takes its first host address.
	Subnet netip.Prefix
	MTU    int
	// Endpoint is the HOST:PORT clients dial; empty until set with init --endpoint.
	Endpoint string
	// DefaultRate and DefaultBurst apply to peers added without their own.
	DefaultRate  float64
	DefaultBurst int
	// APIHosts are the names (host names or IP literals, lowercase, no
	// ports) besides the tunnel address under which the API answers: the
	// Host header a request must carry (DNS rebinding). Empty: the tunnel
	// address only. Shared by snapshots: never modify it in place.
	APIHosts []string
}

// TunnelAddr is the appliance's address inside the tunnel: the subnet's first host.
func (s *Server) TunnelAddr() netip.Addr { return s.Subnet.Masked().Addr().Next() }

// PublicKey is the appliance's WireGuard public key.
func (s *Server) PublicKey() Key { return s.PrivateKey.Public() }

// Validate checks the settings and fills zero values with defaults (a zero
// ListenPort, MTU, DefaultRate or DefaultBurst means the default; the
// command line refuses an explicit 0 before it gets here).
func (s *Server) Validate() error {
	if s.ListenPort == 0 {
		s.ListenPort = DefaultListenPort
	}
	if s.MTU == 0 {
		s.MTU = DefaultMTU
	}
	if !s.Subnet.IsValid() {
		s.Subnet = DefaultSubnet
	}
	if s.DefaultRate == 0 {
		s.DefaultRate = DefaultRate
	}
	if s.DefaultBurst == 0 {
		s.DefaultBurst = DefaultBurst
	}
	switch {
	case s.ListenPort < 1 || s.ListenPort > 65535:
		return fmt.Errorf("listen port %d out of range 1-65535", s.ListenPort)
	case s.MTU < 1280 || s.MTU > 9000:
		return fmt.Errorf("mtu %d out of range 1280-9000", s.MTU)
	case !s.Subnet.Addr().Is4():
		return fmt.Errorf("subnet %s: only IPv4 subnets are supported", s.Subnet)
	case s.Subnet.Bits() > 30 || s.Subnet.Bits() < 8:
		return fmt.Errorf("subnet %s: prefix length must be between /8 and /30", s.Subnet)
	}
	if err := ValidateLimit(s.DefaultRate, s.DefaultBurst); err != nil {
		return err
	}
	s.Subnet = s.Subnet.Masked()
	hosts, err := NormalizeAPIHosts(s.APIHosts)
	if err != nil {
		return err
	}
	s.APIHosts = hosts
	if s.Endpoint != "" {
		if _, err := ParseEndpoint(s.Endpoint); err != nil {
			return err
		}
	}
	return nil
}

// ParseEndpoint checks a HOST:PORT endpoint as wg-quick and the WireGuard
// apps read it: a host name, an IPv4 address or a bracketed IPv6 address,
// and a port from 1 to 65535.
func ParseEndpoint(ep string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("endpoint %q: %s; want HOST:PORT such as vpn.example.com:51820, 203.0.113.7:51820 or [2001:db8::1]:51820", ep, why)
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", bad("not HOST:PORT")
	}
	if p, err := strconv.Atoi(port); err != nil || !allDigits(port) || p < 1 || p > 65535 {
		return "", bad("port must be a number from 1 to 65535")
	}
	switch a, err := netip.ParseAddr(host); {
	case host == "":
		return "", bad("no host")
	case strings.Contains(host, ":"):
		if err != nil || !a.Is6() || !strings.HasPrefix(ep, "[") {
			return "", bad("bad IPv6 address")
		}
	case err == nil:
	case !validHostname(host):
		return "", bad("bad host name or IPv4 address")
	}
	return ep, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// validHostname accepts DNS names: labels of letters, digits, '-' and '_'
// (not at a label's ends), at most 63 characters each and 253 in all, with
// an optional final dot; the last label is not all digits (that would be a
// malformed IPv4 address).
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return !allDigits(labels[len(labels)-1])
}

// MaxAPIHosts is how many API host names the operator may set.
const MaxAPIHosts = 32

// ParseAPIHosts reads a comma separated list of API host names, as the
// command line takes it ("" is the empty list), and normalizes it.
func ParseAPIHosts(list string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return NormalizeAPIHosts(names)
}

// NormalizeAPIHosts checks API host names and returns them lowercase,
// without a trailing dot, IP literals in canonical form, duplicates
// dropped. A name is a DNS host name or an IP literal (IPv6 with or without
// brackets); ports, zones and wildcards are refused with ErrBadAPIHost.
func NormalizeAPIHosts(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		h, err := normalizeAPIHost(n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	if len(out) > MaxAPIHosts {
		return nil, fmt.Errorf("%w: %d names, at most %d", ErrBadAPIHost, len(out), MaxAPIHosts)
	}
	return out, nil
}

func normalizeAPIHost(n string) (string, error) {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadAPIHost, n, why) }
	h := n
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", bad("an IPv6 zone is not allowed")
		}
		return a.Unmap().String(), nil
	}
	switch {
	case h == "":
		return "", bad("empty name")
	case strings.Contains(h, "*"):
		return "", bad("wildcards are not allowed; list each name")
	case strings.Contains(h, ":"):
		return "", bad("want a host name or IP address without a port")
	case !validHostname(h):
		return "", bad("want a host name or IP address")
	}
	return strings.ToLower(strings.TrimSuffix(h, ".")), nil
}

var serverKeys = []string{"private_key", "listen_port", "subnet", "mtu", "endpoint", "default_rate", "default_burst", "api_hosts"}

// InitServer stores a new server identity. It fails with
// ErrAlreadyInitialized when one exists.
func InitServer(ctx context.Context, db *store.DB, s Server) (Server, error) {
	if err := s.Validate(); err != nil {
		return s, err
	}
	if s.PrivateKey.IsZero() {
		k, err := GeneratePrivateKey()
		if err != nil {
			return s, err
		}
		s.PrivateKey = k
	}
	err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		set := store.SettingsOf(tx)
		if _, ok, err := set.Get(ctx, "private_key"); err != nil {
			return err
		} else if ok {
			return ErrAlreadyInitialized
		}
		vals := map[string]string{
			"private_key":   s.PrivateKey.String(),
			"listen_port":   strconv.Itoa(s.ListenPort),
			"subnet":        s.Subnet.String(),
			"mtu":           strconv.Itoa(s.MTU),
			"endpoint":      s.Endpoint,
			"default_rate":  strconv.FormatFloat(s.DefaultRate, 'g', -1, 64),
			"default_burst": strconv.Itoa(s.DefaultBurst),
			"api_hosts":     strings.Join(s.APIHosts, ","),
		}
		for _, k := range serverKeys {
			if err := set.Set(ctx, k, vals[k]); err != nil {
				return err
			}
		}
		return nil
	})
	return s, err
}

// LoadServer reads the server identity; ErrNotInitialized when init has not run.
func LoadServer(ctx context.Context, db *store.DB) (Server, error) {
	return loadServer(ctx, db)
}

// loadServer reads the server identity as q (a *store.DB, or the tx of a
// read or write transaction) sees it.
func loadServer(ctx context.Context, q store.Querier) (Server, error) {
	var s Server
	vals, err := store.SettingsOf(q).All(ctx)
	if err != nil {
		return s, fmt.Errorf("peers.LoadServer: %w", err)
	}
	if vals["private_key"] == "" {
		return s, ErrNotInitialized
	}
	if s.PrivateKey, err = ParseKey(vals["private_key"]); err != nil {
		return s, fmt.Errorf("peers.LoadServer: private key: %w", err)
	}
	s.ListenPort, _ = strconv.Atoi(vals["listen_port"])
	s.MTU, _ = strconv.Atoi(vals["mtu"])
	if s.Subnet, err = netip.ParsePrefix(vals["subnet"]); err != nil {
		return s, fmt.Errorf("peers.LoadServer: subnet: %w", err)
	}
	s.Endpoint = vals["endpoint"]
	s.DefaultRate, _ = strconv.ParseFloat(vals["default_rate"], 64)
	s.DefaultBurst, _ = strconv.Atoi(vals["default_burst"])
	if v := vals["api_hosts"]; v != "" {
		s.APIHosts = strings.Split(v, ",")
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("peers.LoadServer: %w", err)
	}
	return s, nil
}

// ServerChange is what may change in an initialized state; nil fields stay
// as they are. The subnet and the MTU are fixed at init: every peer's
// address and every config handed out depend on them.
type ServerChange struct {
	Endpoint     *string
	ListenPort   *int
	DefaultRate  *float64
	DefaultBurst *int
	// APIHosts replaces the API host names (an empty list clears them).
	APIHosts *[]string
}

// UpdateServer applies ch to the stored settings in one write transaction
// and returns the result. It bumps the peers generation, so a serving
// appliance uses the new endpoint, default limits and API host names
// within a poll; a new listen port takes effect at its next start.
func UpdateServer(ctx context.Context, db *store.DB, ch ServerChange) (Server, error) {
	var s Server
	err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if s, err = loadServer(ctx, tx); err != nil {
			return err
		}
		if ch.Endpoint != nil {
			s.Endpoint = *ch.Endpoint
		}
		if ch.ListenPort != nil {
			s.ListenPort = *ch.ListenPort
		}
		if ch.DefaultRate != nil {
			s.DefaultRate = *ch.DefaultRate
		}
		if ch.DefaultBurst != nil {
			s.DefaultBurst = *ch.DefaultBurst
		}
		if ch.APIHosts != nil {
			s.APIHosts = *ch.APIHosts
		}
		if err := s.Validate(); err != nil {
			return err
		}
		vals := map[string]string{
			"listen_port":   strconv.Itoa(s.ListenPort),
			"endpoint":      s.Endpoint,
			"default_rate":  strconv.FormatFloat(s.DefaultRate, 'g', -1, 64),
			"default_burst": strconv.Itoa(s.DefaultBurst),
			"api_hosts":     strings.Join(s.APIHosts, ","),
		}
		set := store.SettingsOf(tx)
		for k, v := range vals {
			if err := set.Set(ctx, k, v); err != nil {
				return err
			}
		}
		return bumpGeneration(ctx, tx)
	})
	if err != nil {
		return s, err
	}
	notifyChanged(ctx, db)
	return s, nil
}

// SetSetting writes one settings value (app stores the mode with it), in a
// write transaction like every write (store.DB.WriteTx).
func SetSetting(ctx context.Context, db *store.DB, key, value string) error {
	return db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return store.SettingsOf(tx).Set(ctx, key, value)
	})
}

// Setting reads one settings value; "" when unset.
func Setting(ctx context.Context, db *store.DB, key string) (string, error) {
	v, _, err := db.Settings().Get(ctx, key)
	return v, err
}
