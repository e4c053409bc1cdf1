package netstack

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/conn"

	"waappliance/peers"
)

func newTestDevice(t *testing.T) *Device {
	t.Helper()
	priv, _ := peers.GeneratePrivateKey()
	d, err := New(Config{PrivateKey: priv, Addr: netip.MustParseAddr("10.9.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func peerCfg(t *testing.T, addr string) PeerConfig {
	k, _ := peers.GeneratePrivateKey()
	psk, _ := peers.GenerateSymmetricKey()
	return PeerConfig{PublicKey: k.Public(), PresharedKey: psk, Addr: netip.MustParseAddr(addr)}
}

// TestApplyIsIncremental: Apply touches only what changed and reports the
// addresses whose key went away (removed, disabled, rotated).
func TestApplyIsIncremental(t *testing.T) {
	d := newTestDevice(t)
	a, b := peerCfg(t, "10.9.0.2"), peerCfg(t, "10.9.0.3")
	if gone, err := d.Apply([]PeerConfig{a, b}); err != nil || len(gone) != 0 {
		t.Fatalf("first apply: %v %v", gone, err)
	}
	st, err := d.Stats()
	if err != nil || len(st) != 2 {
		t.Fatalf("device has %d peers, want 2 (%v)", len(st), err)
	}
	if gone, _ := d.Apply([]PeerConfig{a, b}); len(gone) != 0 {
		t.Fatalf("re-apply of the same set reported %v", gone)
	}
	rotated := peerCfg(t, "10.9.0.3")
	gone, err := d.Apply([]PeerConfig{a, rotated})
	if err != nil || !slices.Equal(gone, []PeerConfig{b}) {
		t.Fatalf("rotation: gone %v, %v", gone, err)
	}
	st, _ = d.Stats()
	if _, ok := st[b.PublicKey]; ok || len(st) != 2 {
		t.Fatalf("old key still on the device: %v", st)
	}
	gone, _ = d.Apply([]PeerConfig{rotated})
	if !slices.Equal(gone, []PeerConfig{a}) {
		t.Fatalf("removal: gone %v", gone)
	}
}

func TestParseStats(t *testing.T) {
	k1, k2 := peerCfg(t, "10.9.0.2").PublicKey, peerCfg(t, "10.9.0.3").PublicKey
	s := "private_key=00\nlisten_port=1\npublic_key=" + k1.Hex() + "\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nrx_bytes=10\ntx_bytes=20\nendpoint=127.0.0.1:9\n" +
		"public_key=" + k2.Hex() + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\nrx_bytes=0\ntx_bytes=0\n"
	st := parseStats(s)
	if got := st[k1]; got.RxBytes != 10 || got.TxBytes != 20 || got.LastHandshake.Unix() != 1700000000 || got.Endpoint != "127.0.0.1:9" {
		t.Fatalf("k1: %+v", got)
	}
	if got := st[k2]; !got.LastHandshake.IsZero() {
		t.Fatalf("k2 never handshook: %+v", got)
	}
}

// logCount counts log records whose message contains a substring.
type logCount struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCount) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.lines = append(c.lines, r.Message)
	c.mu.Unlock()
	return nil
}
func (c *logCount) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCount) WithGroup(string) slog.Handler      { return c }
func (c *logCount) count(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// openSpy is a Bind that records, at the moment the port is bound, how
// many peers the device had created by then.
type openSpy struct {
	conn.Bind
	log         *logCount
	peersAtOpen int
	opened      bool
}

func (b *openSpy) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.opened = true
	b.peersAtOpen = b.log.count("UAPI: Created")
	return b.Bind.Open(port)
}

// TestPeersBeforeBind: every peer given to New is on the device before
// the UDP port is bound, so a handshake arriving as the very first packet
// after a (re)start finds its peer instead of being dropped (the client
// would wait 5 s for its retry).
func TestPeersBeforeBind(t *testing.T) {
	lc := &logCount{}
	spy := &openSpy{Bind: conn.NewDefaultBind(), log: lc}
	priv, _ := peers.GeneratePrivateKey()
	ps := []PeerConfig{peerCfg(t, "10.9.0.2"), peerCfg(t, "10.9.0.3"), peerCfg(t, "10.9.0.4")}
	d, err := New(Config{PrivateKey: priv, Addr: netip.MustParseAddr("10.9.0.1"), Bind: spy, Logger: slog.New(lc), Peers: ps})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !spy.opened {
		t.Fatal("the bind was never opened")
	}
	if spy.peersAtOpen != len(ps) {
		t.Fatalf("%d of %d peers were on the device when the port was bound", spy.peersAtOpen, len(ps))
	}
	// And they are the applied set: a later Apply of the same set is a no-op.
	if gone, err := d.Apply(ps); err != nil || len(gone) != 0 {
		t.Fatalf("re-apply: %v %v", gone, err)
	}
	if st, _ := d.Stats(); len(st) != len(ps) {
		t.Fatalf("device has %d peers", len(st))
	}
}
