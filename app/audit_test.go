package app_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"waappliance/app"
	"waappliance/audit"
	"waappliance/internal/wgclient"
	"waappliance/peers"
	"waappliance/store"
)

// TestAuditRecordsEveryMutatingAnswer: mutating requests answered before a
// handler runs (429 by the rate limit, 404 and 405 by the router), refused
// for scope (403) or size (413) are in the durable audit log too.
func TestAuditRecordsEveryMutatingAnswer(t *testing.T) {
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), shortAuditInterval)
	admin := ta.client(t, ta.addPeer(t, "boss", peers.ScopeAdmin))
	reader := ta.client(t, ta.addPeer(t, "reader", peers.ScopeRead))
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "slow", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: peers.MinRate, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	slow := ta.client(t, c)
	big := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	steps := []struct {
		cl           string
		method, path string
		body         any
		want         string // peer method route target status
	}{
		{"boss", "POST", "/v1/nothing", `{}`, "boss POST /v1/nothing  404"},
		{"boss", "PUT", "/v1/whoami", `{}`, "boss PUT /v1/whoami  405"},
		{"boss", "POST", "/v1/peers", big, "boss POST /v1/peers  413"},
		{"reader", "DELETE", "/v1/peers/boss", nil, "reader DELETE /v1/peers/{name} boss 403"},
		{"slow", "DELETE", "/v1/peers/ghost", nil, "slow DELETE /v1/peers/{name} ghost 404"},
		{"slow", "DELETE", "/v1/peers/ghost", nil, "slow DELETE /v1/peers/{name} ghost 429"},
	}
	for _, st := range steps {
		cl := admin
		switch st.cl {
		case "reader":
			cl = reader
		case "slow":
			cl = slow
		}
		r := do(t, cl, st.method, st.path, st.body)
		if want := st.want[strings.LastIndex(st.want, " ")+1:]; strconv.Itoa(r.Status) != want {
			t.Fatalf("%s %s: %d, want %s", st.method, st.path, r.Status, want)
		}
	}
	// All of them are refusals: counted, one row per peer, method, route
	// and status, written at the end of the interval (in no set order).
	var got struct {
		Entries []struct {
			Peer, Method, Route, Target string
			Status, Count               int
		}
	}
	eventually(t, "the refusals' rows", func() bool {
		return do(t, admin, "GET", "/v1/audit", nil).JSON(&got) == nil && len(got.Entries) >= len(steps)
	})
	have := map[string]bool{}
	for _, e := range got.Entries {
		if e.Count != 1 {
			t.Errorf("%+v: count %d, want 1", e, e.Count)
		}
		have[e.Peer+" "+e.Method+" "+e.Route+" "+e.Target+" "+strconv.Itoa(e.Status)] = true
	}
	if len(got.Entries) != len(steps) {
		t.Fatalf("audit has %d entries, want %d: %v", len(got.Entries), len(steps), have)
	}
	for _, st := range steps {
		if !have[st.want] {
			t.Errorf("no entry %q in %v", st.want, have)
		}
	}
}

// TestPatchRightAfterCLIDisable: a PATCH served before the appliance
// polled the CLI's change must not re-enable the peer.
func TestPatchRightAfterCLIDisable(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.client(t, ta.addPeer(t, "boss", peers.ScopeAdmin))
	ta.addPeer(t, "victim", peers.ScopeRead)
	do(t, admin, "GET", "/v1/whoami", nil)
	mustCLI(t, ta.dir, "peer", "disable", "victim")
	r := do(t, admin, "PATCH", "/v1/peers/victim", map[string]any{"rate": 3})
	if r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	var p struct {
		Disabled bool
		Rate     float64
	}
	r.JSON(&p)
	if !p.Disabled || p.Rate != 3 {
		t.Fatalf("after CLI disable and PATCH rate: %s", r.Body)
	}
	_, js := mustCLI(t, ta.dir, "peer", "show", "victim")
	if !strings.Contains(js, `"disabled": true`) {
		t.Fatalf("stored peer re-enabled:\n%s", js)
	}
}

