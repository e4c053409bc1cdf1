package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/peers"
)

func TestCLIExitCodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	missing := filepath.Join(t.TempDir(), "nothing-here")
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"init", "--subnet", "banana", "--state", dir}, 2, "--subnet"},
		{[]string{"init", "--mtu", "10", "--state", dir}, 2, "mtu"},
		{[]string{"init", "--no-such-flag", "--state", dir}, 2, "flag provided but not defined"},
		{[]string{"peer", "list", "--state", missing}, 1, "not initialized"},
		{[]string{"serve", "--state", missing}, 1, "not initialized"},
		{[]string{"init", "--endpoint", "198.51.100.7:51820", "--state", dir}, 0, "initialized"},
		{[]string{"init", "--state", dir}, 1, "already initialized"},
		{[]string{"peer", "add", "--state", dir}, 2, "exactly one peer NAME"},
		{[]string{"peer", "add", "UPPER", "--state", dir}, 2, "invalid peer name"},
		{[]string{"peer", "add", "x", "--scopes", "root", "--state", dir}, 2, "invalid scope"},
		{[]string{"peer", "add", "x", "--public-key", "short", "--state", dir}, 2, "invalid key"},
		{[]string{"peer", "remove", "ghost", "--state", dir}, 1, `peer "ghost" not found`},
		{[]string{"peer", "explode", "--state", dir}, 2, "unknown subcommand"},
		{[]string{"serve", "--log-level", "loud", "--state", dir}, 2, "--log-level"},
		{[]string{"serve", "--memory-limit", "lots", "--state", dir}, 2, "--memory-limit"},
		{[]string{"serve", "--media-max-bytes", "0", "--state", dir}, 2, "--media-max-bytes"},
		{[]string{"serve", "--audit-retention", "0", "--state", dir}, 2, "--audit-retention must be positive"},
		{[]string{"serve", "--audit-retention", "-1h", "--state", dir}, 2, "--audit-retention must be positive"},
		{[]string{"up", "--audit-retention", "0", "--state", dir}, 2, "--audit-retention must be positive"},
		{[]string{"audit", "--limit", "0", "--state", dir}, 2, "--limit"},
		{[]string{"version", "extra"}, 2, "unexpected argument"},
	}
	for _, tc := range cases {
		var o, e bytes.Buffer
		code := appMain(t, context.Background(), tc.args, &o, &e)
		if code != tc.code || !strings.Contains(e.String(), tc.stderr) {
			t.Errorf("waappliance %v: exit %d stderr %q; want exit %d containing %q", tc.args, code, e.String(), tc.code, tc.stderr)
		}
		if strings.Contains(e.String(), "goroutine ") {
			t.Errorf("waappliance %v printed a stack trace", tc.args)
		}
		if strings.Count(strings.TrimSpace(e.String()), "\n") > 3 && tc.code == 2 {
			t.Errorf("waappliance %v: usage error is not a short hint:\n%s", tc.args, e.String())
		}
	}
}

func TestCLIHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"init", "--help"}, {"serve", "--help"}, {"up", "--help"}, {"peer", "--help"},
		{"peer", "add", "--help"}, {"peer", "list", "-h"}, {"peer", "rotate", "--help"}, {"audit", "--help"}, {"version", "--help"},
		{"selftest", "--help"}, {"doctor", "--help"}} {
		var o, e bytes.Buffer
		if code := app.Main(context.Background(), args, &o, &e); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, e.String())
		}
		if !strings.Contains(o.String()+e.String(), "Usage") {
			t.Errorf("%v printed no usage", args)
		}
	}
}

func TestCLIPeerCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init")
	stderr, cfg := mustCLI(t, dir, "peer", "add", "laptop", "--scopes", "send,read", "--rate", "5", "--burst", "7", "--sessions", "shop,support")
	if !strings.Contains(stderr, "no endpoint configured") || !strings.Contains(cfg, "Endpoint = "+peers.EndpointPlaceholder(peers.DefaultListenPort)) {
		t.Errorf("missing endpoint not flagged: %q", stderr)
	}
	if !strings.Contains(cfg, "PrivateKey = ") || strings.Contains(cfg, peers.PrivateKeyPlaceholder) {
		t.Errorf("generated key not printed once:\n%s", cfg)
	}
	pub, _ := peers.GeneratePrivateKey()
	_, own := mustCLI(t, dir, "peer", "add", "phone", "--public-key", pub.Public().String(), "--expires", "24h")
	if !strings.Contains(own, "PrivateKey = "+peers.PrivateKeyPlaceholder) {
		t.Errorf("own key config lacks the placeholder:\n%s", own)
	}
	_, list := mustCLI(t, dir, "peer", "list")
	for _, want := range []string{"laptop", "10.77.0.2", "send,read", "shop,support", "5/7", "phone", "10.77.0.3"} {
		if !strings.Contains(list, want) {
			t.Errorf("peer list lacks %q:\n%s", want, list)
		}
	}
	_, again := mustCLI(t, dir, "peer", "config", "laptop")
	if strings.Contains(again, "PrivateKey = "+strings.Split(strings.Split(cfg, "PrivateKey = ")[1], "\n")[0]) {
		t.Error("peer config printed the private key again")
	}
	mustCLI(t, dir, "peer", "disable", "laptop")
	_, js := mustCLI(t, dir, "peer", "show", "laptop")
	if !strings.Contains(js, `"disabled": true`) {
		t.Errorf("show after disable:\n%s", js)
	}
	_, rot := mustCLI(t, dir, "peer", "rotate", "laptop")
	if rot == cfg || !strings.Contains(rot, "PrivateKey = ") {
		t.Error("rotate printed no new config")
	}
	mustCLI(t, dir, "peer", "remove", "laptop")
	if code, _, _ := cliRun(t, dir, "peer", "show", "laptop"); code != 1 {
		t.Errorf("show of removed peer: exit %d", code)
	}
	// The secret material never reaches stderr (where logs go).
	if strings.Contains(stderr, "PrivateKey") || strings.Contains(stderr, "PresharedKey") {
		t.Error("keys on stderr")
	}
}

// TestStateFileModes: the state dir is 0700 and every file in it 0600, also
// while the appliance is serving (WAL and shared-memory files).
func TestStateFileModes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("modes are checked on linux")
	}
	old := setUmask(0o022)
	defer setUmask(old)
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init")
	mustCLI(t, dir, "peer", "add", "a", "--scopes", "admin")
	ta := serveState(t, dir)
	cl := ta.client(t, createdFromConfig(t, ta, "a", mustConfig(t, dir, "a")))
	_ = cl
	check := func() {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("state dir mode %v", st.Mode().Perm())
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) == 0 {
			t.Fatal("empty state dir")
		}
		// Directories inside (the media store's) are 0700, every file 0600.
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			info, _ := e.Info()
			if want := os.FileMode(0o600); e.IsDir() && info.Mode().Perm() != 0o700 || !e.IsDir() && info.Mode().Perm() != want {
				t.Errorf("%s has mode %v, want 0600 (0700 for a directory)", p, info.Mode().Perm())
			}
			return nil
		})
	}
	// An uploaded media file too.
	if _, err := ta.Media().Put(context.Background(), "a", "image/png", "a.png", 100, bytes.NewReader(pngBytes(100))); err != nil {
		t.Fatal(err)
	}
	check()
	ta.Close()
	check()
}

func mustConfig(t *testing.T, dir, name string) string {
	t.Helper()
	_, cfg := mustCLI(t, dir, "peer", "rotate", name)
	return cfg
}

// TestServeShutsDownOnCancel runs `serve` like main does and cancels it.
func TestServeShutsDownOnCancel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--listen-port", strconv.Itoa(freeUDPPort(t)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var e bytes.Buffer
	go func() { done <- app.Main(ctx, []string{"serve", "--state", dir}, &bytes.Buffer{}, &e) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, e.String())
		}
	case <-time.After(app.ShutdownTimeout + 2*time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}
