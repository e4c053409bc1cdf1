package peers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waappliance/internal/pgtest"
)

// twoProcesses returns a serving registry and a CLI registry on separate
// database handles, as `serve` and a `waappliance peer ...` command are.
func twoProcesses(t *testing.T, dsn string) (serve, cli *Registry, s Server) {
	t.Helper()
	db, s := openDB(t, dsn)
	ctx := context.Background()
	db2 := reopen(t, db, dsn)
	serve, err := NewRegistry(ctx, db, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = NewRegistry(ctx, db2, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return serve, cli, s
}

// TestUpdateDoesNotUndoAnotherProcessesChange: a PATCH served from a
// snapshot that has not yet seen a CLI `peer disable` must not re-enable
// the peer.
func TestUpdateDoesNotUndoAnotherProcessesChange(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		serve, cli, _ := twoProcesses(t, dsn)
		ctx := context.Background()
		if _, err := serve.Add(ctx, AddOptions{Name: "x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.SetDisabled(ctx, "x", true); err != nil {
			t.Fatal(err)
		}
		// serve has not refreshed: its snapshot still says enabled.
		rate := 3.0
		p, err := serve.Update(ctx, "x", UpdateOptions{Rate: &rate})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Disabled || p.Rate != 3 {
			t.Fatalf("Update returned disabled=%v rate=%g, want disabled with rate 3", p.Disabled, p.Rate)
		}
		cli.Refresh(ctx)
		if q, _ := cli.Get("x"); !q.Disabled || q.Rate != 3 {
			t.Fatalf("stored: disabled=%v rate=%g, want disabled with rate 3", q.Disabled, q.Rate)
		}
	})
}

// TestConcurrentUpdatesKeepEachOthersFields races updates of different
// fields from two processes; none may be lost.
func TestConcurrentUpdatesKeepEachOthersFields(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		serve, cli, _ := twoProcesses(t, dsn)
		ctx := context.Background()
		if _, err := serve.Add(ctx, AddOptions{Name: "x"}); err != nil {
			t.Fatal(err)
		}
		cli.Refresh(ctx)
		rate, burst, spm := 7.0, 9, 11
		scopes := []Scope{ScopeSend}
		sessions := []string{"shop"}
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		yes := true
		updates := []UpdateOptions{{Rate: &rate}, {Burst: &burst}, {SendPerMinute: &spm}, {Scopes: &scopes},
			{Sessions: &sessions}, {ExpiresAt: &exp}, {Disabled: &yes}}
		for round := 0; round < 5; round++ {
			var wg sync.WaitGroup
			errs := make(chan error, len(updates))
			for i, o := range updates {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := serve
					if i%2 == 1 {
						r = cli
					}
					_, err := r.Update(ctx, "x", o)
					errs <- err
				}()
			}
			waitErrs(t, &wg, errs)
			serve.Refresh(ctx)
			p, _ := serve.Get("x")
			if p.Rate != rate || p.Burst != burst || p.SendPerMinute != spm || !slices.Equal(p.Scopes, scopes) ||
				!slices.Equal(p.Sessions, sessions) || !p.ExpiresAt.Equal(exp) || !p.Disabled {
				t.Fatalf("round %d lost an update: %+v", round, p)
			}
			// Reset for the next round.
			r0, b0, s0, e0, no := 1.0, 1, 1, time.Time{}, false
			sc0, ss0 := []Scope{}, []string{}
			if _, err := serve.Update(ctx, "x", UpdateOptions{Rate: &r0, Burst: &b0, SendPerMinute: &s0, Scopes: &sc0, Sessions: &ss0, ExpiresAt: &e0, Disabled: &no}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestExpiryBounds(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db, s := openDB(t, dsn)
		ctx := context.Background()
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		r, _ := NewRegistry(ctx, db, s, func() time.Time { return now })
		far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, exp := range []time.Time{far, MaxExpiry, now, now.Add(-time.Hour)} {
			if _, err := r.Add(ctx, AddOptions{Name: "a", ExpiresAt: exp}); !errors.Is(err, ErrBadExpiry) {
				t.Errorf("Add expiring %s: %v, want ErrBadExpiry", exp, err)
			}
		}
		ok := time.Date(2261, 12, 31, 0, 0, 0, 0, time.UTC)
		c, err := r.Add(ctx, AddOptions{Name: "a", ExpiresAt: ok})
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := r.Get("a"); !p.ExpiresAt.Equal(ok) || !p.Active(now) {
			t.Fatalf("expiry %s read back as %s (active %v)", ok, p.ExpiresAt, p.Active(now))
		}
		if _, err := r.Update(ctx, c.Peer.Name, UpdateOptions{ExpiresAt: &far}); !errors.Is(err, ErrBadExpiry) {
			t.Errorf("Update to %s: %v, want ErrBadExpiry", far, err)
		}
		never := time.Time{}
		if p, err := r.Update(ctx, "a", UpdateOptions{ExpiresAt: &never}); err != nil || !p.ExpiresAt.IsZero() {
			t.Errorf("clearing the expiry: %v %v", p.ExpiresAt, err)
		}
	})
}

func TestLimitValidation(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		bad := []struct {
			rate  float64
			burst int
		}{
			{math.NaN(), 1}, {math.Inf(1), 1}, {math.Inf(-1), 1}, {1e-300, 1}, {0.001, 1}, {-1, 1}, {0, 1},
			{2e6, 1}, {1, 0}, {1, -1}, {1, MaxBurst + 1},
		}
		for _, b := range bad {
			if err := ValidateLimit(b.rate, b.burst); !errors.Is(err, ErrBadLimit) {
				t.Errorf("ValidateLimit(%g, %d) = %v", b.rate, b.burst, err)
			}
		}
		for _, g := range [][2]float64{{MinRate, 1}, {MaxRate, MaxBurst}, {20, 40}} {
			if err := ValidateLimit(g[0], int(g[1])); err != nil {
				t.Errorf("ValidateLimit(%g, %g) = %v", g[0], g[1], err)
			}
		}
		db, s := openDB(t, dsn)
		ctx := context.Background()
		r, _ := NewRegistry(ctx, db, s, nil)
		if _, err := r.Add(ctx, AddOptions{Name: "nan", Rate: math.NaN()}); !errors.Is(err, ErrBadLimit) {
			t.Errorf("Add with rate NaN: %v, want ErrBadLimit", err)
		}
		r.Add(ctx, AddOptions{Name: "x"})
		tiny := 1e-300
		if _, err := r.Update(ctx, "x", UpdateOptions{Rate: &tiny}); !errors.Is(err, ErrBadLimit) {
			t.Errorf("Update rate 1e-300: %v, want ErrBadLimit", err)
		}
	})
}

