package netstack

import (
	"net/netip"
	"slices"
	"testing"

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
