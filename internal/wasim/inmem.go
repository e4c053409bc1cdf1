package wasim

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// memListener is the listener of an InMemory server: dial makes a connected
// pair of sockets (connPair) and hands one end to Accept, so the server's
// HTTP and TLS stack runs unchanged and nothing listens on the host.
type memListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial returns the client end of a new connection to the server.
func (l *memListener) dial(ctx context.Context) (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	client, server, err := connPair()
	if err != nil {
		return nil, err
	}
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		err = net.ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	}
	client.Close()
	server.Close()
	return nil, err
}

// memAddr names both ends of an in-memory connection.
type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "in-memory" }

// memConn reports memAddr for both ends (an unnamed socket pair has no
// address of its own, and net/http logs the remote one).
type memConn struct{ net.Conn }

func (memConn) LocalAddr() net.Addr  { return memAddr{} }
func (memConn) RemoteAddr() net.Addr { return memAddr{} }

// lingerTimeout bounds how long a closed memConn waits for its peer to
// close too.
const lingerTimeout = 2 * time.Second

// Close shuts down the sending half and closes the socket once the peer has
// closed its own (or after lingerTimeout), as the kernel does for a TCP
// socket: a peer that writes its last bytes (a TLS close_notify after the
// websocket closing handshake) after this end closed then gets no "broken
// pipe", which whatsmeow would log and which TCP never reports.
func (c memConn) Close() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return c.Conn.Close()
	}
	c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout)) // a pending Read ends by then too
	go func() {
		io.Copy(io.Discard, c.Conn)
		c.Conn.Close()
	}()
	return nil
}
