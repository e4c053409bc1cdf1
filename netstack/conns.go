package netstack

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// ConnLimits cap the connections Listen accepts, per peer address and in
// total. Tunnel connections are not file descriptors, so no OS limit
// bounds them: without a cap one peer could hold any number of them.
// Zero values: PerPeer nil (or a result <= 0) means no per-peer cap, Total
// 0 no total cap, Refuse nil closes a refused connection at once.
type ConnLimits struct {
	// PerPeer returns how many connections the tunnel address may hold.
	// It is called on every accept, so it must be cheap (a snapshot
	// lookup).
	PerPeer func(netip.Addr) int
	Total   int
	// Refuse answers a refused connection (e.g. with an HTTP 429) before
	// it is closed; it runs in its own goroutine with a read and write
	// deadline of RefuseTimeout already set (it may set shorter ones of its
	// own; it must bound its time). The connection is not counted.
	Refuse func(c net.Conn, r Refusal)
	// Refused, when set, is told of every refusal (answered or not) in the
	// accept loop, so it must be quick: for counting and logging.
	Refused func(Refusal)
}

// Refusal says why a connection was refused: the peer's own cap (Total
// false) or the total one, and the cap that was reached.
type Refusal struct {
	Addr  netip.Addr
	Total bool
	Limit int
}

// RefuseTimeout is the deadline a refused connection gets before Refuse
// runs.
const RefuseTimeout = 2 * time.Second

// maxRefusing bounds the refused connections answered at once; beyond it a
// refused connection is closed without an answer (the client sees a reset),
// so a flood of connections costs at most this many goroutines.
const maxRefusing = 64

// tracker remembers accepted connections by remote address, so a removed
// peer's open connections can be closed at once instead of idling out, and
// so the caps of ConnLimits can be checked.
type tracker struct {
	mu    sync.Mutex
	m     map[netip.Addr]map[*trackedConn]struct{}
	total int
}

func newTracker() *tracker { return &tracker{m: map[netip.Addr]map[*trackedConn]struct{}{}} }

// add counts c unless that would pass a cap (perPeer or total, <= 0: none);
// it returns the refusal when it does not count c.
func (t *tracker) add(c *trackedConn, perPeer, total int) (Refusal, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.m[c.addr]
	if total > 0 && t.total >= total {
		return Refusal{Addr: c.addr, Total: true, Limit: total}, false
	}
	if perPeer > 0 && len(set) >= perPeer {
		return Refusal{Addr: c.addr, Limit: perPeer}, false
	}
	if set == nil {
		set = map[*trackedConn]struct{}{}
		t.m[c.addr] = set
	}
	set[c] = struct{}{}
	t.total++
	return Refusal{}, true
}

func (t *tracker) remove(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if set := t.m[c.addr]; set != nil {
		if _, ok := set[c]; ok {
			delete(set, c)
			t.total--
		}
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
		t.total -= len(set)
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
	t        *tracker
	limits   ConnLimits
	refusing chan struct{} // a semaphore of maxRefusing
}

// Accept returns the next connection within the caps; a connection over a
// cap is refused (answered by limits.Refuse, then closed) and never
// returned, so net/http never holds it.
func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: l.t}
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			tc.addr = ap.Addr().Unmap()
		}
		perPeer := 0
		if l.limits.PerPeer != nil {
			perPeer = l.limits.PerPeer(tc.addr)
		}
		r, ok := l.t.add(tc, perPeer, l.limits.Total)
		if ok {
			return tc, nil
		}
		if l.limits.Refused != nil {
			l.limits.Refused(r)
		}
		l.refuse(c, r)
	}
}

// refuse answers c with limits.Refuse within RefuseTimeout and closes it,
// or closes it at once when no answer is set or maxRefusing are under way.
func (l *trackingListener) refuse(c net.Conn, r Refusal) {
	if l.limits.Refuse == nil {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(RefuseTimeout))
		l.limits.Refuse(c, r)
	}()
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
