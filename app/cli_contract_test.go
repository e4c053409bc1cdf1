package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/peers"
)

// TestCLIOneLineHints: wrong usage is one line on stderr and exit 2.
func TestCLIOneLineHints(t *testing.T) {
	for _, args := range [][]string{{}, {"peer"}} {
		var o, e bytes.Buffer
		code := app.Main(context.Background(), args, &o, &e)
		if code != 2 || o.Len() != 0 || strings.Count(e.String(), "\n") != 1 {
			t.Errorf("waappliance %v: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", args, code, o.String(), e.String())
		}
	}
}

// TestCLIErrorsInUsersWords: no Go function names in what the CLI prints.
func TestCLIErrorsInUsersWords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init")
	mustCLI(t, dir, "peer", "add", "alice")
	pub, _ := peers.GeneratePrivateKey()
	mustCLI(t, dir, "peer", "add", "bob", "--public-key", pub.Public().String())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"peer", "add", "alice"}, `waappliance peer: peer "alice" already exists` + "\n"},
		{[]string{"peer", "add", "carol", "--public-key", pub.Public().String()}, `waappliance peer: peer "carol": public key already in use by another peer` + "\n"},
		{[]string{"peer", "remove", "ghost"}, `waappliance peer: peer "ghost" not found` + "\n"},
		{[]string{"peer", "show", "ghost"}, `waappliance peer: peer "ghost" not found` + "\n"},
		{[]string{"peer", "rotate", "ghost"}, `waappliance peer: peer "ghost" not found` + "\n"},
		{[]string{"peer", "disable", "ghost"}, `waappliance peer: peer "ghost" not found` + "\n"},
	} {
		code, _, e := cliRun(t, dir, tc.args...)
		if code != 1 || e != tc.want {
			t.Errorf("waappliance %v: exit %d %q, want exit 1 %q", tc.args, code, e, tc.want)
		}
	}
}

// TestCLIRejectsBadNumbers: rates, bursts, expiries and ports out of range
// are usage errors (exit 2) with a clear message, checked before anything
// is stored.
func TestCLIRejectsBadNumbers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	fresh := filepath.Join(t.TempDir(), "fresh")
	mustCLI(t, dir, "init")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"peer", "add", "x", "--rate", "NaN"}, "invalid rate limit"},
		{[]string{"peer", "add", "x", "--rate", "Inf"}, "invalid rate limit"},
		{[]string{"peer", "add", "x", "--rate", "1e-300"}, "invalid rate limit"},
		{[]string{"peer", "add", "x", "--rate", "0"}, "invalid rate limit"},
		{[]string{"peer", "add", "x", "--burst", "0"}, "invalid rate limit"},
		{[]string{"peer", "add", "x", "--burst", "10000000"}, "invalid rate limit"},
		{[]string{"peer", "add", "x", "--send-per-minute", "0"}, "--send-per-minute"},
		{[]string{"peer", "add", "x", "--expires", "2562047h"}, "before 2262-01-01"},
		{[]string{"peer", "add", "x", "--expires", "0s"}, "positive duration"},
		{[]string{"init", "--listen-port", "0", "--state", fresh}, "--listen-port 0"},
		{[]string{"init", "--mtu", "0", "--state", fresh}, "--mtu 0"},
		{[]string{"init", "--rate", "NaN", "--state", fresh}, "invalid rate limit"},
		{[]string{"init", "--burst", "0", "--state", fresh}, "invalid rate limit"},
		{[]string{"init", "--endpoint", "a:b:51820", "--state", fresh}, "HOST:PORT"},
		{[]string{"init", "--endpoint", "vpn.example.com", "--state", fresh}, "HOST:PORT"},
		{[]string{"init", "--endpoint", "vpn.example.com:0", "--state", fresh}, "port"},
	} {
		code, _, e := cliRun(t, dir, tc.args...)
		if code != 2 || !strings.Contains(e, tc.want) || strings.Count(e, "\n") != 1 {
			t.Errorf("waappliance %v: exit %d %q; want exit 2, one line containing %q", tc.args, code, e, tc.want)
		}
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Error("a refused init created its state dir")
	}
	_, list := mustCLI(t, dir, "peer", "list")
	if strings.Contains(list, "x ") {
		t.Errorf("a refused add stored a peer:\n%s", list)
	}
	// Within range, and the defaults come from init, not from the help text.
	other := filepath.Join(t.TempDir(), "other")
	mustCLI(t, other, "init", "--rate", "5", "--burst", "9")
	mustCLI(t, other, "peer", "add", "y")
	mustCLI(t, other, "peer", "add", "z", "--rate", "0.01", "--burst", "1000000", "--expires", "1000000h")
	_, list = mustCLI(t, other, "peer", "list")
	if !strings.Contains(list, "5/9") || !strings.Contains(list, "0.01/1000000") {
		t.Errorf("peer list:\n%s", list)
	}
	var o, e bytes.Buffer
	app.Main(context.Background(), []string{"peer", "add", "--help"}, &o, &e)
	if help := e.String(); strings.Contains(help, " 20") || strings.Contains(help, " 40") || !strings.Contains(help, "default: the appliance's") {
		t.Errorf("peer add --help hard-codes defaults:\n%s", help)
	}
}

