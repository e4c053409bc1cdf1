// Package netstack runs the appliance's only listener: a userspace
// wireguard-go device whose packets go to a gVisor TCP/IP stack in this
// process. Nothing here opens a host socket except the WireGuard UDP port.
//
// Peers are applied incrementally through wireguard-go's UAPI (never
// replace_peers in normal operation), so adding or removing one peer never
// disturbs the others' sessions.
package netstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"waappliance/peers"
)

// Config configures a Device. Zero values: ListenPort 0 picks a free port,
// MTU 0 means 1420, Bind nil means wireguard-go's default UDP bind, Logger
// nil discards.
type Config struct {
	PrivateKey peers.Key
	ListenPort int
	// Addr is the appliance's own address inside the tunnel.
	Addr   netip.Addr
	MTU    int
	Bind   conn.Bind
	Logger *slog.Logger
	// Peers are on the device before its UDP port is bound, so a client's
	// handshake that arrives first thing (a restart under a connected
	// client) is answered, not dropped into a 5 s retry. nil: none yet.
	Peers []PeerConfig
	// Limits cap the connections Listen accepts (zero: no caps).
	Limits ConnLimits
}

// PeerConfig is what the device needs to know of one peer.
type PeerConfig struct {
	PublicKey    peers.Key
	PresharedKey peers.Key
	Addr         netip.Addr
}

// Device is a running userspace WireGuard device with its netstack.
type Device struct {
	dev  *device.Device
	bind conn.Bind // as the device has it (wrapBind)
	tnet *netTun
	log  *slog.Logger

	mu      sync.Mutex
	applied map[peers.Key]PeerConfig
	closed  bool

	conns  *tracker
	limits ConnLimits
}

// New creates the device, configures its key, port and cfg.Peers, and only
// then brings it up (binds the UDP port).
func New(cfg Config) (*Device, error) {
	if cfg.MTU == 0 {
		cfg.MTU = peers.DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.Addr.IsValid() {
		return nil, errors.New("netstack: no tunnel address")
	}
	if cfg.Bind == nil {
		cfg.Bind = conn.NewDefaultBind()
	}
	tdev, err := newNetTun(cfg.Addr, cfg.MTU)
	if err != nil {
		return nil, err
	}
	bind := wrapBind(cfg.Bind)
	dev := device.NewDevice(tdev, bind, deviceLogger(cfg.Logger))
	d := &Device{dev: dev, bind: bind, tnet: tdev, log: cfg.Logger, applied: map[peers.Key]PeerConfig{}, conns: newTracker(), limits: cfg.Limits}
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=%d\n", cfg.PrivateKey.Hex(), cfg.ListenPort)
	if err := dev.IpcSet(uapi); err != nil {
		d.closeDevice()
		return nil, fmt.Errorf("netstack: configure device: %w", err)
	}
	// A device that is down binds nothing (wireguard-go's BindUpdate
	// returns early), so the peers are there before the first packet.
	if _, err := d.Apply(cfg.Peers); err != nil {
		d.closeDevice()
		return nil, err
	}
	if err := dev.Up(); err != nil {
		d.closeDevice()
		return nil, fmt.Errorf("netstack: up (is UDP port %d free?): %w", cfg.ListenPort, err)
	}
	return d, nil
}

func deviceLogger(l *slog.Logger) *device.Logger {
	l = l.With("component", "wireguard")
	return &device.Logger{
		Verbosef: func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { l.Warn(fmt.Sprintf(format, args...)) },
	}
}

// Port returns the UDP port the device listens on.
func (d *Device) Port() (int, error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("netstack: no listen_port in device state")
}

// Apply makes the device's peer set equal to want, touching only the peers
// that differ. It returns the previous config of every key taken off the
// device (removed, disabled, rotated away) or moved to another address, so
// the caller can close the connections from those addresses and forget
// what it keeps per key.
func (d *Device) Apply(want []PeerConfig) (gone []PeerConfig, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, net.ErrClosed
	}
	wantByKey := make(map[peers.Key]PeerConfig, len(want))
	for _, p := range want {
		wantByKey[p.PublicKey] = p
	}
	var b strings.Builder
	for k, old := range d.applied {
		if _, ok := wantByKey[k]; !ok {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", k.Hex())
			gone = append(gone, old)
		}
	}
	for k, p := range wantByKey {
		if old, ok := d.applied[k]; ok && old == p {
			continue
		} else if ok && old.Addr != p.Addr {
			gone = append(gone, old)
		}
		fmt.Fprintf(&b, "public_key=%s\npreshared_key=%s\nreplace_allowed_ips=true\nallowed_ip=%s/32\n",
			k.Hex(), p.PresharedKey.Hex(), p.Addr)
	}
	if b.Len() == 0 {
		return nil, nil
	}
	if err := d.dev.IpcSet(b.String()); err != nil {
		return nil, fmt.Errorf("netstack: apply peers: %w", err)
	}
	d.applied = wantByKey
	return gone, nil
}

