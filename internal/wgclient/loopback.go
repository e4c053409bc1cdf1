package wgclient

import (
	"net"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// LoopbackBind is a wireguard-go conn.Bind on 127.0.0.1 only, one packet at
// a time. Tests and `waappliance selftest` use it so their UDP never listens
// on, or leaves through, any interface but loopback.
type LoopbackBind struct {
	mu sync.Mutex
	c  *net.UDPConn
}

// NewLoopbackBind returns a closed bind; wireguard-go opens it.
func NewLoopbackBind() *LoopbackBind { return &LoopbackBind{} }

type loopbackEndpoint netip.AddrPort

func (e loopbackEndpoint) ClearSrc()           {}
func (e loopbackEndpoint) SrcToString() string { return "" }
func (e loopbackEndpoint) DstToString() string { return netip.AddrPort(e).String() }
func (e loopbackEndpoint) DstToBytes() []byte {
	b, _ := netip.AddrPort(e).MarshalBinary()
	return b
}
func (e loopbackEndpoint) DstIP() netip.Addr { return netip.AddrPort(e).Addr() }
func (e loopbackEndpoint) SrcIP() netip.Addr { return netip.Addr{} }

// Open listens on 127.0.0.1:port (0 picks a free port).
func (b *LoopbackBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		return nil, 0, err
	}
	b.c = c
	recv := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, ap, err := c.ReadFromUDPAddrPort(packets[0])
		if err != nil {
			return 0, err
		}
		sizes[0] = n
		eps[0] = loopbackEndpoint(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		return 1, nil
	}
	return []conn.ReceiveFunc{recv}, uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

// Close closes the socket; pending receives return net.ErrClosed.
func (b *LoopbackBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil
	}
	err := b.c.Close()
	b.c = nil
	return err
}

// SetMark is a no-op on loopback.
func (b *LoopbackBind) SetMark(uint32) error { return nil }

// Send writes each buffer to ep.
func (b *LoopbackBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c == nil {
		return net.ErrClosed
	}
	dst := netip.AddrPort(ep.(loopbackEndpoint))
	for _, buf := range bufs {
		if _, err := c.WriteToUDPAddrPort(buf, dst); err != nil {
			return err
		}
	}
	return nil
}

// ParseEndpoint accepts only loopback addresses.
func (b *LoopbackBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	if !ap.Addr().IsLoopback() {
		return nil, &net.AddrError{Err: "loopback bind: not a loopback address", Addr: s}
	}
	return loopbackEndpoint(ap), nil
}

// BatchSize is 1: one packet per call.
func (b *LoopbackBind) BatchSize() int { return 1 }
