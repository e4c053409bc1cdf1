package app_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"waappliance/peers"
)

// TestAuditRecordsEveryMutatingAnswer: mutating requests answered before a
// handler runs (429 by the rate limit, 404 and 405 by the router), refused
// for scope (403) or size (413) are in the durable audit log too.
func TestAuditRecordsEveryMutatingAnswer(t *testing.T) {
	ta := startAppliance(t)
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
	var got struct {
		Entries []struct {
			Peer, Method, Route, Target string
			Status                      int
		}
	}
	if err := do(t, admin, "GET", "/v1/audit", nil).JSON(&got); err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, e := range got.Entries {
		have = append(have, e.Peer+" "+e.Method+" "+e.Route+" "+e.Target+" "+strconv.Itoa(e.Status))
	}
	if len(have) != len(steps) {
		t.Fatalf("audit has %d entries, want %d:\n%s", len(have), len(steps), strings.Join(have, "\n"))
	}
	for i, st := range steps {
		if have[i] != st.want {
			t.Errorf("entry %d = %q, want %q", i, have[i], st.want)
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