// TestStateDirModesOnlyForInitAndUp: commands that open existing state
// change no modes and refuse a directory without a database; init refuses a
// non-empty directory that is not a waappliance state.
func TestStateDirModesOnlyForInitAndUp(t *testing.T) {
	empty := t.TempDir()
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "etc-passwd-like"), []byte("x"), 0o644)
	for _, d := range []string{empty, foreign} {
		os.Chmod(d, 0o755)
		for _, args := range [][]string{{"peer", "list"}, {"peer", "remove", "x"}, {"audit"}, {"serve"}, {"doctor"}} {
			code, _, e := cliRun(t, d, args...)
			if code != 1 || (args[0] != "doctor" && !strings.Contains(e, "not initialized")) {
				t.Errorf("waappliance %v --state %s: exit %d %q", args, d, code, e)
			}
			if st, _ := os.Stat(d); st.Mode().Perm() != 0o755 {
				t.Fatalf("waappliance %v changed the mode of %s to %v", args, d, st.Mode().Perm())
			}
		}
	}
	code, _, e := cliRun(t, foreign, "init")
	if code != 1 || !strings.Contains(e, "not empty and holds no waappliance state") || strings.Count(e, "\n") != 1 {
		t.Errorf("init in a foreign directory: exit %d %q", code, e)
	}
	if st, _ := os.Stat(foreign); st.Mode().Perm() != 0o755 {
		t.Fatalf("init changed the mode of a foreign directory to %v", st.Mode().Perm())
	}
	mustCLI(t, empty, "init")
	if st, _ := os.Stat(empty); st.Mode().Perm() != 0o700 {
		t.Fatalf("init left an empty directory at %v", st.Mode().Perm())
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUpSetsEndpointOnInitializedState: `up --endpoint` (and
// --listen-port) update an initialized state with a one-line notice; a
// different --subnet or --mtu is refused; the placeholder endpoint carries
// the real listen port.
func TestUpSetsEndpointOnInitializedState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	port := freeUDPPort(t)
	e, _ := mustCLI(t, dir, "init", "--listen-port", strconv.Itoa(port))
	placeholder := "<your-server>:" + strconv.Itoa(port)
	if !strings.Contains(e, placeholder) || !strings.Contains(e, "set --endpoint HOST:PORT") {
		t.Errorf("init warning: %q", e)
	}
	e, cfg := mustCLI(t, dir, "peer", "add", "a")
	if !strings.Contains(cfg, "Endpoint = "+placeholder+"\n") || !strings.Contains(e, "set --endpoint HOST:PORT") {
		t.Errorf("placeholder config:\n%s\nstderr %q", cfg, e)
	}
	for _, args := range [][]string{{"up", "--subnet", "10.5.0.0/24"}, {"up", "--mtu", "1400"}} {
		code, _, e := cliRun(t, dir, args...)
		if code != 1 || !strings.Contains(e, "fixed at init") {
			t.Errorf("waappliance %v: exit %d %q, want exit 1 'fixed at init'", args, code, e)
		}
	}
	code, _, e := cliRun(t, dir, "up", "--endpoint", "vpn example:1")
	if code != 2 {
		t.Errorf("up with a bad endpoint: exit %d %q", code, e)
	}

	port2 := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	upArgs := engineArgs(t, []string{"up", "--state", dir, "--endpoint", "vpn.example.com:" + strconv.Itoa(port2), "--listen-port", strconv.Itoa(port2),
		"--subnet", peers.DefaultSubnet.String()})
	go func() { done <- app.Main(ctx, upArgs, &stdout, &stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "appliance up") && !strings.Contains(stderr.String(), "level=ERROR") {
		if time.Now().After(deadline) {
			t.Fatalf("up did not start: %s", stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("up exited %d: %s", code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("up: exit %d: %s", code, stderr.String())
	}
	var notices []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "updated ") {
			notices = append(notices, line)
		}
	}
	want := "updated " + dir + ": endpoint vpn.example.com:" + strconv.Itoa(port2) + " (was none), listen port " + strconv.Itoa(port2) + " (was " + strconv.Itoa(port) + ")"
	if len(notices) != 1 || notices[0] != want {
		t.Errorf("notices %q, want one: %q", notices, want)
	}
	if !strings.Contains(stderr.String(), "udp_port="+strconv.Itoa(port2)) {
		t.Errorf("up did not serve on the new port:\n%s", stderr.String())
	}
	_, cfg = mustCLI(t, dir, "peer", "config", "a")
	if !strings.Contains(cfg, "Endpoint = vpn.example.com:"+strconv.Itoa(port2)+"\n") {
		t.Errorf("config after up --endpoint:\n%s", cfg)
	}
}

// TestSetChangesSettings: `set` changes the endpoint, port and default limits
// of an initialized state without serving, says what changed, refuses the
// fixed settings and an empty call, and peer configs carry the new endpoint.
func TestSetChangesSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if code, _, e := cliRun(t, dir, "set", "--endpoint", "vpn.example.com:51820"); code != 1 || !strings.Contains(e, "not initialized") {
		t.Errorf("set before init: exit %d %q, want 1 'not initialized'", code, e)
	}
	mustCLI(t, dir, "init")
	mustCLI(t, dir, "peer", "add", "a")
	if code, _, e := cliRun(t, dir, "set"); code != 2 || !strings.Contains(e, "nothing to set") {
		t.Errorf("bare set: exit %d %q, want 2 'nothing to set'", code, e)
	}
	if code, _, e := cliRun(t, dir, "set", "--endpoint", "no port"); code != 2 {
		t.Errorf("set with a bad endpoint: exit %d %q, want 2", code, e)
	}
	if code, _, e := cliRun(t, dir, "set", "--mtu", "1400"); code != 1 || !strings.Contains(e, "fixed at init") {
		t.Errorf("set --mtu: exit %d %q, want 1 'fixed at init'", code, e)
	}
	e, _ := mustCLI(t, dir, "set", "--endpoint", "vpn.example.com:4000", "--listen-port", "4000", "--rate", "5")
	want := "updated " + dir + ": endpoint vpn.example.com:4000 (was none), listen port 4000 (was 51820), default rate 5 (was 20)\n"
	if e != want {
		t.Errorf("set said %q, want %q", e, want)
	}
	if e, _ := mustCLI(t, dir, "set", "--endpoint", "vpn.example.com:4000"); !strings.Contains(e, "already has these settings") {
		t.Errorf("repeated set said %q", e)
	}
	_, cfg := mustCLI(t, dir, "peer", "config", "a")
	if !strings.Contains(cfg, "Endpoint = vpn.example.com:4000\n") {
		t.Errorf("config after set:\n%s", cfg)
	}
	mustCLI(t, dir, "peer", "add", "b")
	_, show := mustCLI(t, dir, "peer", "show", "b")
	if !strings.Contains(show, `"rate": 5,`) {
		t.Errorf("peer b did not get the new default rate 5:\n%s", show)
	}
}
