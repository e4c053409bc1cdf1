package app_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/internal/wasim"
	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// appliance process under test, killable with SIGKILL.
type proc struct {
	cmd *exec.Cmd
	log *os.File
}

func startProc(t *testing.T, dir, sandbox string) *proc {
	t.Helper()
	lf, _ := os.OpenFile(filepath.Join(t.TempDir(), "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	cmd := execAppliance(dir, sandbox, lf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: lf}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() { // the appliance's own account of what went wrong
			if b, err := os.ReadFile(lf.Name()); err == nil {
				t.Logf("appliance log (%s):\n%s", lf.Name(), b)
			}
		}
		lf.Close()
	})
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func freeUDPPort(t testing.TB) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func procClient(t testing.TB, dir string, port int, c peers.Created) *wgclient.Client {
	t.Helper()
	ctx := context.Background()
	a, err := appOpen(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s := a.Server()
	a.Close()
	cl, err := wgclient.New(wgclient.Config{PrivateKey: c.PrivateKey, PresharedKey: c.Peer.PresharedKey, Addr: c.Peer.Addr,
		ServerKey: s.PublicKey(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), ServerAddr: s.TunnelAddr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestCrashSafety kills the appliance process with SIGKILL while sends are
// queued and in flight (wasim swallows their acks) and inbound messages are
// arriving; after a restart every queued message reaches the contact
// exactly once and every inbound message wasim saw acknowledged is in the
// event log.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	ctx := context.Background()
	srv, ctl := startWasim(t)
	port := freeUDPPort(t)
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg := mustCLI(t, dir, "peer", "add", "boss", "--scopes", "admin", "--rate", "1000", "--burst", "1000", "--send-per-minute", "1000")
	boss := createdFromCLI(t, dir, "boss", cfg)

	p := startProc(t, dir, ctl.String())
	cl := procClient(t, dir, port, boss)
	eventually(t, "the appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	s := pairSession(t, cl, "shop", "+15550001")
	srv.AddContact(ctx, "15550002", "Ada", 100*time.Millisecond)
	account, _ := types.ParseJID(s.JID)

	var mu sync.Mutex
	receipted := map[string]bool{}
	srv.OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventClientReceipt || (e.Kind == wasim.EventClientAck && e.Class == "message") {
			mu.Lock()
			receipted[e.MessageID] = true
			mu.Unlock()
		}
	})
	// In flight: the server swallows the acks of what gets sent now.
	srv.WithholdAcks(true)
	var out []string
	for i := 0; i < 6; i++ {
		out = append(out, send(t, cl, "shop", "+15550002", fmt.Sprint("outbound ", i)).ID)
	}
	var in []string
	for i := 0; i < 6; i++ {
		id, err := srv.ContactSend(ctx, "15550002", account.ToNonAD(), fmt.Sprint("inbound ", i), "")
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, id)
		if i == 2 {
			p.kill() // SIGKILL mid-flight, while inbound messages keep coming
		}
	}
	srv.WithholdAcks(false)
	mu.Lock()
	ackedBefore := len(receipted)
	mu.Unlock()
	t.Logf("killed with %d outbound queued or in flight; wasim had seen %d of %d inbound acknowledged", len(out), ackedBefore, len(in))

	startProc(t, dir, ctl.String())
	cl = procClient(t, dir, port, boss)
	eventually(t, "reconnected", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/sessions/shop", nil)
		var s sessionJSON
		return err == nil && r.Status == 200 && r.JSON(&s) == nil && s.State == "connected"
	})
	eventually(t, "all outbound delivered", func() bool {
		got, _ := srv.InboxOf(ctx, "15550002")
		return len(got) >= len(out)
	})
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	got, _ := srv.InboxOf(ctx, "15550002")
	if len(got) != len(out) {
		t.Fatalf("contact has %d messages, want %d: %+v", len(got), len(out), got)
	}
	for i, m := range got {
		if m.ID != out[i] || m.Deliveries != 1 || m.Text != fmt.Sprint("outbound ", i) {
			t.Fatalf("outbound %d: %+v (want id %s once, in order)", i, m, out[i])
		}
	}
	eventually(t, "every inbound message in the event log", func() bool {
		var ev struct {
			Events []struct {
				Type string
				Data struct{ ID string }
			}
		}
		r, err := cl.Do(ctx, "GET", "/v1/events?session=shop&limit=1000", nil)
		if err != nil || r.JSON(&ev) != nil {
			return false // a slow CI machine: poll again
		}
		seen := map[string]int{}
		for _, e := range ev.Events {
			if e.Type == "message.received" {
				seen[e.Data.ID]++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for id := range receipted {
			if seen[id] == 0 && contains(in, id) {
				return false
			}
		}
		for _, id := range in {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	})
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// execAppliance is this test binary run as `waappliance serve`.
func execAppliance(dir, sandbox string, log *os.File) *exec.Cmd {
	level := os.Getenv("WAA_TEST_LOG_LEVEL") // debug shows whatsmeow's XML; default info
	if level == "" {
		level = "info"
	}
	cmd := exec.Command(os.Args[0], "serve", "--state", dir, "--sandbox="+sandbox, "--log-level", level)
	cmd.Env = append(os.Environ(), "WAAPPLIANCE_TEST_AS_MAIN=1")
	cmd.Stdout, cmd.Stderr = log, log
	return cmd
}

// startWasim runs a simulator in this process with its control API on
// loopback, for an appliance process to use with --sandbox=ctl.
func startWasim(t testing.TB) (*wasim.Server, net.Addr) {
	t.Helper()
	srv, err := wasim.New(context.Background(), wasim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); srv.Close() })
	ctl, err := srv.ServeControl(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ctl
}