func TestRateLimitDurationsDoNotOverflow(t *testing.T) {
	for _, sec := range []float64{1e300, math.Inf(1), 1e10, float64(math.MaxInt64)} {
		if d := durationOf(sec); d <= 0 {
			t.Errorf("durationOf(%g) = %v", sec, d)
		}
	}
	for _, sec := range []float64{math.NaN(), -1, math.Inf(-1)} {
		if d := durationOf(sec); d != 0 {
			t.Errorf("durationOf(%g) = %v", sec, d)
		}
	}
	now := time.Unix(1000, 0)
	l := NewLimiters(func() time.Time { return now })
	k := mustKey(t, 9)
	for _, rate := range []float64{1e-300, MinRate} {
		l.Allow(k, rate, 1)
		d := l.Allow(k, rate, 1)
		if d.OK || d.RetryAfter <= 0 || d.RetryAfter > 101*time.Second || d.Reset < 0 || d.Reset > 101*time.Second {
			t.Errorf("rate %g: %+v", rate, d)
		}
		l.Forget(k)
	}
}

// TestLimitersRetain: Retain drops exactly the buckets of keys that are no
// longer live.
func TestLimitersRetain(t *testing.T) {
	l := NewLimiters(nil)
	a, b, c := mustKey(t, 1), mustKey(t, 2), mustKey(t, 3)
	for _, k := range []Key{a, b, c} {
		l.Allow(k, 1, 1)
	}
	l.Retain(func(k Key) bool { return k != b })
	if n := l.Len(); n != 2 {
		t.Fatalf("%d buckets, want 2", n)
	}
	// b starts with a full bucket again; a kept its spent one.
	if !l.Allow(b, 1, 1).OK || l.Allow(a, 1, 1).OK {
		t.Fatal("Retain dropped the wrong bucket")
	}
}

