package app_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// firstHandshake bounds the first request of a new client. WireGuard
// retries a dropped handshake initiation only after 5 s (REKEY_TIMEOUT), so
// a request that completes within 4 s proves the device had the peer when
// the client first knocked: the change was in force when the CLI returned.
const firstHandshake = 4 * time.Second

// whoamiWithin sends whoami through cl, failing the test unless it answers
// 200 as want within firstHandshake.
func whoamiWithin(t *testing.T, cl *wgclient.Client, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), firstHandshake)
	defer cancel()
	r, err := cl.Do(ctx, "GET", "/v1/whoami", nil)
	if err != nil {
		t.Fatalf("whoami as %s right after the CLI returned: %v (the device did not have the peer yet?)", want, err)
	}
	var who struct{ Name string }
	if r.Status != 200 || r.JSON(&who) != nil || who.Name != want {
		t.Fatalf("whoami as %s: %d %s", want, r.Status, r.Body)
	}
}

// privateKeyOf reads the private key out of a printed wg-quick config.
func privateKeyOf(t *testing.T, cfg string) peers.Key {
	t.Helper()
	for _, line := range strings.Split(cfg, "\n") {
		if v, ok := strings.CutPrefix(line, "PrivateKey = "); ok {
			k, err := peers.ParseKey(v)
			if err != nil {
				t.Fatalf("config private key %q: %v", v, err)
			}
			return k
		}
	}
	t.Fatalf("no PrivateKey line in:\n%s", cfg)
	return peers.Key{}
}

type auditRow struct {
	Peer, Method, Route, Target string
	Status                      int
	Count                       int `json:"count"`
}

// localAudit is what GET /v1/audit shows of the CLI's requests.
func localAudit(t *testing.T, admin *wgclient.Client) []auditRow {
	t.Helper()
	var out struct{ Entries []auditRow }
	if r := do(t, admin, "GET", "/v1/audit?peer=local-cli&limit=1000", nil); r.Status != 200 || r.JSON(&out) != nil {
		t.Fatalf("GET /v1/audit: %d %s", r.Status, r.Body)
	}
	return out.Entries
}

