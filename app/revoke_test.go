package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// revokeDeadline is the promise: a CLI change reaches a running
// appliance within 2 seconds.
const revokeDeadline = 2 * time.Second

// stopsWorking polls whoami through cl until it fails; it reports how long
// that took, or fails the test after the deadline.
func stopsWorking(t *testing.T, cl *wgclient.Client, start time.Time) time.Duration {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		r, err := cl.Do(ctx, "GET", "/v1/whoami", nil)
		cancel()
		if err != nil || r.Status != 200 {
			return time.Since(start)
		}
		if time.Since(start) > revokeDeadline {
			t.Fatalf("key still works %v after the change", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reusedConn sends whoami and reports whether the HTTP connection was reused.
func reusedConn(t *testing.T, cl *wgclient.Client) bool {
	t.Helper()
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://10.77.0.1/v1/whoami", nil)
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		t.Fatalf("bystander request failed: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bystander got %d", resp.StatusCode)
	}
	return reused
}

func TestRevokedKeysStopWithinTwoSeconds(t *testing.T) {
	ta := startAppliance(t)
	bystander := ta.client(t, ta.addPeer(t, "bystander", peers.ScopeRead))
	reusedConn(t, bystander) // open a keep-alive connection

	cases := []struct {
		name   string
		expire time.Duration
		change func(t *testing.T, name string)
	}{
		{"removed", 0, func(t *testing.T, n string) { mustCLI(t, ta.dir, "peer", "remove", n) }},
		{"disabled", 0, func(t *testing.T, n string) { mustCLI(t, ta.dir, "peer", "disable", n) }},
		{"rotated", 0, func(t *testing.T, n string) { mustCLI(t, ta.dir, "peer", "rotate", n) }},
		{"expired", 3 * time.Second, func(t *testing.T, n string) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "victim-" + tc.name
			args := []string{"peer", "add", name, "--scopes", "read"}
			if tc.expire > 0 {
				args = append(args, "--expires", tc.expire.String())
			}
			_, cfg := mustCLI(t, ta.dir, args...)
			c := createdFromConfig(t, ta, name, cfg)
			cl := ta.client(t, c)
			if r := do(t, cl, "GET", "/v1/whoami", nil); r.Status != 200 {
				t.Fatalf("victim before change: %d %s", r.Status, r.Body)
			}
			start := time.Now()
			if tc.expire > 0 {
				p, _ := ta.Peers().Get(name)
				start = p.ExpiresAt
				time.Sleep(time.Until(start))
			}
			tc.change(t, name)
			took := stopsWorking(t, cl, start)
			t.Logf("%s key stopped working after %v", tc.name, took)
			if !reusedConn(t, bystander) {
				t.Error("the bystander's keep-alive connection was disturbed")
			}
		})
	}
}

// TestReenabledPeerWorksAgain checks disable is reversible. A client that
// kept its old WireGuard session retries the handshake on its own only after
// about 15 s (WireGuard's keepalive + rekey timeout), so the test brings up
// a fresh client with the same key, as a phone toggling its tunnel would.
func TestReenabledPeerWorksAgain(t *testing.T) {
	ta := startAppliance(t)
	_, cfg := mustCLI(t, ta.dir, "peer", "add", "carol", "--scopes", "read")
	c := createdFromConfig(t, ta, "carol", cfg)
	cl := ta.client(t, c)
	do(t, cl, "GET", "/v1/whoami", nil)
	mustCLI(t, ta.dir, "peer", "disable", "carol")
	stopsWorking(t, cl, time.Now())
	cl.Close()
	mustCLI(t, ta.dir, "peer", "enable", "carol")
	ta.Nudge()
	deadline := time.Now().Add(revokeDeadline)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if p, _ := ta.Peers().Get("carol"); !p.Disabled {
			break
		}
	}
	time.Sleep(100 * time.Millisecond)
	if r := do(t, ta.client(t, c), "GET", "/v1/whoami", nil); r.Status != 200 {
		t.Fatalf("re-enabled peer: %d %s", r.Status, r.Body)
	}
}
