package app_test

import (
	"testing"
	"time"

	"waappliance/peers"
)

// waitFor polls cond until it holds or the revoke deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > revokeDeadline {
			t.Fatalf("%s: not within %v", what, revokeDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRevokedPeersConnectionsClosedByServer watches the appliance's side:
// an open keep-alive connection of a disabled or removed peer is closed
// within 2 s (not left to idle out), while another peer's stays open.
func TestRevokedPeersConnectionsClosedByServer(t *testing.T) {
	ta := startAppliance(t)
	bystanderPeer := ta.addPeer(t, "bystander", peers.ScopeRead)
	bystander := ta.client(t, bystanderPeer)
	reusedConn(t, bystander) // opens a keep-alive connection
	for _, change := range []string{"disable", "remove"} {
		t.Run(change, func(t *testing.T) {
			c := ta.addPeer(t, "victim-"+change, peers.ScopeRead)
			cl := ta.client(t, c)
			if r := do(t, cl, "GET", "/v1/whoami", nil); r.Status != 200 {
				t.Fatalf("victim: %d", r.Status)
			}
			if n := ta.OpenConns(c.Peer.Addr); n != 1 {
				t.Fatalf("victim has %d open connections on the appliance, want 1", n)
			}
			if n := ta.OpenConns(bystanderPeer.Peer.Addr); n != 1 {
				t.Fatalf("bystander has %d open connections, want 1", n)
			}
			mustCLI(t, ta.dir, "peer", change, c.Peer.Name)
			took := waitFor(t, "victim's connection closed by the appliance", func() bool { return ta.OpenConns(c.Peer.Addr) == 0 })
			t.Logf("closed %v after `peer %s`", took, change)
			if n := ta.OpenConns(bystanderPeer.Peer.Addr); n != 1 {
				t.Fatalf("bystander has %d open connections after the change, want 1", n)
			}
			if !reusedConn(t, bystander) {
				t.Error("the bystander's keep-alive connection was disturbed")
			}
		})
	}
}

// TestRateBucketsForgotten: keys that leave the device lose their rate
// limit bucket, so removed and rotated-away keys do not pile up in memory.
func TestRateBucketsForgotten(t *testing.T) {
	ta := startAppliance(t)
	a, b := ta.addPeer(t, "a", peers.ScopeRead), ta.addPeer(t, "b", peers.ScopeRead)
	do(t, ta.client(t, a), "GET", "/v1/whoami", nil)
	do(t, ta.client(t, b), "GET", "/v1/whoami", nil)
	if n := ta.RateBuckets(); n != 2 {
		t.Fatalf("%d rate buckets after two peers' requests, want 2", n)
	}
	mustCLI(t, ta.dir, "peer", "remove", "a")
	waitFor(t, "removed key's bucket forgotten", func() bool { return ta.RateBuckets() == 1 })
	mustCLI(t, ta.dir, "peer", "rotate", "b")
	waitFor(t, "rotated-away key's bucket forgotten", func() bool { return ta.RateBuckets() == 0 })
}
