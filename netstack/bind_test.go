package netstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"waappliance/internal/wgclient"
	"waappliance/peers"
)

type testEndpoint struct {
	conn.StdNetEndpoint
	i int
}

// TestRecvRingHandsOutSmallBatches: a batch the wrapped bind read at once
// reaches the device in order, at most deviceBatch packets a call, empty
// slots skipped, each with its own bytes and endpoint; the next read
// happens only once the batch is handed out, and its error is returned.
func TestRecvRingHandsOutSmallBatches(t *testing.T) {
	r, err := newRecvRing(conn.IdealBatchSize)
	if err != nil {
		t.Fatal(err)
	}
	defer unmapRing(r)
	const n = 40
	errDone := errors.New("done")
	reads := 0
	r.reset(func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		reads++
		if reads > 1 {
			return 0, errDone
		}
		for i := range n {
			sizes[i] = copy(bufs[i], bytes.Repeat([]byte{byte(i)}, i+1))
			eps[i] = &testEndpoint{i: i}
		}
		sizes[5] = 0 // a slot the bind left empty
		return n, nil
	})
	packets := make([][]byte, deviceBatch)
	for i := range packets {
		packets[i] = make([]byte, 1<<16-1)
	}
	sizes, eps := make([]int, deviceBatch), make([]conn.Endpoint, deviceBatch)
	var got []int
	for {
		k, err := r.receive(packets, sizes, eps)
		if err != nil {
			if !errors.Is(err, errDone) {
				t.Fatalf("error %v, want the bind's", err)
			}
			break
		}
		if k > deviceBatch {
			t.Fatalf("%d packets in one call", k)
		}
		for j := range k {
			i := eps[j].(*testEndpoint).i
			if !bytes.Equal(packets[j][:sizes[j]], bytes.Repeat([]byte{byte(i)}, i+1)) {
				t.Fatalf("packet %d: bytes %v", i, packets[j][:sizes[j]])
			}
			got = append(got, i)
		}
		if reads == 1 && len(got) < n-1 && k != deviceBatch {
			t.Fatalf("a short batch (%d) while %d packets were pending", k, n-1-len(got))
		}
	}
	if len(got) != n-1 || got[4] != 4 || got[5] != 6 || got[n-2] != n-1 {
		t.Fatalf("handed out %v", got)
	}
	for i, ep := range r.eps {
		if ep != nil {
			t.Fatalf("endpoint %d still referenced", i)
		}
	}
}

func unmapRing(r *recvRing) { (&smallBatchBind{rings: []*recvRing{r}}).release() }

// TestTunnelThroughDefaultBind: with wireguard-go's default bind (batches
// of conn.IdealBatchSize, cut to deviceBatch for the device) 8 MB go
// through the tunnel intact both ways, and the device closes cleanly.
func TestTunnelThroughDefaultBind(t *testing.T) {
	srvKey, _ := peers.GeneratePrivateKey()
	cliKey, _ := peers.GeneratePrivateKey()
	srvAddr, cliAddr := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	d, err := New(Config{PrivateKey: srvKey, Addr: srvAddr, Peers: []PeerConfig{{PublicKey: cliKey.Public(), Addr: cliAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, ok := d.bind.(*smallBatchBind); !ok {
		t.Fatalf("the default bind (batch %d) is not cut to %d", conn.NewDefaultBind().BatchSize(), deviceBatch)
	}
	ln, err := d.Listen(netip.AddrPortFrom(srvAddr, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echoes the stream back
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	port, _ := d.Port()
	cl, err := wgclient.New(wgclient.Config{PrivateKey: cliKey, Addr: cliAddr, ServerKey: srvKey.Public(), ServerAddr: srvAddr,
		Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cl.DialContext(ctx, "tcp", netip.AddrPortFrom(srvAddr, 80).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, 8<<20)
	rand.Read(data)
	go func() { c.Write(data) }()
	h := sha256.New()
	if n, err := io.CopyN(h, c, int64(len(data))); err != nil {
		t.Fatalf("echo after %d bytes: %v", n, err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echoed bytes differ")
	}
}
