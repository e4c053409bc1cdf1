package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/audit"
	"waappliance/events"
	"waappliance/internal/pgtest"
	"waappliance/peers"
	"waappliance/store"
)

// loopDialer sends every connection to one loopback receiver, whatever
// the tunnel address: the package's own tests exercise delivery; the app
// tests deliver through the real tunnel.
type loopDialer struct{ addr string }

func (d loopDialer) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, network, d.addr)
}

// clock is a fake time that waits advance.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
	real  time.Duration // how long a wait really sleeps
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Wait(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	if c.real > 0 {
		return sleep(ctx, c.real)
	}
	return ctx.Err()
}

func (c *clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// receiver records deliveries; answer decides each status.
type receiver struct {
	mu     sync.Mutex
	got    []delivery
	answer func(n int, r *http.Request) int
	srv    *httptest.Server
}

type delivery struct {
	ID, TS, Sig string
	Path        string
	Body        []byte
	Status      int
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		st := 200
		if rc.answer != nil {
			st = rc.answer(n, r)
		}
		rc.got = append(rc.got, delivery{ID: r.Header.Get("webhook-id"), TS: r.Header.Get("webhook-timestamp"),
			Sig: r.Header.Get("webhook-signature"), Path: r.URL.Path, Body: b, Status: st})
		rc.mu.Unlock()
		if st == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

type env struct {
	db    *store.DB
	log   *events.Log
	reg   *peers.Registry
	audit *audit.Log
	clock *clock
	rc    *receiver
	peer  peers.Peer
}

func newEnv(t *testing.T, dsn string, answer func(int, *http.Request) int, sessions ...string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDSN(ctx, dsn, store.Options{Dir: filepath.Join(t.TempDir(), "s"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := peers.InitServer(ctx, db, peers.Server{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := peers.NewRegistry(ctx, db, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Add(ctx, peers.AddOptions{Name: "app", Scopes: []peers.Scope{peers.ScopeRead}, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	ck := &clock{now: time.Unix(1_800_000_000, 0)}
	return &env{db: db, log: events.New(db, events.Options{Now: ck.Now}), reg: reg, audit: audit.New(db, audit.Options{}),
		clock: ck, rc: newReceiver(t, answer), peer: c.Peer}
}

func (e *env) manager(t *testing.T, mod func(*Config)) *Manager {
	t.Helper()
	cfg := Config{DB: e.db, Events: e.log, Peers: e.reg, Audit: e.audit,
		Dialer: loopDialer{e.rc.srv.Listener.Addr().String()},
		Now:    e.clock.Now, Wait: e.clock.Wait, Jitter: func(d time.Duration) time.Duration { return d }}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); m.Close() })
	return m
}

func (e *env) url() string { return "http://" + e.peer.Addr.String() + ":8080/hook" }

func (e *env) appendN(t *testing.T, session string, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := range n {
		ev, err := e.log.Append(context.Background(), session, events.TypeMessageReceived, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// eventually polls cond for up to a minute (no timing is asserted: the
// bound only keeps a broken build from hanging).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// delivered returns the event ids of the 2xx deliveries, and counts
// requests per webhook-id.
func delivered(t *testing.T, ds []delivery) (ok []int64, perID map[string]int) {
	t.Helper()
	perID = map[string]int{}
	for _, d := range ds {
		perID[d.ID]++
		var ev events.Event
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatalf("body %q: %v", d.Body, err)
		}
		if strconv.FormatInt(ev.ID, 10) != d.ID {
			t.Fatalf("webhook-id %s for event %d", d.ID, ev.ID)
		}
		if d.Status/100 == 2 {
			ok = append(ok, ev.ID)
		}
	}
	return ok, perID
}

func sameIDs(t *testing.T, got, want []int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("delivered %d events, want %d (got %v)", len(got), len(want), got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("delivery %d is event %d, want %d: out of order or a gap", i, got[i], want[i])
		}
	}
}

// TestOutageThenCatchUp: the receiver is down (503) while hundreds of
// events are appended; once it is up, every event arrives in order with
// no gap, each signed with the subscription's secret, and only the events
// retried were sent more than once, always under the same webhook-id.
func TestOutageThenCatchUp(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		var down sync.Mutex
		isDown := true
		e := newEnv(t, dsn, func(int, *http.Request) int {
			down.Lock()
			defer down.Unlock()
			if isDown {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		})
		e.clock.real = time.Millisecond
		sched := make([]time.Duration, 100000)
		for i := range sched {
			sched[i] = time.Second
		}
		m := e.manager(t, func(c *Config) { c.Schedule = sched })
		ctx := context.Background()
		cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url(), Events: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		want := e.appendN(t, "shop", 300)
		eventually(t, "failed attempts", func() bool { return len(e.rc.deliveries()) >= 5 })
		down.Lock()
		isDown = false
		down.Unlock()
		eventually(t, "all 300 delivered", func() bool { ok, _ := delivered(t, e.rc.deliveries()); return len(ok) == 300 })
		ds := e.rc.deliveries()
		ok, perID := delivered(t, ds)
		sameIDs(t, ok, want)
		for id, n := range perID {
			if n > 1 && id != strconv.FormatInt(want[0], 10) {
				t.Errorf("event %s sent %d times; only the first event was retried", id, n)
			}
		}
		for _, d := range ds {
			ts, _ := strconv.ParseInt(d.TS, 10, 64)
			if !Verify(cr.Secret, d.Sig, d.ID, ts, d.Body) {
				t.Fatalf("delivery %s: signature %q does not verify", d.ID, d.Sig)
			}
		}
		// The receiver counts a delivery before its 2xx is committed.
		eventually(t, "the last delivery committed", func() bool { s, _ := m.Get(ctx, cr.ID); return s.Cursor == want[len(want)-1] })
		s, err := m.Get(ctx, cr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cursor != want[len(want)-1] || s.Attempts != 0 || s.Lag.Events != 0 || s.LastSuccessAt == nil || s.State != "enabled" {
			t.Fatalf("after catch-up: %+v lag %+v", s, s.Lag)
		}
	})
}

// TestRestartResumesFromCursor: a Manager closed in the middle of a burst
// (its attempt in flight cut off) and a new one on the same database
// deliver every event in order; an event is repeated only under its own
// webhook-id, and only the one in flight at the stop.
func TestRestartResumesFromCursor(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		m1, err := New(Config{DB: e.db, Events: e.log, Peers: e.reg, Dialer: loopDialer{e.rc.srv.Listener.Addr().String()}, Now: e.clock.Now, Wait: e.clock.Wait})
		if err != nil {
			t.Fatal(err)
		}
		c1, cancel1 := context.WithCancel(ctx)
		if err := m1.Start(c1); err != nil {
			t.Fatal(err)
		}
		cr, err := m1.Create(ctx, e.peer, CreateRequest{URL: e.url()})
		if err != nil {
			t.Fatal(err)
		}
		want := e.appendN(t, "shop", 200)
		eventually(t, "some delivered", func() bool { return len(e.rc.deliveries()) >= 50 })
		cancel1()
		m1.Close()
		stopped := len(e.rc.deliveries())
		e.manager(t, nil)
		eventually(t, "all delivered", func() bool {
			ok, _ := delivered(t, e.rc.deliveries())
			return len(ok) > 0 && ok[len(ok)-1] == want[len(want)-1]
		})
		ok, perID := delivered(t, e.rc.deliveries())
		// A duplicate is the event whose 2xx was not committed before
		// the stop: same webhook-id, and at most one.
		dups := 0
		for _, n := range perID {
			dups += n - 1
		}
		if dups > 1 {
			t.Fatalf("%d duplicates after one stop", dups)
		}
		dedup := []int64{}
		for _, id := range ok {
			if len(dedup) == 0 || dedup[len(dedup)-1] != id {
				dedup = append(dedup, id)
			}
		}
		sameIDs(t, dedup, want)
		t.Logf("stopped after %d deliveries; %d duplicate(s)", stopped, dups)
		_ = cr
	})
}

// TestGoneDisables: a 410 disables the subscription at once, with a
// webhook.disabled event and an audit row, and nothing more is sent.
func TestGoneDisables(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(int, *http.Request) int { return http.StatusGone })
		m := e.manager(t, nil)
		ctx := context.Background()
		cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url()})
		if err != nil {
			t.Fatal(err)
		}
		e.appendN(t, "shop", 3)
		eventually(t, "disabled", func() bool { s, _ := m.Get(ctx, cr.ID); return s.State == "disabled" })
		eventually(t, "stopped", func() bool { return !m.Running(cr.ID) })
		if n := len(e.rc.deliveries()); n != 1 {
			t.Fatalf("%d requests, want 1 (410 disables at once)", n)
		}
		s, _ := m.Get(ctx, cr.ID)
		if s.LastStatus != 410 || s.DisabledReason != "gone (410)" {
			t.Fatalf("%+v", s)
		}
		checkDisabledRecorded(t, e, cr.ID)
	})
}

func checkDisabledRecorded(t *testing.T, e *env, id int64) {
	t.Helper()
	ctx := context.Background()
	es, err := e.log.List(ctx, events.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range es {
		if ev.Type == events.TypeWebhookDisabled {
			var d struct{ Webhook int64 }
			json.Unmarshal(ev.Data, &d)
			found = d.Webhook == id
		}
	}
	if !found {
		t.Fatal("no webhook.disabled event")
	}
	// The audit row is written after the disabling commits.
	eventually(t, "the audit row", func() bool {
		rows, err := e.audit.List(ctx, "app", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Route == "webhook.disabled" && r.Target == strconv.FormatInt(id, 10) && r.Method == "DELIVER" {
				return true
			}
		}
		return false
	})
}

// TestFailuresRetryOnSchedule: a receiver answering 500 is retried after
// each wait of the schedule, in turn, with the attempt count and next
// attempt kept in the database; after the last the subscription is
// disabled (event and audit row).
func TestFailuresRetryOnSchedule(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(int, *http.Request) int { return http.StatusInternalServerError })
		m := e.manager(t, nil)
		ctx := context.Background()
		cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url()})
		if err != nil {
			t.Fatal(err)
		}
		e.appendN(t, "shop", 2)
		eventually(t, "disabled", func() bool { s, _ := m.Get(ctx, cr.ID); return s.State == "disabled" })
		if n := len(e.rc.deliveries()); n != len(DefaultSchedule)+1 {
			t.Fatalf("%d attempts, want %d", n, len(DefaultSchedule)+1)
		}
		waits := e.clock.Waits()
		if len(waits) != len(DefaultSchedule) {
			t.Fatalf("waits %v, want %v", waits, DefaultSchedule)
		}
		var total time.Duration
		for i, w := range waits {
			if w != DefaultSchedule[i] {
				t.Fatalf("wait %d is %v, want %v", i, w, DefaultSchedule[i])
			}
			total += w
		}
		if total < 27*time.Hour {
			t.Fatalf("retries span %v, want about a day and a half", total)
		}
		for _, d := range e.rc.deliveries() {
			if d.ID != e.rc.deliveries()[0].ID {
				t.Fatal("a later event was sent while the first was failing")
			}
		}
		s, _ := m.Get(ctx, cr.ID)
		if s.LastStatus != 500 || s.DisabledReason != "failing" || s.Attempts != len(DefaultSchedule)+1 {
			t.Fatalf("%+v", s)
		}
		checkDisabledRecorded(t, e, cr.ID)
	})
}

