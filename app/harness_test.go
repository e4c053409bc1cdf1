package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/pgtest"
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

// engineEnv chooses the engine every test's state is made on: unset or
// "sqlite" for the SQLite file in the state dir, "postgres" for a fresh
// database of the test's own on the server pgtest.Env names (scripts/pg
// starts one), linked from the state dir as `init --database` links it.
const engineEnv = "WAA_TEST_ENGINE"

// testEngine is the engine engineEnv chose (checked in TestMain).
func testEngine() store.Dialect {
	if os.Getenv(engineEnv) == "postgres" {
		return store.Postgres
	}
	return store.SQLite
}

// checkEngineEnv refuses an engineEnv the harness does not know, and
// postgres without a server.
func checkEngineEnv() error {
	switch v := os.Getenv(engineEnv); v {
	case "", "sqlite":
	case "postgres":
		if !pgtest.Enabled() {
			return fmt.Errorf("%s=postgres needs %s (run the tests under scripts/pg)", engineEnv, pgtest.Env)
		}
	default:
		return fmt.Errorf("%s=%q: want sqlite or postgres", engineEnv, v)
	}
	return nil
}

// testDatabase is the --database of a new state for t: "" (SQLite) or a
// fresh PostgreSQL database, dropped when t ends.
func testDatabase(t testing.TB) string {
	t.Helper()
	if testEngine() == store.Postgres {
		return pgtest.Fresh(t)
	}
	return ""
}

// skipOnPostgres skips t when the states are on PostgreSQL: for tests of
// what only the SQLite file has (its modes, its page limit, its schema).
func skipOnPostgres(t testing.TB, why string) {
	t.Helper()
	if testEngine() == store.Postgres {
		t.Skip("SQLite only: " + why)
	}
}

// engineArgs returns the command line args with --database added when
// the tests run on PostgreSQL and args is an init or up that makes a new
// state without naming a database: the state goes to a fresh database of
// t's own, through the same path a user's `init --database URL` takes. A
// command that names its database (--database, the environment) keeps it.
// Call it on the test's goroutine (it may create a database).
func engineArgs(t testing.TB, args []string) []string {
	t.Helper()
	if testEngine() != store.Postgres || len(args) == 0 || (args[0] != "init" && args[0] != "up") || os.Getenv(app.DatabaseEnv) != "" {
		return args
	}
	dir := ""
	for i, a := range args {
		switch {
		case a == "--help" || a == "-h" || a == "-help":
			return args
		case a == "--database" || a == "-database" || strings.HasPrefix(a, "--database=") || strings.HasPrefix(a, "-database="):
			return args
		case (a == "--state" || a == "-state") && i+1 < len(args):
			dir = args[i+1]
		case strings.HasPrefix(a, "--state="):
			dir = strings.TrimPrefix(a, "--state=")
		}
	}
	if dir == "" || store.HasState(dir) {
		return args
	}
	return append([]string{args[0], "--database", pgtest.Fresh(t)}, args[1:]...)
}

// appMain is app.Main with engineArgs: every in-process command of a test
// goes through it. Call it, or engineArgs, on the test's goroutine.
func appMain(t testing.TB, ctx context.Context, args []string, stdout, stderr io.Writer) int {
	t.Helper()
	return app.Main(ctx, engineArgs(t, args), stdout, stderr)
}

// initState makes a new state with s on the test engine, as init does.
func initState(t testing.TB, s peers.Server) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := app.Initialize(context.Background(), dir, s, testDatabase(t)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openStateStore opens the database of the state in dir as the commands
// do, following its link (SQLite beside it, or its PostgreSQL database):
// for tests that read or write a state's database directly.
func openStateStore(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := app.OpenStateDB(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return db
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
	code = appMain(t, context.Background(), append(args, "--state", dir), &o, &e)
	return code, o.String(), e.String()
}

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

// TestHarnessUsesTestEngine: every way the tests make a state (initState,
// the CLI's init and up) puts it on the engine WAA_TEST_ENGINE chose, and
// openStateStore reaches that database.
func TestHarnessUsesTestEngine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viaInit := filepath.Join(t.TempDir(), "state")
	mustCLI(t, viaInit, "init")
	viaUp := filepath.Join(t.TempDir(), "state")
	upArgs := engineArgs(t, []string{"up", "--state", viaUp, "--listen-port", fmt.Sprint(freeUDPPort(t))})
	done := make(chan int, 1)
	go func() { done <- app.Main(ctx, upArgs, io.Discard, io.Discard) }()
	eventually(t, "up serves", func() bool {
		_, err := os.Stat(filepath.Join(viaUp, app.ControlSocket))
		return err == nil
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("up: exit %d", code)
	}
	for what, dir := range map[string]string{"initState": initState(t, peers.Server{}), "init": viaInit, "up": viaUp} {
		l, err := store.ReadLink(dir)
		if err != nil {
			t.Fatal(err)
		}
		if l.Dialect() != testEngine() {
			t.Errorf("%s made a state on %s; the test engine is %s", what, l.Dialect(), testEngine())
		}
		db := openStateStore(t, dir)
		if db.Dialect != testEngine() {
			t.Errorf("%s: openStateStore opened %s", what, db.Dialect)
		}
		if _, err := peers.LoadServer(context.Background(), db); err != nil {
			t.Errorf("%s: the state's server: %v", what, err)
		}
		db.Close()
	}
}