// TestFreedAddressNotReusedAtOnce: a new peer gets the address after the
// last one handed out, so an address freed a moment ago comes back only
// once the rest of the subnet is used.
func TestFreedAddressNotReusedAtOnce(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := openStore(t, dsn)
		s, _ := InitServer(ctx, db, Server{Subnet: netip.MustParsePrefix("10.1.0.0/29")})
		r, _ := NewRegistry(ctx, db, s, nil)
		add := func(name, want string) {
			t.Helper()
			c, err := r.Add(ctx, AddOptions{Name: name})
			if want == "" {
				if !errors.Is(err, ErrSubnetFull) {
					t.Fatalf("add %s: %v %v, want subnet full", name, c.Peer.Addr, err)
				}
				return
			}
			if err != nil || c.Peer.Addr.String() != want {
				t.Fatalf("add %s: %v %v, want %s", name, c.Peer.Addr, err, want)
			}
		}
		add("a", "10.1.0.2")
		add("b", "10.1.0.3")
		add("c", "10.1.0.4")
		r.Remove(ctx, "b")
		add("d", "10.1.0.5") // not .3, freed a moment ago
		r.Remove(ctx, "d")
		add("e", "10.1.0.6")
		add("f", "10.1.0.3") // wrapped around: the oldest free address
		add("g", "10.1.0.5")
		add("h", "")
		// Another process continues from where this one stopped.
		r.Remove(ctx, "a")
		r.Remove(ctx, "c")
		db2 := reopen(t, db, dsn)
		r2, _ := NewRegistry(ctx, db2, s, nil)
		if c, err := r2.Add(ctx, AddOptions{Name: "i"}); err != nil || c.Peer.Addr.String() != "10.1.0.2" {
			t.Fatalf("other process: %v %v, want 10.1.0.2 (after .5, wrapping)", c.Peer.Addr, err)
		}
	})
}

// TestConcurrentAddsAfterRemovalsUseFreshAddresses races adds from two
// processes after some peers were removed: every address is unique and none
// of the freed ones is handed out while the subnet has never-used room.
func TestConcurrentAddsAfterRemovalsUseFreshAddresses(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		r1, r2, _ := twoProcesses(t, dsn)
		ctx := context.Background()
		freed := map[netip.Addr]bool{}
		var old []Created
		for i := 0; i < 20; i++ {
			c, err := r1.Add(ctx, AddOptions{Name: fmt.Sprintf("old%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			old = append(old, c)
		}
		for i := 0; i < 20; i += 2 {
			if err := r1.Remove(ctx, old[i].Peer.Name); err != nil {
				t.Fatal(err)
			}
			freed[old[i].Peer.Addr] = true
		}
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := r1
				if i%2 == 1 {
					r = r2
				}
				c, err := r.Add(ctx, AddOptions{Name: fmt.Sprintf("new%d", i)})
				if err == nil && freed[c.Peer.Addr] {
					err = fmt.Errorf("%s got %s, freed a moment ago", c.Peer.Name, c.Peer.Addr)
				}
				errs <- err
			}()
		}
		waitErrs(t, &wg, errs)
		r1.Refresh(ctx)
		uniqueAddrs(t, r1, 10+n)
	})
}