// TestAttemptStateSurvivesRestart: the attempt count and next attempt
// time are in the database: a new Manager waits out the rest of the
// backoff instead of starting over.
func TestAttemptStateSurvivesRestart(t *testing.T) {
	e := newEnv(t, "", func(int, *http.Request) int { return http.StatusInternalServerError })
	ctx := context.Background()
	block := make(chan struct{})
	m1 := e.manager(t, func(c *Config) {
		c.Wait = func(ctx context.Context, d time.Duration) error {
			select { // the first backoff never ends: the "crash" comes first
			case <-block:
			case <-ctx.Done():
			}
			return ctx.Err()
		}
	})
	cr, err := m1.Create(ctx, e.peer, CreateRequest{URL: e.url()})
	if err != nil {
		t.Fatal(err)
	}
	e.appendN(t, "shop", 1)
	eventually(t, "first failure recorded", func() bool { s, _ := m1.Get(ctx, cr.ID); return s.Attempts == 1 })
	m1.Close()
	e.clock.mu.Lock()
	e.clock.now = e.clock.now.Add(3 * time.Second) // the restart took 3 s
	e.clock.mu.Unlock()
	e.manager(t, nil)
	eventually(t, "second attempt", func() bool { return len(e.rc.deliveries()) >= 2 })
	if w, want := e.clock.Waits(), DefaultSchedule[0]-3*time.Second; len(w) == 0 || w[0] != want {
		t.Fatalf("after the restart waited %v first, want the remaining %v of the backoff", w, want)
	}
	if s, _ := m1.Get(ctx, cr.ID); s.Attempts < 2 {
		t.Fatalf("attempts %d after the restart's failure, want 2 (counted on)", s.Attempts)
	}
}

