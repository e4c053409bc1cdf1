package app_test

import (
	"runtime"
	"testing"
	"time"

	"waappliance/peers"
)

// TestNoGoroutineLeak: an appliance and a client that did real work leave no
// goroutine behind once both are closed.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ta := startAppliance(t)
		c := ta.addPeer(t, "leaky", peers.ScopeRead)
		cl := ta.client(t, c)
		for i := 0; i < 5; i++ {
			do(t, cl, "GET", "/v1/whoami", nil)
		}
		cl.Close()
		ta.Close()
	}()
	noGoroutinesAbove(t, before, 5*time.Second)
}

// noGoroutinesAbove waits up to wait for the goroutine count to fall back
// to before, and fails with every stack when it does not.
func noGoroutinesAbove(t *testing.T, before int, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines before, %d after closing everything:\n%s", before, n, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
