package netstack

import (
	"net"
	"net/netip"
	"sync"
)

// tracker remembers accepted connections by remote address, so a removed
// peer's open connections can be closed at once instead of idling out.
type tracker struct {
	mu sync.Mutex
	m  map[netip.Addr]map[*trackedConn]struct{}
}

func newTracker() *tracker { return &tracker{m: map[netip.Addr]map[*trackedConn]struct{}{}} }

func (t *tracker) add(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.m[c.addr]
	if set == nil {
		set = map[*trackedConn]struct{}{}
		t.m[c.addr] = set
	}
	set[c] = struct{}{}
}

func (t *tracker) remove(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if set := t.m[c.addr]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(t.m, c.addr)
		}
	}
}

func (t *tracker) take(addr netip.Addr, all bool) []*trackedConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*trackedConn
	for a, set := range t.m {
		if !all && a != addr {
			continue
		}
		for c := range set {
			out = append(out, c)
		}
		delete(t.m, a)
	}
	return out
}

func (t *tracker) count(addr netip.Addr) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m[addr.Unmap()])
}

func (t *tracker) closeAddr(addr netip.Addr) int {
	cs := t.take(addr.Unmap(), false)
	for _, c := range cs {
		c.Conn.Close()
	}
	return len(cs)
}

func (t *tracker) closeAll() {
	for _, c := range t.take(netip.Addr{}, true) {
		c.Conn.Close()
	}
}

type trackingListener struct {
	net.Listener
	t *tracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		tc.addr = ap.Addr().Unmap()
	}
	l.t.add(tc)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	t    *tracker
	addr netip.Addr
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.t.remove(c) })
	return c.Conn.Close()
}