// TestPeerRemovedOrWithoutReadStops: a peer that loses read receives
// nothing more (and resumes once it has it again); a removed peer's
// subscription goes with it and its delivery stops.
func TestPeerRemovedOrWithoutReadStops(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		m := e.manager(t, nil)
		ctx := context.Background()
		cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url()})
		if err != nil {
			t.Fatal(err)
		}
		e.appendN(t, "shop", 2)
		eventually(t, "first two", func() bool { return len(e.rc.deliveries()) == 2 })
		none := []peers.Scope{peers.ScopeSend}
		if _, err := e.reg.Update(ctx, "app", peers.UpdateOptions{Scopes: &none}); err != nil {
			t.Fatal(err)
		}
		e.appendN(t, "shop", 3)
		eventually(t, "a poll of the peer", func() bool { return len(e.clock.Waits()) >= 3 })
		if n := len(e.rc.deliveries()); n != 2 {
			t.Fatalf("%d deliveries to a peer without read", n)
		}
		read := []peers.Scope{peers.ScopeRead}
		if _, err := e.reg.Update(ctx, "app", peers.UpdateOptions{Scopes: &read}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "resumed", func() bool { return len(e.rc.deliveries()) == 5 })
		if err := e.reg.Remove(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		e.appendN(t, "shop", 3)
		eventually(t, "stopped", func() bool { return !m.Running(cr.ID) })
		if n := len(e.rc.deliveries()); n != 5 {
			t.Fatalf("%d deliveries, want 5: a removed peer got events", n)
		}
		if _, err := m.Get(ctx, cr.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a removed peer's subscription: %v", err)
		}
	})
}