// Reach sends a handshake initiation to each given peer (by key) at its
// last known endpoint ("IP:port", as Stats reports it), so that a client
// whose session died with the appliance's previous process gets a new one
// now instead of after WireGuard's 15 s data timeout. It does so the way
// wireguard-go allows: turning persistent keepalive on sends one keepalive
// at once (which needs, hence starts, a handshake); it is turned off again
// right after. Keys not on the device and bad endpoints are skipped.
func (d *Device) Reach(endpoints map[peers.Key]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	var on, off strings.Builder
	for k, ep := range endpoints {
		if _, ok := d.applied[k]; !ok {
			continue
		}
		if _, err := netip.ParseAddrPort(ep); err != nil {
			continue
		}
		fmt.Fprintf(&on, "public_key=%s\nendpoint=%s\npersistent_keepalive_interval=1\n", k.Hex(), ep)
		fmt.Fprintf(&off, "public_key=%s\npersistent_keepalive_interval=0\n", k.Hex())
	}
	if on.Len() == 0 {
		return nil
	}
	if err := d.dev.IpcSet(on.String()); err != nil {
		return fmt.Errorf("netstack: reach peers: %w", err)
	}
	if err := d.dev.IpcSet(off.String()); err != nil {
		return fmt.Errorf("netstack: reach peers: %w", err)
	}
	return nil
}

// UAPI renders a complete wireguard-go set-config for a device with key,
// port and peers. It exists for bench helpers that run the same appliance on
// a kernel TUN; the product itself applies peers incrementally with Apply.
func UAPI(priv peers.Key, port int, ps []PeerConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=%d\nreplace_peers=true\n", priv.Hex(), port)
	for _, p := range ps {
		fmt.Fprintf(&b, "public_key=%s\npreshared_key=%s\nallowed_ip=%s/32\n", p.PublicKey.Hex(), p.PresharedKey.Hex(), p.Addr)
	}
	return b.String()
}

// Listen returns a TCP listener inside the tunnel on the device's address.
// Its connections are tracked so CloseConns can cut a peer off, and capped
// by Config.Limits.
func (d *Device) Listen(addr netip.AddrPort) (net.Listener, error) {
	l, err := d.tnet.listenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen %s: %w", addr, err)
	}
	return &trackingListener{Listener: l, t: d.conns, limits: d.limits, refusing: make(chan struct{}, maxRefusing)}, nil
}

// DialContext opens a TCP connection from the appliance's tunnel address
// to addr ("ip:port", IPv4, no names) through the WireGuard device: the
// packets go to the peer whose AllowedIPs hold the address, or nowhere.
// Used to deliver webhooks to a peer's own address. network is "tcp" or
// "tcp4".
func (d *Device) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, fmt.Errorf("netstack: dial %s: only tcp", network)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("netstack: dial %q: want an IPv4 address and port", addr)
	}
	c, err := d.tnet.dialTCP(ctx, ap)
	if err != nil {
		return nil, fmt.Errorf("netstack: dial %s: %w", addr, err)
	}
	return c, nil
}

// CloseConns closes every accepted connection from addr and returns how many.
func (d *Device) CloseConns(addr netip.Addr) int { return d.conns.closeAddr(addr) }

// OpenConns is the number of accepted connections from addr still open.
func (d *Device) OpenConns(addr netip.Addr) int { return d.conns.count(addr) }

// PeerStats is what the device knows of one peer's traffic.
type PeerStats struct {
	LastHandshake time.Time
	RxBytes       int64
	TxBytes       int64
	Endpoint      string
}

// Stats returns per-peer statistics from the device (UAPI get).
func (d *Device) Stats() (map[peers.Key]PeerStats, error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	return parseStats(s), nil
}

func parseStats(s string) map[peers.Key]PeerStats {
	out := map[peers.Key]PeerStats{}
	var (
		cur    peers.Key
		have   bool
		st     PeerStats
		hs, hn int64
	)
	flush := func() {
		if have {
			if hs != 0 || hn != 0 {
				st.LastHandshake = time.Unix(hs, hn).UTC()
			}
			out[cur] = st
		}
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "public_key":
			flush()
			key, err := peers.ParseHexKey(v)
			cur, have, st, hs, hn = key, err == nil, PeerStats{}, 0, 0
		case "last_handshake_time_sec":
			hs, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			hn, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			st.RxBytes, _ = strconv.ParseInt(v, 10, 64)
		case "tx_bytes":
			st.TxBytes, _ = strconv.ParseInt(v, 10, 64)
		case "endpoint":
			st.Endpoint = v
		}
	}
	flush()
	return out
}

// Close stops the device and every tunnel connection. Safe to call twice.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.conns.closeAll()
	d.closeDevice()
	return nil
}

// closeDevice closes the wireguard-go device, which returns once its
// routines have stopped, and then frees the bind's receive buffers.
func (d *Device) closeDevice() {
	d.dev.Close()
	if b, ok := d.bind.(*smallBatchBind); ok {
		b.release()
	}
}
