package peers

import (
	"context"
	"flag"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/internal/pgtest"
	"waappliance/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func mustKey(t testing.TB, b byte) Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestRenderConfigGolden(t *testing.T) {
	srv := Server{PrivateKey: mustKey(t, 1), ListenPort: 51820, Subnet: netip.MustParsePrefix("10.77.0.0/24"), MTU: 1420, Endpoint: "vpn.example.org:51820"}
	p := Peer{Name: "phone", PresharedKey: mustKey(t, 3), Addr: netip.MustParseAddr("10.77.0.2")}
	cases := []struct {
		golden string
		srv    Server
		priv   Key
		ph     bool
	}{
		{"generated.conf", srv, mustKey(t, 2), false},
		{"own-key.conf", srv, Key{}, false},
		{"no-endpoint.conf", func() Server { s := srv; s.Endpoint = ""; return s }(), mustKey(t, 2), true},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			got, ph := RenderConfig(tc.srv, p, tc.priv)
			if ph != tc.ph {
				t.Errorf("placeholder = %v, want %v", ph, tc.ph)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				os.WriteFile(path, []byte(got), 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("config differs from %s:\n%s", path, got)
			}
			if !strings.Contains(got, "AllowedIPs = 10.77.0.1/32\n") {
				t.Error("not a split tunnel")
			}
		})
	}
}

