//go:build unix

package wasim

import (
	"net"
	"os"
	"syscall"
)

// connPair is a connected pair of Unix stream sockets (socketpair(2)): kernel
// buffered like TCP, but never bound, listening or reachable by another
// process, and not a network socket.
func connPair() (client, server net.Conn, err error) {
	syscall.ForkLock.RLock() // no child process inherits the fds
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "wasim-memconn")
		c, ferr := net.FileConn(f) // a dup; the original is closed next
		f.Close()
		if ferr != nil && err == nil {
			err = ferr
		}
		if ferr == nil {
			conns[i] = memConn{c}
		}
	}
	if err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, nil, err
	}
	return conns[0], conns[1], nil
}