// TestOtherSessionsNeverDelivered: a peer allowed only "shop" never gets
// an event of "support", whether its subscription names sessions or not.
func TestOtherSessionsNeverDelivered(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil, "shop")
		m := e.manager(t, nil)
		ctx := context.Background()
		if _, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url(), Sessions: []string{"support"}}); !errors.Is(err, ErrBadSessions) {
			t.Fatalf("subscribing to a session the peer may not read: %v", err)
		}
		cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url(), Events: []string{events.TypeMessageReceived}})
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i := range 10 {
			want = append(want, e.appendN(t, "shop", 1)...)
			e.appendN(t, "support", 1)
			if _, err := e.log.Append(ctx, "shop", events.TypeSessionState, map[string]int{"i": i}); err != nil { // not selected
				t.Fatal(err)
			}
		}
		eventually(t, "cursor at the end", func() bool {
			s, _ := m.Get(ctx, cr.ID)
			latest, _ := e.log.Latest(ctx)
			return s.Cursor == latest
		})
		ok, _ := delivered(t, e.rc.deliveries())
		sameIDs(t, ok, want)
	})
}

// TestRedirectNotFollowed: a 302 is a failed attempt; its Location is
// never requested.
func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t, "", func(int, *http.Request) int { return http.StatusFound })
	m := e.manager(t, func(c *Config) { c.Schedule = []time.Duration{time.Second} })
	ctx := context.Background()
	cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url()})
	if err != nil {
		t.Fatal(err)
	}
	e.appendN(t, "shop", 1)
	eventually(t, "disabled", func() bool { s, _ := m.Get(ctx, cr.ID); return s.State == "disabled" })
	for _, d := range e.rc.deliveries() {
		if d.Path != "/hook" {
			t.Fatalf("a redirect was followed to %s", d.Path)
		}
	}
	if s, _ := m.Get(ctx, cr.ID); s.LastStatus != http.StatusFound {
		t.Fatalf("last status %d", s.LastStatus)
	}
}

// TestCheckURL: only http:// on the peer's own tunnel address.
func TestCheckURL(t *testing.T) {
	subnet := mustPrefix("10.77.0.0/24")
	p := peers.Peer{Name: "app", Addr: subnet.Addr().Next().Next()} // 10.77.0.2
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://10.77.0.2:8080/wa", true},
		{"http://10.77.0.2/wa?x=1", true},
		{"http://10.77.0.3:8080/wa", false}, // another peer's address
		{"http://10.77.0.1/wa", false},      // the appliance's own
		{"https://10.77.0.2/wa", false},
		{"http://user:pw@10.77.0.2/wa", false},
		{"http://localhost/wa", false},
		{"http://127.0.0.1/wa", false},
		{"https://example.org/wa", false},
		{"http://169.254.169.254/latest", false},
		{"http://10.77.0.2:99999/", false},
		{"not a url", false},
		{"http://10.77.0.2/" + strings.Repeat("a", 2100), false},
		{"", false},
	} {
		_, err := CheckURL(p, subnet, tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadURL) {
			t.Errorf("CheckURL(%q): %v is not ErrBadURL", tc.url, err)
		}
	}
}