// openStore opens a fresh database of the engine dsn names (see
// pgtest.ForEngines), closed when t ends.
func openStore(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.OpenDSN(context.Background(), dsn, store.Options{Dir: filepath.Join(t.TempDir(), "state"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// reopen opens a second handle on db's database, as another process (the
// CLI) does, closed when t ends.
func reopen(t testing.TB, db *store.DB, dsn string) *store.DB {
	t.Helper()
	var db2 *store.DB
	var err error
	if dsn == "" {
		db2, err = store.OpenPath(context.Background(), db.Path)
	} else {
		db2, err = store.OpenDSN(context.Background(), dsn, store.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	return db2
}

// openDB is openStore with an initialized server identity.
func openDB(t testing.TB, dsn string) (*store.DB, Server) {
	t.Helper()
	ctx := context.Background()
	db := openStore(t, dsn)
	s, err := InitServer(ctx, db, Server{Subnet: netip.MustParsePrefix("10.9.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

// TestAddressesUniqueUnderConcurrentAdds races adds from two registries on
// separate database handles (two processes, as CLI and serve are).
func TestAddressesUniqueUnderConcurrentAdds(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db, s := openDB(t, dsn)
		ctx := context.Background()
		db2 := reopen(t, db, dsn)
		r1, _ := NewRegistry(ctx, db, s, nil)
		r2, _ := NewRegistry(ctx, db2, s, nil)
		const n = 60
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := r1
				if i%2 == 1 {
					r = r2
				}
				_, err := r.Add(ctx, AddOptions{Name: "p" + string(rune('a'+i/26)) + string(rune('a'+i%26))})
				errs <- err
			}(i)
		}
		waitErrs(t, &wg, errs)
		r1.Refresh(ctx)
		uniqueAddrs(t, r1, n)
	})
}

// uniqueAddrs fails the test unless r holds want peers, each with its own
// host address of the subnet (not the appliance's).
func uniqueAddrs(t testing.TB, r *Registry, want int) {
	t.Helper()
	srv := r.Server()
	seen := map[netip.Addr]string{}
	for _, p := range r.List() {
		if other, dup := seen[p.Addr]; dup {
			t.Fatalf("%s and %s share %s", p.Name, other, p.Addr)
		}
		if p.Addr == srv.TunnelAddr() || !srv.Subnet.Contains(p.Addr) {
			t.Fatalf("%s got %s", p.Name, p.Addr)
		}
		seen[p.Addr] = p.Name
	}
	if len(seen) != want {
		t.Fatalf("%d peers, want %d", len(seen), want)
	}
}

func TestSubnetFullAndReuse(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := openStore(t, dsn)
		s, err := InitServer(ctx, db, Server{Subnet: netip.MustParsePrefix("10.1.0.0/29")})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewRegistry(ctx, db, s, nil)
		// /29: .0 network, .1 appliance, .7 broadcast → .2-.6 for peers.
		for i := 2; i <= 6; i++ {
			c, err := r.Add(ctx, AddOptions{Name: "p" + string(rune('0'+i))})
			if err != nil {
				t.Fatal(err)
			}
			if c.Peer.Addr != netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}) {
				t.Fatalf("got %s", c.Peer.Addr)
			}
		}
		if _, err := r.Add(ctx, AddOptions{Name: "late"}); err == nil || !strings.Contains(err.Error(), ErrSubnetFull.Error()) {
			t.Fatalf("want subnet full, got %v", err)
		}
		if err := r.Remove(ctx, "p4"); err != nil {
			t.Fatal(err)
		}
		c, err := r.Add(ctx, AddOptions{Name: "late"})
		if err != nil || c.Peer.Addr.String() != "10.1.0.4" {
			t.Fatalf("freed address not reused: %v %v", c.Peer.Addr, err)
		}
	})
}

func TestRegistryRejects(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db, s := openDB(t, dsn)
		ctx := context.Background()
		r, _ := NewRegistry(ctx, db, s, nil)
		c, err := r.Add(ctx, AddOptions{Name: "one"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []AddOptions{
			{Name: "one"},
			{Name: "two", PublicKey: c.Peer.PublicKey},
			{Name: "three", PublicKey: s.PublicKey()},
			{Name: "-bad"},
			{Name: strings.Repeat("a", 33)},
			{Name: "ok", Rate: -1},
			{Name: "ok", Sessions: []string{"Bad Session"}},
		} {
			if _, err := r.Add(ctx, o); err == nil {
				t.Errorf("Add(%+v) succeeded", o)
			}
		}
		if len(r.List()) != 1 {
			t.Fatalf("rejected adds left peers behind: %d", len(r.List()))
		}
	})
}

func TestGenerationSeenByOtherProcess(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db, s := openDB(t, dsn)
		ctx := context.Background()
		serve, _ := NewRegistry(ctx, db, s, nil)
		db2 := reopen(t, db, dsn)
		cli, _ := NewRegistry(ctx, db2, s, nil)
		if changed, _ := serve.Refresh(ctx); changed {
			t.Fatal("refresh without a change reported one")
		}
		if _, err := cli.Add(ctx, AddOptions{Name: "x"}); err != nil {
			t.Fatal(err)
		}
		changed, err := serve.Refresh(ctx)
		if err != nil || !changed {
			t.Fatalf("refresh after another process's add: %v %v", changed, err)
		}
		if _, err := serve.Get("x"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLimitersInjectedClock(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiters(func() time.Time { return now })
	a, b := mustKey(t, 1), mustKey(t, 2)
	for i := 0; i < 5; i++ {
		if d := l.Allow(a, 1, 5); !d.OK {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	d := l.Allow(a, 1, 5)
	if d.OK || d.RetryAfter != time.Second || d.Remaining != 0 {
		t.Fatalf("after burst: %+v", d)
	}
	if !l.Allow(b, 1, 5).OK {
		t.Fatal("another key was limited")
	}
	now = now.Add(time.Second)
	if !l.Allow(a, 1, 5).OK {
		t.Fatal("token not refilled after 1 s")
	}
	// A raised limit refills at the new rate.
	l.Allow(a, 100, 50)
	now = now.Add(100 * time.Millisecond)
	if d := l.Allow(a, 100, 50); !d.OK || d.Remaining < 8 {
		t.Fatalf("new rate not applied: %+v", d)
	}
}

func TestServerValidate(t *testing.T) {
	bad := []Server{
		{ListenPort: 70000},
		{MTU: 100},
		{Subnet: netip.MustParsePrefix("fd00::/64")},
		{Subnet: netip.MustParsePrefix("10.0.0.0/31")},
		{Endpoint: "nohost"},
		{Endpoint: "host:0"},
		{Endpoint: "a:b:51820"},
		{Endpoint: "host:+1"},
		{Endpoint: "host:65536"},
		{Endpoint: ":51820"},
		{Endpoint: "[::1:51820"},
		{Endpoint: "2001:db8::1:51820"},
		{Endpoint: "999.1.1.1:51820"},
		{Endpoint: "-bad.example:51820"},
		{Endpoint: "host name:51820"},
		{Endpoint: "host#x:51820"},
		{DefaultRate: math.NaN()},
		{DefaultRate: math.Inf(1)},
		{DefaultBurst: -1},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", s)
		}
	}
	for _, ep := range []string{"vpn.example.com:51820", "vpn.example.com.:1", "203.0.113.7:51820", "[2001:db8::1]:65535", "my_host:51820"} {
		s := Server{Endpoint: ep}
		if err := s.Validate(); err != nil {
			t.Errorf("endpoint %q: %v", ep, err)
		}
	}
	s := Server{Endpoint: "[2001:db8::1]:51820"}
	if err := s.Validate(); err != nil || s.TunnelAddr().String() != "10.77.0.1" {
		t.Fatalf("defaults: %v %v", err, s.TunnelAddr())
	}
}

func TestInitTwiceRefused(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db, _ := openDB(t, dsn)
		if _, err := InitServer(context.Background(), db, Server{}); err != ErrAlreadyInitialized {
			t.Fatalf("second init: %v", err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "", "abc", "====", strings.Repeat("/", 44)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("round trip %q -> %q", s, k.String())
		}
		if k2, err := ParseHexKey(k.Hex()); err != nil || k2 != k {
			t.Fatal("hex round trip")
		}
	})
}

func FuzzNameAndScopes(f *testing.F) {
	for _, s := range []string{"admin", "a-b", "-a", "A", "send,read", "send,,read", "root", strings.Repeat("x", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) {
			if len(s) > 32 || s[0] == '-' || strings.ToLower(s) != s || strings.ContainsAny(s, " ,\n/") {
				t.Fatalf("ValidName(%q) = true", s)
			}
		}
		sc, err := ParseScopes(s)
		if err == nil {
			for _, x := range sc {
				if x != ScopeAdmin && x != ScopeSessions && x != ScopeSend && x != ScopeRead {
					t.Fatalf("ParseScopes(%q) returned %q", s, x)
				}
			}
		}
	})
}

// FuzzRenderConfig: whatever the stored name and endpoint, the rendered
// config keeps its shape — one [Interface], one [Peer], no injected lines.
func FuzzRenderConfig(f *testing.F) {
	f.Add("phone", "vpn.example.org:51820")
	f.Add("a", "")
	f.Fuzz(func(t *testing.T, name, ep string) {
		if !ValidName(name) {
			return
		}
		s := Server{Endpoint: ep}
		if s.Validate() != nil {
			return
		}
		cfg, _ := RenderConfig(s, Peer{Name: name, Addr: netip.MustParseAddr("10.77.0.2")}, Key{})
		if strings.Count(cfg, "[Interface]") != 1 || strings.Count(cfg, "[Peer]") != 1 || strings.Count(cfg, "\n") != 12 {
			t.Fatalf("config shape broken by name %q endpoint %q:\n%s", name, ep, cfg)
		}
	})
}

// waitErrs waits for wg's goroutines, then fails the test on the first error
// they sent to errs.
func waitErrs(t testing.TB, wg *sync.WaitGroup, errs chan error) {
	t.Helper()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
