//go:build !unix

package wasim

import "net"

// connPair falls back to net.Pipe (unbuffered, in process) where there is
// no socketpair(2).
func connPair() (client, server net.Conn, err error) {
	c, s := net.Pipe()
	return memConn{c}, memConn{s}, nil
}