// TestRotateSignsWithBoth: after a rotation deliveries carry two
// signatures, the new secret's and the old one's, until the overlap ends.
func TestRotateSignsWithBoth(t *testing.T) {
	e := newEnv(t, "", nil)
	m := e.manager(t, nil)
	ctx := context.Background()
	cr, err := m.Create(ctx, e.peer, CreateRequest{URL: e.url()})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := m.RotateSecret(ctx, cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secret == cr.Secret || rot.PreviousSecretUntil == nil {
		t.Fatalf("rotation: %+v", rot.Subscription)
	}
	e.appendN(t, "shop", 1)
	eventually(t, "delivered", func() bool { return len(e.rc.deliveries()) == 1 })
	d := e.rc.deliveries()[0]
	ts, _ := strconv.ParseInt(d.TS, 10, 64)
	if !Verify(cr.Secret, d.Sig, d.ID, ts, d.Body) || !Verify(rot.Secret, d.Sig, d.ID, ts, d.Body) {
		t.Fatalf("signature %q: want both secrets", d.Sig)
	}
	e.clock.mu.Lock()
	e.clock.now = e.clock.now.Add(RotationOverlap + time.Second)
	e.clock.mu.Unlock()
	e.appendN(t, "shop", 1)
	eventually(t, "delivered", func() bool { return len(e.rc.deliveries()) == 2 })
	d = e.rc.deliveries()[1]
	ts, _ = strconv.ParseInt(d.TS, 10, 64)
	if Verify(cr.Secret, d.Sig, d.ID, ts, d.Body) || !Verify(rot.Secret, d.Sig, d.ID, ts, d.Body) {
		t.Fatalf("after the overlap, signature %q: want the new secret only", d.Sig)
	}
}

// TestCheckURLExternal: outside the tunnel only for a peer allowed it,
// https only, and never to a loopback, private, link-local, metadata or
// reserved address literal.
func TestCheckURLExternal(t *testing.T) {
	subnet := mustPrefix("10.77.0.0/24")
	p := peers.Peer{Name: "app", Addr: subnet.Addr().Next().Next(), WebhooksExternal: true}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.org/wa", true},
		{"https://hooks.example.org:8443/wa", true},
		{"https://93.184.215.14/wa", true},
		{"https://[2606:4700::1111]/wa", true},
		{"http://hooks.example.org/wa", false}, // https only outside
		{"https://127.0.0.1/wa", false},
		{"https://localhost/wa", false},
		{"https://a.localhost/wa", false},
		{"https://10.1.2.3/wa", false},
		{"https://192.168.1.1/wa", false},
		{"https://172.16.0.1/wa", false},
		{"https://169.254.169.254/latest/meta-data", false},
		{"https://100.64.0.1/wa", false},
		{"https://0.0.0.0/wa", false},
		{"https://[::1]/wa", false},
		{"https://[fe80::1]/wa", false},
		{"https://[fd00:ec2::254]/wa", false},
		{"https://[::ffff:127.0.0.1]/wa", false},
		{"https://[64:ff9b::7f00:1]/wa", false},
		{"https://10.77.0.3/wa", false}, // another peer: the tunnel rules
		{"http://10.77.0.2:8080/wa", true},
	} {
		_, err := CheckURL(p, subnet, tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
	p.WebhooksExternal = false
	if _, err := CheckURL(p, subnet, "https://hooks.example.org/wa"); err == nil {
		t.Error("an external URL accepted for a peer not allowed one")
	}
}

// TestExternalDialRefusesNonPublic: the external client checks the
// address it connects to, after any name resolution, so whatever passed
// creation (a name that resolves, or rebinds, to loopback) cannot reach a
// loopback receiver; metadata and private addresses are refused alike.
func TestExternalDialRefusesNonPublic(t *testing.T) {
	hit := make(chan struct{}, 10)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit <- struct{}{} }))
	defer srv.Close()
	c := newExternalClient(5 * time.Second)
	defer c.close()
	resp, err := c.c.Get(srv.URL) // https://127.0.0.1:port
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrForbiddenDestination) {
		t.Fatalf("GET %s: %v, want ErrForbiddenDestination", srv.URL, err)
	}
	select {
	case <-hit:
		t.Fatal("the loopback receiver was reached")
	default:
	}
	for _, a := range []string{"169.254.169.254:80", "10.0.0.1:443", "[::1]:443", "[fd00:ec2::254]:80", "100.100.100.200:80"} {
		if err := checkDial("tcp", a, nil); !errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("checkDial %s: %v", a, err)
		}
	}
	if err := checkDial("tcp", "93.184.215.14:443", nil); err != nil {
		t.Fatalf("a public address: %v", err)
	}
}