// TestCLIWritesThroughServingAppliance: while an appliance serves, every
// mutating peer command and set go through its control socket. Each is in
// the serving registry and on the device when the command returns (no
// Sync, no poll: the in-process registry is never refreshed here), and
// each appears in GET /v1/audit as local-cli. The printed configs are the
// direct path's: the generated key once, the placeholder with
// --public-key, the QR on stderr.
func TestCLIWritesThroughServingAppliance(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	get := func(name string) peers.Peer {
		t.Helper()
		p, err := ta.Peers().Get(name)
		if err != nil {
			t.Fatalf("%s is not in the serving registry right after the command: %v", name, err)
		}
		return p
	}

	// peer add: the generated private key is printed this once, and the
	// first handshake with it works.
	stderr, cfg := mustCLI(t, ta.dir, "peer", "add", "alice", "--scopes", "read", "--sessions", "shop")
	if !strings.Contains(cfg, "Endpoint = 127.0.0.1:51820\n") || strings.Contains(cfg, peers.PrivateKeyPlaceholder) {
		t.Fatalf("peer add config:\n%s", cfg)
	}
	if strings.Contains(stderr, "PrivateKey") || stderr != "" {
		t.Errorf("peer add stderr %q, want nothing", stderr)
	}
	alice := get("alice")
	if strings.Join(alice.Sessions, ",") != "shop" || !alice.Has(peers.ScopeRead) || alice.Has(peers.ScopeAdmin) {
		t.Errorf("alice as added: %+v", alice)
	}
	aliceKey := privateKeyOf(t, cfg)
	aliceCl := ta.client(t, peers.Created{Peer: alice, PrivateKey: aliceKey})
	whoamiWithin(t, aliceCl, "alice")

	// peer add --public-key --qr: the placeholder, and a QR of the config.
	own, _ := peers.GeneratePrivateKey()
	stderr, cfg = mustCLI(t, ta.dir, "peer", "add", "bob", "--public-key", own.Public().String(), "--qr", "--expires", "24h")
	if !strings.Contains(cfg, "PrivateKey = "+peers.PrivateKeyPlaceholder) {
		t.Errorf("own-key config lacks the placeholder:\n%s", cfg)
	}
	if qr, _ := peers.TerminalQR(cfg); stderr != qr {
		t.Errorf("--qr printed %q, want the config's QR", stderr)
	}
	if bob := get("bob"); bob.PublicKey != own.Public() || bob.ExpiresAt.IsZero() {
		t.Errorf("bob as added: %+v", bob)
	}
	whoamiWithin(t, ta.client(t, peers.Created{Peer: get("bob"), PrivateKey: own}), "bob")

	// peer set: the new limits are the registry's at once.
	if e, _ := mustCLI(t, ta.dir, "peer", "set", "alice", "--rate", "3", "--burst", "4", "--max-conns", "5"); e != "updated peer alice\n" {
		t.Errorf("peer set said %q", e)
	}
	if p := get("alice"); p.Rate != 3 || p.Burst != 4 || p.MaxConns != 5 || p.SendPerMinute != alice.SendPerMinute {
		t.Errorf("alice after set: rate %g burst %d max_conns %d send/min %d", p.Rate, p.Burst, p.MaxConns, p.SendPerMinute)
	}

	// peer disable: the key is off the device and its connections are
	// closed by the time the command returns.
	if ta.OpenConns(alice.Addr) == 0 {
		t.Fatal("alice holds no keep-alive connection before disable")
	}
	if e, _ := mustCLI(t, ta.dir, "peer", "disable", "alice"); e != "disabled peer alice\n" {
		t.Errorf("peer disable said %q", e)
	}
	if !get("alice").Disabled || ta.OpenConns(alice.Addr) != 0 {
		t.Errorf("right after disable: disabled %v, %d open connections", get("alice").Disabled, ta.OpenConns(alice.Addr))
	}
	aliceCl.Close()
	if e, _ := mustCLI(t, ta.dir, "peer", "enable", "alice"); e != "enabled peer alice\n" {
		t.Errorf("peer enable said %q", e)
	}
	// A fresh client with the same key, as a phone toggling its tunnel,
	// gets through at once.
	whoamiWithin(t, ta.client(t, peers.Created{Peer: get("alice"), PrivateKey: aliceKey}), "alice")

	// peer rotate: a new generated key that works at once; the old
	// connections are gone.
	_, rot := mustCLI(t, ta.dir, "peer", "rotate", "alice")
	rotated := get("alice")
	if rotated.PublicKey == alice.PublicKey || privateKeyOf(t, rot).Public() != rotated.PublicKey {
		t.Fatal("rotate printed no config with the new key")
	}
	whoamiWithin(t, ta.client(t, peers.Created{Peer: rotated, PrivateKey: privateKeyOf(t, rot)}), "alice")

	// peer remove: gone from the registry and the device at once.
	if e, _ := mustCLI(t, ta.dir, "peer", "remove", "alice"); e != "removed peer alice\n" {
		t.Errorf("peer remove said %q", e)
	}
	if _, err := ta.Peers().Get("alice"); !errors.Is(err, peers.ErrNotFound) || ta.OpenConns(alice.Addr) != 0 {
		t.Errorf("right after remove: %v, %d open connections", err, ta.OpenConns(alice.Addr))
	}

	// set: the endpoint, the default rate and the API hosts apply at once.
	e, _ := mustCLI(t, ta.dir, "set", "--endpoint", "vpn.example.com:4000", "--rate", "5", "--api-host", "WA.example.com")
	if want := "updated " + ta.dir + ": endpoint vpn.example.com:4000 (was 127.0.0.1:51820), default rate 5 (was 20), API hosts wa.example.com (was none)\n"; e != want {
		t.Errorf("set said %q, want %q", e, want)
	}
	if s := ta.Peers().Server(); s.Endpoint != "vpn.example.com:4000" || s.DefaultRate != 5 {
		t.Errorf("serving settings right after set: endpoint %q rate %g", s.Endpoint, s.DefaultRate)
	}
	if r := doH(t, admin, "GET", "/v1/whoami", nil, map[string]string{"Host": "wa.example.com"}); r.Status != 200 {
		t.Errorf("Host wa.example.com right after set: %d", r.Status)
	}
	if e, _ := mustCLI(t, ta.dir, "set", "--endpoint", "vpn.example.com:4000"); e != ta.dir+" already has these settings\n" {
		t.Errorf("repeated set said %q", e)
	}
	// A new listen port is stored for the next start, and set compares
	// with what is stored, as the direct path does.
	if e, _ := mustCLI(t, ta.dir, "set", "--listen-port", "4001"); e != "updated "+ta.dir+": listen port 4001 (was 51820)\n" {
		t.Errorf("set --listen-port said %q", e)
	}
	if e, _ := mustCLI(t, ta.dir, "set", "--listen-port", "4001"); e != ta.dir+" already has these settings\n" {
		t.Errorf("repeated set --listen-port said %q", e)
	}
	if code, _, e := cliRun(t, ta.dir, "set", "--mtu", "1400"); code != 1 || !strings.Contains(e, "fixed at init") {
		t.Errorf("set --mtu while serving: exit %d %q", code, e)
	}
	_, cfg = mustCLI(t, ta.dir, "peer", "config", "bob")
	if !strings.Contains(cfg, "Endpoint = vpn.example.com:4000\n") {
		t.Errorf("config after set:\n%s", cfg)
	}
	if e, _ := mustCLI(t, ta.dir, "set", "--api-host", ""); !strings.Contains(e, "API hosts none (was wa.example.com)") {
		t.Errorf("set --api-host \"\" said %q", e)
	}
	if r := doH(t, admin, "GET", "/v1/whoami", nil, map[string]string{"Host": "wa.example.com"}); r.Status != 421 {
		t.Errorf("Host wa.example.com right after clearing: %d", r.Status)
	}

	// Every change above is in the audit log as local-cli (its status
	// written a moment after the answer).
	var rows []auditRow
	eventually(t, "the CLI's audit statuses", func() bool {
		rows = localAudit(t, admin)
		for _, r := range rows {
			if r.Status == 0 {
				return false
			}
		}
		return true
	})
	for _, want := range []auditRow{
		{"local-cli", "POST", "/v1/peers", "", 201, 0},
		{"local-cli", "PATCH", "/v1/peers/{name}", "alice", 200, 0},
		{"local-cli", "POST", "/v1/peers/{name}/rotate", "alice", 200, 0},
		{"local-cli", "DELETE", "/v1/peers/{name}", "alice", 204, 0},
		{"local-cli", "PATCH", "/v1/settings", "", 200, 0},
	} {
		found := false
		for _, r := range rows {
			r.Count = 0
			found = found || r == want
		}
		if !found {
			t.Errorf("audit lacks %+v; local-cli rows: %+v", want, rows)
		}
	}
	// Two adds, three PATCHes of alice (set, disable, enable), rotate,
	// remove, three PATCHes of the settings (the repeated sets and set
	// --mtu change nothing and send none).
	if len(rows) != 2+3+1+1+3 {
		t.Errorf("%d local-cli audit rows, want 10: %+v", len(rows), rows)
	}
}