func TestUpdateServerReachesOtherProcess(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		serve, cli, _ := twoProcesses(t, dsn)
		ctx := context.Background()
		ep, port, rate, burst := "vpn.example.com:443", 443, 2.5, 7
		s, err := UpdateServer(ctx, cli.db, ServerChange{Endpoint: &ep, ListenPort: &port, DefaultRate: &rate, DefaultBurst: &burst})
		if err != nil || s.Endpoint != ep || s.ListenPort != 443 {
			t.Fatalf("UpdateServer: %+v %v", s, err)
		}
		if changed, err := serve.Refresh(ctx); err != nil || !changed {
			t.Fatalf("refresh: %v %v", changed, err)
		}
		if got := serve.Server().Endpoint; got != ep {
			t.Fatalf("serving registry renders endpoint %q, want %q", got, ep)
		}
		if c, err := serve.Add(ctx, AddOptions{Name: "new"}); err != nil || c.Peer.Rate != rate || c.Peer.Burst != burst {
			t.Fatalf("serving registry adds with %v/%v, want the new defaults %v/%v (%v)", c.Peer.Rate, c.Peer.Burst, rate, burst, err)
		}
		bad := "no port"
		if _, err := UpdateServer(ctx, cli.db, ServerChange{Endpoint: &bad}); err == nil {
			t.Fatal("bad endpoint accepted")
		}
		if l, _ := LoadServer(ctx, cli.db); l.Endpoint != ep {
			t.Fatalf("a refused change was stored: %q", l.Endpoint)
		}
	})
}

func TestPeerErrorNamesThePeer(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		db, s := openDB(t, dsn)
		ctx := context.Background()
		r, _ := NewRegistry(ctx, db, s, nil)
		r.Add(ctx, AddOptions{Name: "alice"})
		_, err := r.Add(ctx, AddOptions{Name: "alice"})
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Name != "alice" || !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate add: %#v", err)
		}
		for _, err := range []error{r.Remove(ctx, "bob"), func() error { _, err := r.Rotate(ctx, "bob"); return err }(),
			func() error { _, err := r.SetDisabled(ctx, "bob", true); return err }(), func() error { _, err := r.Get("bob"); return err }()} {
			if !errors.As(err, &pe) || pe.Name != "bob" || !errors.Is(err, ErrNotFound) {
				t.Errorf("missing peer: %#v", err)
			}
		}
	})
}

// TestAPIHosts: names are checked and normalized before they are stored,
// and a serving registry sees a change made by another process.
func TestAPIHosts(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		for _, tc := range []struct{ in, want string }{
			{"", ""},
			{"WA.Example.COM.", "wa.example.com"},
			{" a.example , b.example,a.example ", "a.example,b.example"},
			{"192.168.1.5", "192.168.1.5"},
			{"[2001:DB8::1]", "2001:db8::1"},
			{"2001:db8::1", "2001:db8::1"},
			{"localhost", "localhost"},
		} {
			got, err := ParseAPIHosts(tc.in)
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Errorf("ParseAPIHosts(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		}
		for _, in := range []string{"wa.example.com:80", "*.example.com", "10.77.0.1:80", "[::1]:80", "fe80::1%eth0", "bad name", "a..b", "-x.example", "x\x00y", "1.2.3", "ex\u00e4mple.com"} {
			if got, err := ParseAPIHosts(in); !errors.Is(err, ErrBadAPIHost) {
				t.Errorf("ParseAPIHosts(%q) = %q, %v; want ErrBadAPIHost", in, got, err)
			}
		}

		serve, cli, _ := twoProcesses(t, dsn)
		ctx := context.Background()
		hosts := []string{"WA.example.com", "wa.example.com."}
		if _, err := UpdateServer(ctx, cli.db, ServerChange{APIHosts: &hosts}); err != nil {
			t.Fatal(err)
		}
		serve.Refresh(ctx)
		if got := serve.Server().APIHosts; strings.Join(got, ",") != "wa.example.com" {
			t.Fatalf("serving registry has API hosts %q", got)
		}
		bad := []string{"x.example:8080"}
		if _, err := serve.UpdateServer(ctx, ServerChange{APIHosts: &bad}); !errors.Is(err, ErrBadAPIHost) {
			t.Fatalf("bad host: %v", err)
		}
		none := []string{}
		if s, err := serve.UpdateServer(ctx, ServerChange{APIHosts: &none}); err != nil || len(s.APIHosts) != 0 || len(serve.Server().APIHosts) != 0 {
			t.Fatalf("clear: %q %v", s.APIHosts, err)
		}
		if l, _ := LoadServer(ctx, cli.db); len(l.APIHosts) != 0 {
			t.Fatalf("stored after clearing: %q", l.APIHosts)
		}
	})
}

