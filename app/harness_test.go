package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/wgclient"
	"waappliance/peers"
	"waappliance/store"
)

// testLogger writes the appliance log to the test log when -v, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// testAppliance is a served appliance on a loopback UDP port in a temp state dir.
type testAppliance struct {
	*app.Appliance
	dir  string
	port int
}

func initState(t testing.TB, s peers.Server) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	db, err := store.Open(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peers.InitServer(ctx, db, s); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return dir
}

func startAppliance(t testing.TB) *testAppliance {
	t.Helper()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	return serveState(t, dir)
}

func serveState(t testing.TB, dir string) *testAppliance {
	t.Helper()
	return serveWith(t, dir, nil)
}

// serveWith serves dir with options changed by mod (nil: none).
func serveWith(t testing.TB, dir string, mod func(*app.Options)) *testAppliance {
	t.Helper()
	o := app.Options{StateDir: dir, ListenPort: -1, Logger: testLogger(t), Bind: wgclient.NewLoopbackBind()}
	if mod != nil {
		mod(&o)
	}
	a, err := app.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &testAppliance{Appliance: a, dir: dir, port: a.Port()}
}

// shortAuditInterval makes refusals reach the audit log within 50 ms.
func shortAuditInterval(o *app.Options) { o.AuditInterval = 50 * time.Millisecond }

// addPeer adds a peer through the registry (like the API would).
func (ta *testAppliance) addPeer(t testing.TB, name string, scopes ...peers.Scope) peers.Created {
	t.Helper()
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: name, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync() // on the device before the client's first handshake
	return c
}

// client brings up an in-process WireGuard client for a created peer.
func (ta *testAppliance) client(t testing.TB, c peers.Created) *wgclient.Client {
	t.Helper()
	return ta.clientWith(t, wgclient.Config{PrivateKey: c.PrivateKey, PresharedKey: c.Peer.PresharedKey, Addr: c.Peer.Addr})
}

func (ta *testAppliance) clientWith(t testing.TB, cfg wgclient.Config) *wgclient.Client {
	t.Helper()
	s := ta.Server()
	cfg.ServerKey = s.PublicKey()
	cfg.Endpoint = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(ta.port))
	cfg.ServerAddr = s.TunnelAddr()
	cfg.MTU = s.MTU
	cl, err := wgclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// do sends a request and fails the test on a transport error.
func do(t testing.TB, cl *wgclient.Client, method, path string, body any) *wgclient.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.Do(ctx, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// cliRun runs the command line in-process against dir, as a separate
// process would: it opens its own database handle.
func cliRun(t testing.TB, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = app.Main(context.Background(), append(args, "--state", dir), &o, &e)
	return code, o.String(), e.String()
}

var _ = io.Discard
var _ = os.Getenv

func mustCLI(t testing.TB, dir string, args ...string) (stderr, stdout string) {
	t.Helper()
	code, o, e := cliRun(t, dir, args...)
	if code != 0 {
		t.Fatalf("waappliance %v: exit %d: %s", args, code, e)
	}
	return e, o
}

// createdFromConfig reads the private key out of a printed wg-quick config,
// as a user would, and pairs it with the stored peer.
func createdFromConfig(t testing.TB, ta *testAppliance, name, cfg string) peers.Created {
	t.Helper()
	var priv peers.Key
	for _, line := range strings.Split(cfg, "\n") {
		if v, ok := strings.CutPrefix(line, "PrivateKey = "); ok {
			k, err := peers.ParseKey(v)
			if err != nil {
				t.Fatalf("config private key: %v", err)
			}
			priv = k
		}
	}
	// Apply the CLI's change now rather than at the next poll, and wait
	// for the device to have it, so the client's first handshake is not
	// dropped (a retry waits 5 s, longer than a short expiry).
	ta.Sync()
	p, err := ta.Peers().Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return peers.Created{Peer: p, PrivateKey: priv}
}

func appOpen(ctx context.Context, dir string) (*app.Appliance, error) {
	return app.Open(ctx, app.Options{StateDir: dir, NoWhatsApp: true})
}

// createdFromCLI pairs a printed config's private key with the stored peer.
func createdFromCLI(t testing.TB, dir, name, cfg string) peers.Created {
	t.Helper()
	a, err := appOpen(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ta := &testAppliance{Appliance: a, dir: dir}
	return createdFromConfig(t, ta, name, cfg)
}