// TestAuditStatusAfterTheAnswer: a request's status is written after its
// answer, without holding it back: an appliance closed right after the
// answer still records it (Close writes what is pending), and a row a
// crash left without its outcome is listed as it is, at status 0.
func TestAuditStatusAfterTheAnswer(t *testing.T) {
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	// The row a crash between answer and Finish leaves: begun, no status.
	db := openStateStore(t, dir)
	if _, err := audit.New(db, audit.Options{}).Begin(context.Background(), audit.Entry{Peer: "boss", Method: "POST", Route: "/v1/peers", RequestID: "crashed"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ta := serveState(t, dir)
	admin := ta.client(t, ta.addPeer(t, "boss", peers.ScopeAdmin))
	if r := do(t, admin, "POST", "/v1/peers", map[string]any{"name": "temp", "scopes": []string{"read"}}); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var got struct {
		Entries []struct {
			Status    int
			RequestID string `json:"request_id"`
		}
	}
	if r := do(t, admin, "GET", "/v1/audit?peer=boss", nil); r.JSON(&got) != nil || len(got.Entries) != 2 || got.Entries[0].RequestID != "crashed" || got.Entries[0].Status != 0 {
		t.Fatalf("GET /v1/audit: %d %s", r.Status, r.Body)
	}
	if err := ta.Close(); err != nil {
		t.Fatal(err)
	}
	db = openStateStore(t, dir)
	defer db.Close()
	es, err := audit.New(db, audit.Options{}).List(context.Background(), "boss", 0, 0)
	if err != nil || len(es) != 2 || es[0].Status != 0 || es[1].Status != 201 {
		t.Fatalf("after Close: %+v (%v), want the crashed row at 0 and the POST at 201", es, err)
	}
}

// TestSendAuditedInItsWrite: a send's audit row commits in the transaction
// that queues the message, so the audit and the outbox agree whatever
// fails: a queued message has its row; a send whose write fails leaves no
// message and no row of its own (it is counted as a refusal); one whose
// audit row cannot be written is refused 503 storage_unavailable and
// queues nothing; an idempotent replay, which writes nothing, still has
// its row.
func TestSendAuditedInItsWrite(t *testing.T) {
	ctx := context.Background()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) { o.Sandbox = app.SandboxInProcess; shortAuditInterval(o) })
	c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1000, Burst: 1000, SendPerMinute: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta.Nudge()
	cl := ta.client(t, c)
	pairSession(t, cl, "shop", "+15550100")
	db := ta.DB()
	const route = "/v1/sessions/{session}/messages"
	type row struct {
		Status, Count int
		RequestID     string
		Counted       bool // a refusal's row (last_at set), not a request's own
	}
	rows := func() []row {
		var got struct{ Entries []audit.Entry }
		if r := do(t, cl, "GET", "/v1/audit?peer=boss&limit=1000", nil); r.Status != 200 || r.JSON(&got) != nil {
			t.Fatalf("audit: %d %s", r.Status, r.Body)
		}
		var out []row
		for _, e := range got.Entries {
			if e.Route == route {
				out = append(out, row{e.Status, e.Count, e.RequestID, e.LastAt != nil})
			}
		}
		return out
	}
	queued := func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE session = 'shop'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	post := func(key string) *wgclient.Response {
		h := map[string]string{}
		if key != "" {
			h["Idempotency-Key"] = key
		}
		r, err := cl.DoWithHeader(ctx, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550111", "text": "hi"}, h)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Accepted, then replayed: two rows, each with its outcome.
	first := post("k1")
	if first.Status != 202 {
		t.Fatalf("send: %d %s", first.Status, first.Body)
	}
	if r := post("k1"); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	eventually(t, "the two rows' outcomes", func() bool {
		rs := rows()
		return len(rs) == 2 && rs[0] == row{202, 1, first.Header.Get("X-Request-Id"), false} && rs[1].Status == 200 && !rs[1].Counted
	})

	// The write fails after the audit row was inserted in it (the outbox
	// row is refused): neither stays.
	failQueue := `CREATE TRIGGER fail_queue BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected'); END`
	dropQueue := `DROP TRIGGER fail_queue`
	failAudit := `CREATE TRIGGER fail_audit BEFORE INSERT ON audit WHEN NEW.route = '` + route + `' AND NEW.status = 0 BEGIN SELECT RAISE(ABORT, 'injected'); END`
	dropAudit := `DROP TRIGGER fail_audit`
	if db.Dialect == store.Postgres {
		failQueue = `CREATE FUNCTION fail_injected() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$;
			CREATE TRIGGER fail_queue BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_injected()`
		dropQueue = `DROP TRIGGER fail_queue ON outbox`
		failAudit = `CREATE TRIGGER fail_audit BEFORE INSERT ON audit FOR EACH ROW WHEN (NEW.route = '` + route + `' AND NEW.status = 0) EXECUTE FUNCTION fail_injected()`
		dropAudit = `DROP TRIGGER fail_audit ON audit`
	}
	before := queued()
	if _, err := db.ExecContext(ctx, failQueue); err != nil {
		t.Fatal(err)
	}
	if r := post(""); r.Status != 500 {
		t.Fatalf("send with its write failing: %d %s", r.Status, r.Body)
	}
	if _, err := db.ExecContext(ctx, dropQueue); err != nil {
		t.Fatal(err)
	}
	// The audit row cannot be inserted: 503, nothing queued.
	if _, err := db.ExecContext(ctx, failAudit); err != nil {
		t.Fatal(err)
	}
	wantError(t, post(""), 503, "storage_unavailable")
	if _, err := db.ExecContext(ctx, dropAudit); err != nil {
		t.Fatal(err)
	}
	if n := queued(); n != before {
		t.Fatalf("%d messages queued by the failed sends", n-before)
	}
	// Both are counted refusals (one row each, count 1), no single rows
	// at status 0 or 5xx.
	eventually(t, "the refusals counted", func() bool { return len(rows()) == 4 })
	for _, r := range rows()[2:] {
		if !r.Counted || r.Count != 1 || (r.Status != 500 && r.Status != 503) {
			t.Errorf("failed send's row: %+v, want a refusal counted once at 500 or 503", r)
		}
	}
	if rs := rows(); rs[2].Status == rs[3].Status {
		t.Errorf("the two failures share a status: %+v", rs)
	}
}
