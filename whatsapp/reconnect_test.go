package whatsapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waappliance/events"
	"waappliance/internal/backoff"
	"waappliance/internal/wasim"
	"waappliance/whatsapp"
)

// heldClock is a backoff clock a test holds: while holding, every planned
// delay is recorded and waits until release; otherwise it passes at once.
type heldClock struct {
	mu      sync.Mutex
	holding bool
	planned []time.Duration
	waiting []chan time.Time
}

func (c *heldClock) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		ch <- time.Time{}
		return ch
	}
	c.planned = append(c.planned, d)
	c.waiting = append(c.waiting, ch)
	return ch
}

func (c *heldClock) hold() {
	c.mu.Lock()
	c.holding, c.planned = true, nil
	c.mu.Unlock()
}

// take waits for n planned delays and returns them, still held.
func (c *heldClock) take(t *testing.T, n int) []time.Duration {
	t.Helper()
	var got []time.Duration
	waitFor(t, fmt.Sprintf("%d planned reconnects", n), 60*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		got = slices.Clone(c.planned)
		return len(got) >= n
	})
	return got
}

// fire lets every held delay pass and starts a new round of recording
// (holding stays as it is unless stop).
func (c *heldClock) fire(stop bool) {
	c.mu.Lock()
	ws := c.waiting
	c.waiting, c.planned = nil, nil
	if stop {
		c.holding = false
	}
	c.mu.Unlock()
	for _, ch := range ws {
		ch <- time.Time{}
	}
}

// TestFiftySessionsReconnectSpreadOut: fifty sessions dropped at once by
// WhatsApp plan their reconnects spread over the backoff window, each
// within its cap (not errors × 2 s for all, as whatsmeow's own), keep
// backing off while WhatsApp refuses, and all connect when it answers.
func TestFiftySessionsReconnectSpreadOut(t *testing.T) {
	if testing.Short() {
		t.Skip("pairs fifty sessions")
	}
	const n = 50
	r := newRig(t, "")
	clock := &heldClock{}
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 11))
	policy := backoff.Policy{Min: time.Second, Max: 30 * time.Second, After: clock.after,
		Rand: func(k int64) int64 { rmu.Lock(); defer rmu.Unlock(); return rng.Int64N(k) }}
	e := r.engineWith(t, func(c *whatsapp.Config) { c.Reconnect = policy })
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
		r.pair(t, e, names[i], fmt.Sprintf("+1555020%02d", i))
	}

	clock.hold()
	r.srv.RefuseConnections(true) // drops every connection, refuses new ones
	for attempt := range 3 {
		ds := clock.take(t, n)
		ceil := policy.Ceiling(attempt)
		slices.Sort(ds)
		if len(ds) != n {
			t.Fatalf("attempt %d: %d planned delays for %d sessions: more than one loop per session", attempt, len(ds), n)
		}
		if ds[len(ds)-1] > ceil {
			t.Fatalf("attempt %d: a delay of %v over the cap %v", attempt, ds[len(ds)-1], ceil)
		}
		var tenths [10]int
		for _, d := range ds {
			tenths[min(9, int(10*d/(ceil+1)))]++
		}
		for i, k := range tenths {
			if k == 0 || k > n/3 {
				t.Errorf("attempt %d: delays not spread over [0, %v]: tenths %v", attempt, ceil, tenths)
				break
			} else if i == 9 && ds[0] == ds[len(ds)-1] {
				t.Errorf("attempt %d: lock-step at %v", attempt, ds[0])
			}
		}
		for _, name := range names[:3] {
			if st := state(e, name); st != whatsapp.StateDisconnected {
				t.Errorf("%s is %s while WhatsApp refuses", name, st)
			}
		}
		clock.fire(false) // each tries, is refused, and plans the next
	}
	clock.take(t, n)
	r.srv.RefuseConnections(false)
	clock.fire(true)
	for _, name := range names {
		waitFor(t, name+" reconnected", 60*time.Second, func() bool { return state(e, name) == whatsapp.StateConnected })
	}
}