// TestConcurrentUpdateSequencesLoseNothing: several writers, on two
// database handles (serve and the CLI), each PATCH their own field of one
// peer with an increasing sequence of values. Every row an Update writes
// must carry each other writer's value at least as new as the last one
// that writer had committed before the Update began (no stale read written
// back), and in the end each field holds its writer's last value.
func TestConcurrentUpdateSequencesLoseNothing(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		serve, cli, _ := twoProcesses(t, dsn)
		ctx := context.Background()
		if _, err := serve.Add(ctx, AddOptions{Name: "x", Rate: 1, Burst: 1, SendPerMinute: 1}); err != nil {
			t.Fatal(err)
		}
		cli.Refresh(ctx)
		// Each writer sets one field to k and reads it back from a Peer.
		type writer struct {
			set func(k int) UpdateOptions
			get func(p Peer) int
		}
		writers := []writer{
			{func(k int) UpdateOptions { r := float64(k); return UpdateOptions{Rate: &r} }, func(p Peer) int { return int(p.Rate) }},
			{func(k int) UpdateOptions { return UpdateOptions{Burst: &k} }, func(p Peer) int { return p.Burst }},
			{func(k int) UpdateOptions { return UpdateOptions{SendPerMinute: &k} }, func(p Peer) int { return p.SendPerMinute }},
			{func(k int) UpdateOptions { return UpdateOptions{MaxConns: &k} }, func(p Peer) int { return p.MaxConns }},
			{func(k int) UpdateOptions { return UpdateOptions{MaxStreams: &k} }, func(p Peer) int { return p.MaxStreams }},
		}
		const last = 30
		committed := make([]atomic.Int64, len(writers))
		var wg sync.WaitGroup
		for w, wr := range writers {
			wg.Go(func() {
				r := serve
				if w%2 == 1 {
					r = cli
				}
				for k := 1; k <= last; k++ {
					floor := make([]int, len(writers))
					for v := range writers {
						floor[v] = int(committed[v].Load())
					}
					p, err := r.Update(ctx, "x", wr.set(k))
					if err != nil {
						t.Errorf("writer %d, value %d: %v", w, k, err)
						return
					}
					for v, other := range writers {
						if v != w && other.get(p) < floor[v] {
							t.Errorf("writer %d wrote writer %d's field back to %d after %d had committed", w, v, other.get(p), floor[v])
						}
					}
					committed[w].Store(int64(k))
				}
			})
		}
		wg.Wait()
		for _, r := range []*Registry{serve, cli} {
			r.Refresh(ctx)
			p, err := r.Get("x")
			if err != nil {
				t.Fatal(err)
			}
			for w, wr := range writers {
				if got := wr.get(p); got != last {
					t.Errorf("writer %d's field ends at %d, want its last value %d", w, got, last)
				}
			}
		}
	})
}