// TestCLIErrorsSameServedOrNot: a failing peer command prints the same
// line and exits 1 whether it writes the store or goes through the serving
// appliance, and the served attempts are audited.
func TestCLIErrorsSameServedOrNot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--endpoint", "127.0.0.1:51820")
	mustCLI(t, dir, "peer", "add", "alice")
	pub, _ := peers.GeneratePrivateKey()
	mustCLI(t, dir, "peer", "add", "bob", "--public-key", pub.Public().String())
	cases := [][]string{
		{"peer", "add", "alice"},
		{"peer", "add", "carol", "--public-key", pub.Public().String()},
		{"peer", "add", "dave", "--sessions", "Bad_Name"},
		{"peer", "remove", "ghost"},
		{"peer", "remove", "GHOST"},
		{"peer", "rotate", "ghost"},
		{"peer", "disable", "ghost"},
		{"peer", "enable", "ghost"},
		{"peer", "set", "ghost", "--rate", "3"},
		{"set", "--subnet", "10.9.0.0/24"},
	}
	direct := make([]string, len(cases))
	for i, args := range cases {
		code, _, e := cliRun(t, dir, args...)
		if code != 1 {
			t.Fatalf("waappliance %v (direct): exit %d %q, want 1", args, code, e)
		}
		direct[i] = e
	}
	if want := `waappliance peer: peer "carol": public key already in use by another peer` + "\n"; direct[1] != want {
		t.Errorf("direct wording %q, want %q", direct[1], want)
	}
	ta := serveWith(t, dir, shortAuditInterval)
	for i, args := range cases {
		code, _, e := cliRun(t, dir, args...)
		if code != 1 || e != direct[i] {
			t.Errorf("waappliance %v: served: exit %d %q; direct: exit 1 %q", args, code, e, direct[i])
		}
	}
	// Refusals are counted into aggregated rows (shortAuditInterval).
	// Every peer case but the invalid name (refused before any request)
	// reached the API; set --subnet is refused by the CLI after a GET.
	admin := ta.client(t, ta.addPeer(t, "admin", peers.ScopeAdmin))
	refused := func() int {
		n := 0
		for _, r := range localAudit(t, admin) {
			if r.Status >= 400 {
				n += r.Count
			}
		}
		return n
	}
	eventually(t, "8 refused local-cli requests audited", func() bool { return refused() == 8 })
	time.Sleep(100 * time.Millisecond) // two more intervals: nothing else comes
	if n := refused(); n != 8 {
		t.Errorf("%d refused local-cli requests audited, want 8", n)
	}
}

