package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/internal/pgtest"
	"waappliance/internal/wasim"
	"waappliance/internal/wgclient"
	"waappliance/peers"
	"waappliance/store"
)

// stop ends the appliance process with SIGTERM, as an operator stops it
// before a migration, and waits for it.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatal("the appliance did not stop within 30s of SIGTERM")
	}
}

// openStateStore opens the database a state keeps, as its link says.
func openStateStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	l, err := store.ReadLink(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDSN(context.Background(), l.URL, store.Options{Dir: dir, Insecure: l.Insecure})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

type evRow struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// migState is a sandbox state with a paired session, messages queued
// while WhatsApp refused connections, events, and a send made with an
// Idempotency-Key; the appliance is stopped.
type migState struct {
	dir        string
	port       int
	srv        *wasim.Server
	ctl        string
	boss       peers.Created
	server     peers.Server
	queued     []string
	idemID     string
	idemBody   []byte
	eventsSeen []evRow // the whole log, read from the database when stopped
}

const migKey = "order-migrate-1"

func buildMigState(t *testing.T) *migState {
	t.Helper()
	ctx := context.Background()
	srv, ctl := startWasim(t)
	st := &migState{srv: srv, ctl: ctl.String(), port: freeUDPPort(t), dir: filepath.Join(t.TempDir(), "state")}
	mustCLI(t, st.dir, "init", "--listen-port", fmt.Sprint(st.port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", st.port))
	_, cfg := mustCLI(t, st.dir, "peer", "add", "boss", "--scopes", "admin", "--rate", "1000", "--burst", "1000", "--send-per-minute", "1000")
	st.boss = createdFromCLI(t, st.dir, "boss", cfg)
	a, err := appOpen(ctx, st.dir)
	if err != nil {
		t.Fatal(err)
	}
	st.server = a.Server()
	a.Close()

	p := startProc(t, st.dir, st.ctl)
	cl := st.client(t)
	eventually(t, "the appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	s := pairSession(t, cl, "shop", "+15550001")
	if err := srv.AddContact(ctx, "15550002", "Ada", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	first := send(t, cl, "shop", "+15550002", "before the move")
	eventually(t, "the first message sent", func() bool {
		st := getMessage(t, cl, "shop", first.ID).Status
		return st == "sent" || st == "delivered" || st == "read"
	})
	account, _ := types.ParseJID(s.JID)
	if _, err := srv.ContactSend(ctx, "15550002", account.ToNonAD(), "hello shop", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the inbound message logged", func() bool {
		return strings.Contains(string(do(t, cl, "GET", "/v1/events?session=shop&limit=1000", nil).Body), "message.received")
	})
	st.idemBody, _ = json.Marshal(map[string]string{"to": "+15550002", "text": "once only"})
	r, err := cl.DoWithHeader(ctx, "POST", "/v1/sessions/shop/messages", st.idemBody, map[string]string{"Idempotency-Key": migKey})
	var m messageJSON
	if err != nil || r.Status != 202 || r.JSON(&m) != nil {
		t.Fatalf("send with a key: %v %d", err, r.Status)
	}
	st.idemID = m.ID
	eventually(t, "the keyed message sent", func() bool {
		st := getMessage(t, cl, "shop", m.ID).Status
		return st == "sent" || st == "delivered" || st == "read"
	})
	// WhatsApp unreachable: what is sent now stays queued.
	srv.RefuseConnections(true)
	eventually(t, "disconnected", func() bool { return getSession(t, cl, "shop").State != "connected" })
	for i := 0; i < 3; i++ {
		st.queued = append(st.queued, send(t, cl, "shop", "+15550002", fmt.Sprint("queued ", i)).ID)
	}
	p.stop(t)
	for _, id := range st.queued {
		if s := st.status(t, id); s != "queued" {
			t.Fatalf("%s is %s before the move; the test wants it queued", id, s)
		}
	}
	st.eventsSeen = st.readEvents(t)
	if len(st.eventsSeen) == 0 {
		t.Fatal("no events logged before the move")
	}
	return st
}

func (st *migState) client(t *testing.T) *wgclient.Client {
	t.Helper()
	c := st.boss
	cl, err := wgclient.New(wgclient.Config{PrivateKey: c.PrivateKey, PresharedKey: c.Peer.PresharedKey, Addr: c.Peer.Addr,
		ServerKey: st.server.PublicKey(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(st.port)), ServerAddr: st.server.TunnelAddr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// status reads a message's status from the stopped state's database.
func (st *migState) status(t *testing.T, id string) string {
	t.Helper()
	db := openStateStore(t, st.dir)
	defer db.Close()
	var s string
	if err := db.QueryRowContext(context.Background(), `SELECT status FROM outbox WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (st *migState) readEvents(t *testing.T) []evRow {
	t.Helper()
	db := openStateStore(t, st.dir)
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT id, type FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []evRow
	for rows.Next() {
		var e evRow
		rows.Scan(&e.ID, &e.Type)
		out = append(out, e)
	}
	return out
}

func listEvents(t *testing.T, cl *wgclient.Client, after int64) []evRow {
	t.Helper()
	var res struct{ Events []evRow }
	r := do(t, cl, "GET", fmt.Sprintf("/v1/events?session=shop&limit=1000&after=%d", after), nil)
	if r.Status != 200 || r.JSON(&res) != nil {
		t.Fatalf("events after %d: %d %s", after, r.Status, r.Body)
	}
	return res.Events
}

// serveAndCheck serves the moved state (no --database: the state says
// where it is) and checks what the move must keep: the session connects
// without pairing, every queued message reaches the contact once, the
// event log keeps its ids and a cursor resumes without a gap, and the
// Idempotency-Key replays the original. It stops the appliance again.
func (st *migState) serveAndCheck(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	st.srv.RefuseConnections(false)
	p := startProc(t, st.dir, st.ctl)
	cl := st.client(t)
	eventually(t, "the session connected without pairing", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/sessions/shop", nil)
		var s sessionJSON
		return err == nil && r.Status == 200 && r.JSON(&s) == nil && s.State == "connected"
	})
	eventually(t, "every queued message sent", func() bool {
		for _, id := range st.queued {
			var m messageJSON
			r, err := cl.Do(ctx, "GET", "/v1/sessions/shop/messages/"+id, nil)
			if err != nil || r.Status != 200 || r.JSON(&m) != nil || (m.Status != "sent" && m.Status != "delivered" && m.Status != "read") {
				return false
			}
		}
		return true
	})
	got, err := st.srv.InboxOf(ctx, "15550002")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range got {
		seen[m.ID] += m.Deliveries
	}
	for _, id := range append([]string{st.idemID}, st.queued...) {
		if seen[id] != 1 {
			t.Errorf("message %s reached the contact %d times, want once", id, seen[id])
		}
	}

	before := st.eventsSeen
	last := before[len(before)-1].ID
	var all []evRow
	eventually(t, "new events after the move", func() bool {
		all = listEvents(t, cl, 0)
		return len(all) > len(before)
	})
	for i, e := range before {
		if all[i] != e {
			t.Fatalf("event %d is %+v after the move, was %+v (ids must be kept)", i, all[i], e)
		}
	}
	resumed := listEvents(t, cl, last)
	if len(resumed) == 0 || resumed[0].ID <= last {
		t.Fatalf("after=%d gives %+v", last, resumed)
	}
	for i, e := range resumed {
		if i+len(before) >= len(all) || all[len(before)+i] != e {
			t.Fatalf("after=%d does not resume where the log goes on: %+v vs %+v", last, resumed, all[len(before):])
		}
	}

	r, err := cl.DoWithHeader(ctx, "POST", "/v1/sessions/shop/messages", st.idemBody, map[string]string{"Idempotency-Key": migKey})
	var m messageJSON
	if err != nil || r.Status != 200 || r.JSON(&m) != nil || m.ID != st.idemID {
		t.Fatalf("replayed Idempotency-Key: %v %d %s (want 200 with %s)", err, r.Status, r.Body, st.idemID)
	}
	p.stop(t)
	st.eventsSeen = st.readEvents(t)
}

func migrateCLI(t *testing.T, dir, to string) string {
	t.Helper()
	stderr, stdout := mustCLI(t, dir, "migrate", "--to", to)
	for _, want := range []string{"whatsmeow_device", "events", "outbox", "schema_migrations"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("migrate's summary lacks %s:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "migrated ") || strings.Contains(stderr+stdout, passwordOf(to)) {
		t.Errorf("migrate's summary (or a password in it): %s", stderr)
	}
	return stderr
}

// passwordOf is a URL's password, or a string no output holds.
func passwordOf(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		if ui, _, ok := strings.Cut(rest, "@"); ok {
			if _, pw, ok := strings.Cut(ui, ":"); ok && pw != "" {
				return pw
			}
		}
	}
	return "\x00no password\x00"
}

// TestMigrateToPostgresAndBack is the migration test: a state
// with a session paired against wasim, messages queued, events logged and
// a keyed send, moved with `migrate --to postgres` and served there, then
// moved back with `--to sqlite` and served again.
func TestMigrateToPostgresAndBack(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	pg := pgtest.Fresh(t)
	st := buildMigState(t)
	migrateCLI(t, st.dir, pg)
	if l, _ := store.ReadLink(st.dir); l.Dialect() != store.Postgres {
		t.Fatalf("after migrate --to postgres the state's link is %+v", l)
	}
	st.serveAndCheck(t)
	migrateCLI(t, st.dir, "sqlite")
	st.serveAndCheck(t)
}

// TestMigrateThroughPostgresKeepsTheState moves a state to PostgreSQL and
// straight back (the copy both ways, whatsmeow's tables and the sequences
// included), then serves it on SQLite with the same checks.
func TestMigrateThroughPostgresKeepsTheState(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	pg := pgtest.Fresh(t)
	st := buildMigState(t)
	before := st.readEvents(t)
	migrateCLI(t, st.dir, pg)
	if got := st.readEvents(t); len(got) != len(before) || got[len(got)-1] != before[len(before)-1] {
		t.Fatalf("events on PostgreSQL: %d, last %+v; want %d, last %+v", len(got), got[len(got)-1], len(before), before[len(before)-1])
	}
	if s := st.status(t, st.queued[0]); s != "queued" {
		t.Fatalf("a queued message is %s on PostgreSQL", s)
	}
	// The old SQLite file was moved aside, and the target now refuses a
	// second copy into it.
	if m, _ := filepath.Glob(filepath.Join(st.dir, store.FileName+".before-migrate-*")); len(m) == 0 {
		t.Error("the old SQLite file was not moved aside")
	}
	migrateCLI(t, st.dir, "sqlite")
	if l, _ := store.ReadLink(st.dir); l.URL != "" {
		t.Fatalf("after migrate --to sqlite the link is %+v", l)
	}
	st.serveAndCheck(t)
}
