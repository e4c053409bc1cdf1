package netstack

import (
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"
)

// deviceBatch is how many packets wireguard-go's device moves per receive
// and per TUN read. The device gives every packet of a batch its own
// 64 KiB buffer (device.MaxMessageSize, room for a UDP GRO super-packet)
// and keeps a batch of them per receive routine and for its TUN reader for
// good: at the default bind's 128 (two receive routines, IPv4 and IPv6,
// and the TUN reader), that is 24 MiB of heap that is almost never touched
// beyond its first packet's 1.5 KB, yet counts as live for the collector,
// which then lets as much garbage again pile up before it runs (the media
// benchmark's 10 × 50 MB uploads: 27 MiB live idle, RSS 32 MiB above
// idle). 16 packets keep 3 MiB and still fill a batch of the stack's
// segments at the speeds a Pi's tunnel reaches.
const deviceBatch = 16

// smallBatchBind is a conn.Bind whose receive functions hand the device at
// most deviceBatch packets at a time, whatever the wrapped bind reads at
// once. The wrapped bind (wireguard-go's default: recvmmsg and UDP GRO of
// up to conn.IdealBatchSize packets, sticky source addresses) still reads
// its full batch, into buffers of its own that live outside the Go heap
// (one anonymous mapping per receive function, mapped once and reused by
// every Open, so a routine still reading after Close never reads freed
// memory): they are resident only where a packet was written, and the
// collector does not pace itself by them. Packets are copied from there
// to the device's buffers (1.5 KB each; cheap beside their decryption).
//
// One thing is lost: wireguard-go starts its netlink route listener, which
// forgets a peer's sticky source address when the host's routes change,
// only for a bind that is a *conn.StdNetBind. A peer's source address is
// still refreshed by every packet it sends, and here the clients always
// speak first (they send to the appliance's endpoint), so only what the
// appliance sends after an address change of this host and before the
// client's next packet uses the stale address (and fails if it is gone).
type smallBatchBind struct {
	conn.Bind

	mu    sync.Mutex
	rings []*recvRing // by receive function index, kept across Opens
}

// wrapBind returns b with its receive batches cut to deviceBatch, or b
// itself when its batches are that small already.
func wrapBind(b conn.Bind) conn.Bind {
	if b.BatchSize() <= deviceBatch {
		return b
	}
	return &smallBatchBind{Bind: b}
}

func (b *smallBatchBind) BatchSize() int { return deviceBatch }

func (b *smallBatchBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		if i == len(b.rings) {
			r, err := newRecvRing(b.Bind.BatchSize())
			if err != nil {
				b.Bind.Close()
				return nil, 0, err
			}
			b.rings = append(b.rings, r)
		}
		r := b.rings[i]
		r.reset(fn)
		out[i] = r.receive
	}
	return out, actual, nil
}

// release unmaps the receive buffers. Only once no receive function runs
// any more: after the device's Close, which waits for its receive routines.
func (b *smallBatchBind) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.rings {
		syscall.Munmap(r.mem)
	}
	b.rings = nil
}

// recvRing holds one receive function's batch as the wrapped bind read it
// and hands it out deviceBatch packets at a time. Only the device's one
// receive routine for that function calls receive.
type recvRing struct {
	mem   []byte // the mapping behind bufs
	inner conn.ReceiveFunc
	bufs  [][]byte
	sizes []int
	eps   []conn.Endpoint
	next  int // first packet not yet handed out
	n     int // packets read
}

// newRecvRing maps n buffers of conn's largest datagram (a GRO
// super-packet) outside the Go heap.
func newRecvRing(n int) (*recvRing, error) {
	const size = 1<<16 - 1
	mem, err := syscall.Mmap(-1, 0, n*size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	r := &recvRing{mem: mem, bufs: make([][]byte, n), sizes: make([]int, n), eps: make([]conn.Endpoint, n)}
	for i := range r.bufs {
		r.bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
	return r, nil
}

func (r *recvRing) reset(fn conn.ReceiveFunc) {
	r.inner = fn
	r.next, r.n = 0, 0
	clear(r.eps)
}

func (r *recvRing) receive(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	if r.next == r.n {
		n, err := r.inner(r.bufs, r.sizes, r.eps)
		if err != nil {
			return 0, err
		}
		r.next, r.n = 0, n
	}
	k := 0
	for ; k < len(packets) && r.next < r.n; r.next++ {
		i := r.next
		ep := r.eps[i]
		r.eps[i] = nil // the ring keeps no endpoint alive
		if r.sizes[i] == 0 {
			continue
		}
		sizes[k] = copy(packets[k], r.bufs[i][:r.sizes[i]])
		eps[k] = ep
		k++
	}
	return k, nil
}
