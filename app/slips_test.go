package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/audit"
	"waappliance/peers"
	"waappliance/store"
)

// runMain runs the command line in-process with a bound on how long it may
// take: a serve that did not refuse would run until cancelled.
func runMain(t *testing.T, within time.Duration, args ...string) (code int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var o, e bytes.Buffer
	done := make(chan int, 1)
	args = engineArgs(t, args)
	go func() { done <- app.Main(ctx, args, &o, &e) }()
	select {
	case code = <-done:
	case <-time.After(within):
		cancel()
		<-done
		t.Fatalf("waappliance %v was still running after %v (it should have refused at once): %s", args, within, e.String())
	}
	return code, e.String()
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// sessionRow is the stored state of a session, read as an offline command
// would.
func sessionRow(t *testing.T, dir, name string) string {
	t.Helper()
	db := openStateStore(t, dir)
	defer db.Close()
	var state string
	var updated int64
	if err := db.QueryRow(`SELECT state, updated_at FROM sessions WHERE name = $1`, name).Scan(&state, &updated); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s@%d", state, updated)
}

// TestSecondServeRefused: a second serve (or up) on a state dir that a
// process is serving exits 1 at once naming that process, before it has
// touched anything: the session it would have marked "connecting" stays
// connected, the control socket is the first one's, and the first still
// serves. After a SIGKILL the kernel has released the lock and serve starts.
func TestSecondServeRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	ctx := context.Background()
	_, ctl := startWasim(t)
	port := freeUDPPort(t)
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg := mustCLI(t, dir, "peer", "add", "boss", "--scopes", "admin")
	boss := createdFromCLI(t, dir, "boss", cfg)

	p := startProc(t, dir, ctl.String())
	cl := procClient(t, dir, port, boss)
	eventually(t, "the appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	pairSession(t, cl, "shop", "+15550001")
	before := sessionRow(t, dir, "shop")
	sock := inode(t, filepath.Join(dir, app.ControlSocket))

	want := fmt.Sprintf("another waappliance is serving this state dir (pid %d", p.cmd.Process.Pid)
	for _, args := range [][]string{
		{"serve", "--state", dir, "--sandbox=" + ctl.String()},
		{"up", "--state", dir, "--sandbox=" + ctl.String()},
	} {
		code, stderr := runMain(t, 5*time.Second, args...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("%v: exit %d, stderr %q; want exit 1 and %q", args, code, stderr, want)
		}
	}
	if after := sessionRow(t, dir, "shop"); after != before || !strings.HasPrefix(after, "connected@") {
		t.Errorf("session row changed from %s to %s", before, after)
	}
	if got := inode(t, filepath.Join(dir, app.ControlSocket)); got != sock {
		t.Error("the control socket was replaced")
	}
	if s := getSession(t, cl, "shop"); s.State != "connected" {
		t.Errorf("first appliance's session: %+v", s)
	}
	if code, _, stderr := cliRun(t, dir, "peer", "add", "offline", "--scopes", "read"); code != 0 {
		t.Errorf("an offline command while serving: exit %d %s", code, stderr)
	}

	p.kill()
	startProc(t, dir, ctl.String())
	cl = procClient(t, dir, port, boss)
	eventually(t, "a serve after SIGKILL takes the lock and serves", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
}

// TestServeRefusesLooseModes: serve and up refuse a state dir or database
// that group or others may read, with the exact chmod to run, and change
// nothing; after the chmod, serve starts. up still makes a new or empty
// dir private itself.
func TestServeRefusesLooseModes(t *testing.T) {
	old := setUmask(0o022)
	defer setUmask(old)
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--listen-port", fmt.Sprint(freeUDPPort(t)))
	db := filepath.Join(dir, store.FileName)
	if testEngine() == store.Postgres {
		db = filepath.Join(dir, store.DatabaseFile) // the link, which holds the password
	}
	cases := []struct {
		name            string
		dirMode, dbMode os.FileMode
		wantFix         string
	}{
		{"dir 0755", 0o755, 0o600, "run 'chmod 700 " + dir + "'"},
		{"db 0644", 0o700, 0o644, "run 'chmod 600 " + db + "'"},
		{"both", 0o750, 0o640, "run 'chmod 700 " + dir + " && chmod 600 " + db + "'"},
	}
	for _, tc := range cases {
		for _, cmd := range []string{"serve", "up"} {
			os.Chmod(dir, tc.dirMode)
			os.Chmod(db, tc.dbMode)
			code, stderr := runMain(t, 5*time.Second, cmd, "--state", dir)
			if code != 1 || !strings.Contains(stderr, tc.wantFix) || !strings.Contains(stderr, "group or others") {
				t.Errorf("%s, %s: exit %d, stderr %q; want exit 1 and %q", tc.name, cmd, code, stderr, tc.wantFix)
			}
			if m := mode(t, dir); m != tc.dirMode {
				t.Errorf("%s, %s: dir mode changed to %v", tc.name, cmd, m)
			}
			if m := mode(t, db); m != tc.dbMode {
				t.Errorf("%s, %s: db mode changed to %v", tc.name, cmd, m)
			}
			if _, err := os.Stat(filepath.Join(dir, app.ControlSocket)); err == nil {
				t.Errorf("%s, %s: a refused serve made a control socket", tc.name, cmd)
			}
		}
	}
	// Doctor gives the same fix.
	os.Chmod(dir, 0o700)
	os.Chmod(db, 0o644)
	var o bytes.Buffer
	app.Main(context.Background(), []string{"doctor", "--state", dir}, &o, &bytes.Buffer{})
	if !strings.Contains(o.String(), "chmod 600 "+db) {
		t.Errorf("doctor:\n%s", o.String())
	}
	// After the chmod, serve starts (and stops on cancel).
	os.Chmod(db, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var e bytes.Buffer
	go func() { done <- app.Main(ctx, []string{"serve", "--state", dir}, &bytes.Buffer{}, &e) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve after chmod: exit %d: %s", code, e.String())
	}

	// up on a new dir inside a loose empty one: made private, as before.
	empty := filepath.Join(t.TempDir(), "fresh")
	os.Mkdir(empty, 0o755)
	ctx, cancel = context.WithCancel(context.Background())
	upArgs := engineArgs(t, []string{"up", "--state", empty, "--listen-port", fmt.Sprint(freeUDPPort(t))})
	go func() { done <- app.Main(ctx, upArgs, &bytes.Buffer{}, &e) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(empty, app.ControlSocket)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("up on an empty 0755 dir did not serve: %s", e.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("up: exit %d: %s", code, e.String())
	}
	if m := mode(t, empty); m != 0o700 {
		t.Errorf("up left the new dir at %v", m)
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestAuditRetentionPrunes: the serving appliance prunes audit rows older
// than --audit-retention with its hourly pruner (which runs at start),
// keeping newer ones; the clock is injected.
func TestAuditRetentionPrunes(t *testing.T) {
	ctx := context.Background()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	now := time.Now()
	db := openStateStore(t, dir)
	l := audit.New(db, audit.Options{})
	for _, e := range []audit.Entry{
		{At: now.Add(-100 * 24 * time.Hour), Peer: "old", Method: "POST", Route: "/v1/peers", Status: 201},
		{At: now.Add(-89 * 24 * time.Hour), Peer: "kept", Method: "POST", Route: "/v1/peers", Status: 201},
	} {
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	ta := serveWith(t, dir, func(o *app.Options) {
		o.NoWhatsApp = true
		o.Now = func() time.Time { return now }
	})
	list := func() []string {
		es, err := audit.New(ta.DB(), audit.Options{}).List(ctx, "", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Peer)
		}
		return names
	}
	eventually(t, "the 100-day-old row pruned at start", func() bool { return len(list()) == 1 })
	if got := list(); got[0] != "kept" {
		t.Fatalf("left %v, want [kept]", got)
	}
}

// TestAuditAggregatesRefusalFlood: a peer hammering past its rate limit
// costs one audit row per route and status, with the count, not a row a
// request; the counts of the interval in progress are written at Close.
func TestAuditAggregatesRefusalFlood(t *testing.T) {
	ctx := context.Background()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) { o.NoWhatsApp = true }) // the default minute
	c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "slow", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: peers.MinRate, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	slow := ta.client(t, c)
	const n = 50
	statuses := map[int]int{}
	for range n {
		statuses[do(t, slow, "DELETE", "/v1/peers/ghost", nil).Status]++
	}
	if statuses[404] != 1 || statuses[429] != n-1 {
		t.Fatalf("answers %v", statuses)
	}
	if err := ta.Close(); err != nil {
		t.Fatal(err)
	}
	db := openStateStore(t, dir)
	defer db.Close()
	es, err := audit.New(db, audit.Options{}).List(ctx, "slow", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]audit.Entry{}
	for _, e := range es {
		got[e.Status] = e
	}
	if len(es) != 2 || got[404].Count != 1 || got[429].Count != n-1 || got[429].Route != "/v1/peers/{name}" || got[429].Target != "ghost" || got[429].LastAt == nil {
		t.Fatalf("audit rows of the flood: %+v", es)
	}
	_, out := mustCLI(t, dir, "audit", "--peer", "slow")
	if !strings.Contains(out, "COUNT") || !strings.Contains(out, fmt.Sprintf("429     %d", n-1)) {
		t.Errorf("waappliance audit:\n%s", out)
	}
}

// TestRestartRevivesConnectedClient: a client connected to the appliance
// when it restarts (an upgrade, a crash) gets a handshake from the new
// process at once: it need not wait for WireGuard's 15 s data timeout
// (plus its TCP retransmits; measured 25 s before). Structural: the
// client's handshake is renewed while the client sends nothing.
func TestRestartRevivesConnectedClient(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	port := freeUDPPort(t)
	mod := func(o *app.Options) { o.ListenPort = port; o.NoWhatsApp = true }
	ta := serveWith(t, dir, mod)
	cl := ta.client(t, ta.addPeer(t, "boss", peers.ScopeAdmin))
	if r := do(t, cl, "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("whoami: %d", r.Status)
	}
	ta.Close()
	if _, err := os.Stat(filepath.Join(dir, app.EndpointsFile)); err != nil {
		t.Fatalf("no endpoints saved at Close: %v", err)
	}
	restarted := time.Now()
	serveWith(t, dir, mod)
	// The client itself would not try before WireGuard's REKEY_TIMEOUT
	// (5 s) at the earliest, usually 15 s; the appliance's handshake takes
	// a loopback round trip.
	deadline := time.Now().Add(4 * time.Second)
	for !cl.LastHandshake().After(restarted) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted appliance did not handshake with the connected client")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := do(t, cl, "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("whoami after the restart: %d", r.Status)
	}
}
