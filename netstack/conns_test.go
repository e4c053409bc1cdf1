package netstack

import (
	"net"
	"net/netip"
	"testing"
)

// TestTrackerCaps: the per-address and total caps count what is open, and
// a connection cut off by closeAddr and closed again later (net/http closes
// it too) is uncounted once, not twice.
func TestTrackerCaps(t *testing.T) {
	tr := newTracker()
	a, b := netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("10.9.0.3")
	conn := func(addr netip.Addr) *trackedConn {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		return &trackedConn{Conn: c1, t: tr, addr: addr}
	}
	add := func(c *trackedConn) (Refusal, bool) { return tr.add(c, 2, 3) }
	a1, a2 := conn(a), conn(a)
	for _, c := range []*trackedConn{a1, a2} {
		if _, ok := add(c); !ok {
			t.Fatal("refused under the caps")
		}
	}
	if r, ok := add(conn(a)); ok || r.Total || r.Limit != 2 {
		t.Fatalf("third of a: %+v %v, want the per-peer refusal", r, ok)
	}
	if _, ok := add(conn(b)); !ok {
		t.Fatal("b refused under the caps")
	}
	if r, ok := add(conn(b)); ok || !r.Total || r.Limit != 3 {
		t.Fatalf("fourth in total: %+v %v, want the total refusal", r, ok)
	}
	a1.Close()
	if _, ok := add(conn(b)); !ok {
		t.Fatal("refused after a close freed a place")
	}
	if n := tr.closeAddr(a); n != 1 {
		t.Fatalf("closeAddr closed %d, want 1", n)
	}
	a2.Close() // net/http closes it as well
	if tr.total != 2 || tr.count(b) != 2 {
		t.Fatalf("total %d, b %d after cutting a off, want 2 and 2", tr.total, tr.count(b))
	}
}
