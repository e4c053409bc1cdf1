package app_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"waappliance/audit"
	"waappliance/peers"
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
