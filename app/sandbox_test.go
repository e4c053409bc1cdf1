package app_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"waappliance/store"
)

// procSocket is one TCP or UDP socket a process holds.
type procSocket struct {
	Proto string // tcp, tcp6, udp, udp6
	Local string // hex address:port, as /proc shows it
	Port  int
	State string // 0A is a TCP listener; 07 an unconnected UDP socket
	// Remote is the peer's hex address:port, RemotePort its port.
	Remote     string
	RemotePort int
}

// inetSockets lists the TCP and UDP sockets (IPv4 and IPv6, any state) that
// process pid holds: the socket inodes among /proc/PID/fd matched against
// /proc/PID/net/{tcp,tcp6,udp,udp6}. Those tables list the whole network
// namespace, so the inodes keep other processes' sockets (other tests,
// wasim in this process) out of it.
func inetSockets(t testing.TB, pid int) []procSocket {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Skipf("no /proc to inspect: %v", err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var out []procSocket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
		if err != nil {
			continue // no IPv6
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || !mine[f[9]] {
				continue
			}
			s := procSocket{Proto: proto, Local: f[1], State: f[3], Remote: f[2]}
			s.Port, s.RemotePort = hexPort(f[1]), hexPort(f[2])
			out = append(out, s)
		}
	}
	return out
}

// hexPort is the port of a /proc/net address (hex ADDR:PORT).
func hexPort(a string) int {
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		p, _ := strconv.ParseInt(a[i+1:], 16, 32)
		return int(p)
	}
	return 0
}

// stateDBPort is the TCP port of the PostgreSQL server the state in dir
// links to; 0 on SQLite.
func stateDBPort(t testing.TB, dir string) int {
	t.Helper()
	l, err := store.ReadLink(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.URL == "" {
		return 0
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	if p == 0 {
		p = 5432
	}
	return p
}

// TestSandboxOpensNoTCPListener: `serve --sandbox` with the built-in wasim,
// as its own process, pairs a session, delivers a message to a contact, and
// all the while holds no TCP socket at all — listening or connected, the
// simulator's websocket included — only its WireGuard UDP port: the
// promise that the host sees one UDP port holds in sandbox mode too. (On
// PostgreSQL the connections to the database server are the one exception.)
func TestSandboxOpensNoTCPListener(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	ctx := context.Background()
	port := freeUDPPort(t)
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg := mustCLI(t, dir, "peer", "add", "boss", "--scopes", "admin", "--rate", "1000", "--burst", "1000")
	boss := createdFromCLI(t, dir, "boss", cfg)

	p := startProc(t, dir, "true") // --sandbox=true: in-process wasim
	cl := procClient(t, dir, port, boss)
	eventually(t, "the appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	var health struct{ Sandbox bool }
	if do(t, cl, "GET", "/v1/health", nil).JSON(&health); !health.Sandbox {
		t.Fatal("not in sandbox mode")
	}
	pairSession(t, cl, "shop", "+15550001")
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	m := send(t, cl, "shop", "+15550002", "no tcp here")
	eventually(t, "the contact has the message", func() bool {
		for _, in := range inbox(t, cl, "+15550002") {
			if in.ID == m.ID {
				return true
			}
		}
		return false
	})

	socks := inetSockets(t, p.cmd.Process.Pid)
	udp := false
	dbPort := stateDBPort(t, dir)
	for _, s := range socks {
		if strings.HasPrefix(s.Proto, "tcp") && s.State == "01" && dbPort != 0 && s.RemotePort == dbPort {
			continue // connected to the state's PostgreSQL: the database, not a way in
		}
		if strings.HasPrefix(s.Proto, "tcp") {
			t.Errorf("serve --sandbox holds a TCP socket: %+v", s)
		}
		udp = udp || (strings.HasPrefix(s.Proto, "udp") && s.Port == port)
	}
	if !udp {
		t.Fatalf("no UDP socket on port %d among %+v: the inspection sees nothing", port, socks)
	}
}