// TestCLIStaleControlSocket: a control socket file that nobody listens on
// (the appliance was killed) is not a serving appliance: the commands
// write the store directly, as with no socket at all, and session commands
// say that nothing runs.
func TestCLIStaleControlSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init")
	path := filepath.Join(dir, "control.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no stale socket file: %v", err)
	}
	_, cfg := mustCLI(t, dir, "peer", "add", "alice", "--scopes", "admin")
	if !strings.Contains(cfg, "PrivateKey = ") || strings.Contains(cfg, peers.PrivateKeyPlaceholder) {
		t.Errorf("peer add config:\n%s", cfg)
	}
	mustCLI(t, dir, "peer", "set", "alice", "--rate", "3")
	mustCLI(t, dir, "peer", "disable", "alice")
	mustCLI(t, dir, "peer", "enable", "alice")
	mustCLI(t, dir, "peer", "rotate", "alice")
	mustCLI(t, dir, "set", "--endpoint", "vpn.example.com:4000")
	if code, _, e := cliRun(t, dir, "peer", "remove", "ghost"); code != 1 || e != `waappliance peer: peer "ghost" not found`+"\n" {
		t.Errorf("remove ghost: exit %d %q", code, e)
	}
	if code, _, e := cliRun(t, dir, "session", "list"); code != 1 || !strings.Contains(e, "not running") {
		t.Errorf("session list with a stale socket: exit %d %q", code, e)
	}
	_, list := mustCLI(t, dir, "peer", "list")
	if !strings.Contains(list, "alice") || !strings.Contains(list, "3/") {
		t.Errorf("peer list after direct writes:\n%s", list)
	}
	_, cfg = mustCLI(t, dir, "peer", "config", "alice")
	if !strings.Contains(cfg, "Endpoint = vpn.example.com:4000\n") {
		t.Errorf("config after direct set:\n%s", cfg)
	}
	// Direct writes are not audited (no API request was made), and a
	// serve replaces the stale socket.
	ta := serveState(t, dir)
	c := ta.addPeer(t, "admin", peers.ScopeAdmin)
	if rows := localAudit(t, ta.client(t, c)); len(rows) != 0 {
		t.Errorf("direct writes audited: %+v", rows)
	}
}