// TestTemporaryBanShownAndNotLoopedOn: a temporary ban is the session's
// own state and event with WhatsApp's expiry; the session does not try
// again before the expiry, then tries once and connects.
func TestTemporaryBanShownAndNotLoopedOn(t *testing.T) {
	r := newRig(t, "")
	var bans atomic.Int32
	r.srv.OnEvent(func(ev wasim.Event) {
		if ev.Kind == wasim.EventTemporaryBan {
			bans.Add(1)
		}
	})
	e := r.engine(t)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.pair(t, e, "shop", "+15550301")
	const expiry = 3 * time.Second
	t0 := time.Now()
	r.srv.TemporaryBan("+15550301", 101, expiry)
	waitFor(t, "temporarily banned", 20*time.Second, func() bool { return state(e, "shop") == whatsapp.StateTemporarilyBanned })

	// Committed with the state (connect.go): there as soon as it is.
	evs := eventsOf(t, r.ev, events.TypeTemporarilyBanned)
	if len(evs) != 1 {
		t.Fatalf("temporarily_banned events: %v", evs)
	}
	var ban whatsapp.TemporaryBan
	if err := json.Unmarshal(evs[0].Data, &ban); err != nil {
		t.Fatal(err)
	}
	if ban.Code != 101 || ban.Reason == "" || ban.ExpiresAt == nil ||
		ban.ExpiresAt.Before(t0.Add(expiry-time.Second)) || ban.ExpiresAt.After(time.Now().Add(expiry+time.Second)) {
		t.Fatalf("ban event %+v (banned at %v for %v)", ban, t0, expiry)
	}
	si, _ := e.Get(context.Background(), "shop")
	if si.BanExpiresAt == nil || !si.BanExpiresAt.Equal(*ban.ExpiresAt) {
		t.Errorf("session shows ban_expires_at %v, event %v", si.BanExpiresAt, ban.ExpiresAt)
	}
	// Until the expiry: no second try (each would be answered with another 402).
	time.Sleep(time.Until(ban.ExpiresAt.Add(-500 * time.Millisecond)))
	if st := state(e, "shop"); st != whatsapp.StateTemporarilyBanned {
		t.Errorf("before the expiry the session is %s", st)
	}
	if k := bans.Load(); k != 1 {
		t.Fatalf("%d logins refused during the ban: the session loops", k)
	}
	waitFor(t, "connected after the ban", 30*time.Second, func() bool { return state(e, "shop") == whatsapp.StateConnected })
	if k := bans.Load(); k != 1 {
		t.Errorf("%d logins refused in all", k)
	}
	if si, _ := e.Get(context.Background(), "shop"); si.BanExpiresAt != nil {
		t.Errorf("connected session still shows a ban until %v", si.BanExpiresAt)
	}
}

// eventsOf lists the log's events of type typ.
func eventsOf(t *testing.T, l *events.Log, typ string) []events.Event {
	t.Helper()
	all, err := l.List(context.Background(), events.Filter{Limit: events.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for _, ev := range all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// TestTemporaryBanAcrossRestart: a session banned when the appliance stops
// tries once at the next start (the expiry lives in WhatsApp's answer, not
// in our row), is shown banned again with WhatsApp's new expiry, and waits
// for it.
func TestTemporaryBanAcrossRestart(t *testing.T) {
	r := newRig(t, "")
	var bans atomic.Int32
	r.srv.OnEvent(func(ev wasim.Event) {
		if ev.Kind == wasim.EventTemporaryBan {
			bans.Add(1)
		}
	})
	e1 := r.engine(t)
	if err := e1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.pair(t, e1, "shop", "+15550311")
	r.srv.TemporaryBan("+15550311", 101, 4*time.Second)
	waitFor(t, "temporarily banned", 20*time.Second, func() bool { return state(e1, "shop") == whatsapp.StateTemporarilyBanned })
	e1.Close()

	e2 := r.engine(t)
	if err := e2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the one try at start", 20*time.Second, func() bool { return bans.Load() == 2 })
	waitFor(t, "banned again", 20*time.Second, func() bool { return state(e2, "shop") == whatsapp.StateTemporarilyBanned })
	si, _ := e2.Get(context.Background(), "shop")
	if si.BanExpiresAt == nil {
		t.Fatal("no ban expiry after the restart")
	}
	time.Sleep(time.Until(si.BanExpiresAt.Add(-500 * time.Millisecond)))
	if k := bans.Load(); k != 2 {
		t.Fatalf("%d logins refused: the restarted session loops on the ban", k)
	}
	waitFor(t, "connected after the ban", 30*time.Second, func() bool { return state(e2, "shop") == whatsapp.StateConnected })
}
