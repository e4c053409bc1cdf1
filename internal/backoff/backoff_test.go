package backoff_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"waappliance/internal/backoff"
)

func TestCeilingDoublesToTheCap(t *testing.T) {
	p := backoff.Policy{Min: time.Second, Max: time.Minute}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		if got := p.Ceiling(i); got != w*time.Second {
			t.Errorf("Ceiling(%d) = %v, want %v", i, got, w*time.Second)
		}
	}
	if got := p.Ceiling(1 << 20); got != time.Minute {
		t.Errorf("Ceiling of a huge attempt = %v, want the cap", got)
	}
	if got := (backoff.Policy{}).Ceiling(0); got != time.Second {
		t.Errorf("zero policy starts at %v, want 1s", got)
	}
	if got := (backoff.Policy{Min: 5 * time.Second, Max: time.Second}).Ceiling(3); got != 5*time.Second {
		t.Errorf("Max below Min: %v, want Min", got)
	}
}

// TestFiftyDroppedAtOnceSpreadOut: fifty loops that fail at the same
// moment plan delays spread over the whole window, each within the cap,
// not one shared delay (whatsmeow's own is errors × 2 s for everyone).
func TestFiftyDroppedAtOnceSpreadOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := backoff.Policy{Min: time.Second, Max: 30 * time.Second, Rand: rng.Int64N}
	for attempt := range 8 {
		ceil := p.Ceiling(attempt)
		var ds []time.Duration
		for range 50 {
			b := backoff.New(p)
			for range attempt {
				b.Next()
			}
			ds = append(ds, b.Next())
		}
		checkSpread(t, ds, ceil)
	}
}

func checkSpread(t *testing.T, ds []time.Duration, ceil time.Duration) {
	t.Helper()
	slices.Sort(ds)
	if ds[0] < 0 || ds[len(ds)-1] > ceil {
		t.Fatalf("delays %v..%v outside [0, %v]", ds[0], ds[len(ds)-1], ceil)
	}
	// Spread: the earliest quarter and the latest quarter of the window
	// are both used, and no delay is shared by more than two loops.
	if ds[0] > ceil/4 || ds[len(ds)-1] < ceil*3/4 {
		t.Errorf("delays %v..%v do not spread over [0, %v]", ds[0], ds[len(ds)-1], ceil)
	}
	for i := 2; i < len(ds); i++ {
		if ds[i] == ds[i-2] {
			t.Errorf("three loops share the delay %v", ds[i])
		}
	}
	// Every tenth of the window gets at least one of fifty.
	var deciles [10]int
	for _, d := range ds {
		deciles[min(9, int(10*d/(ceil+1)))]++
	}
	for i, n := range deciles {
		if n == 0 {
			t.Errorf("no delay in tenth %d of [0, %v]: %v", i, ceil, deciles)
		}
	}
}

// TestWaitUsesTheInjectedClock: Wait sleeps on After, counts failures,
// and Reset starts over.
func TestWaitUsesTheInjectedClock(t *testing.T) {
	var planned []time.Duration
	b := backoff.New(backoff.Policy{Min: time.Second, Max: 4 * time.Second,
		Rand: func(n int64) int64 { return n - 1 }, // always the ceiling
		After: func(d time.Duration) <-chan time.Time {
			planned = append(planned, d)
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		}})
	for range 4 {
		if _, err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(planned, want) {
		t.Errorf("planned %v, want %v", planned, want)
	}
	if b.Failures() != 4 {
		t.Errorf("Failures = %d", b.Failures())
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Errorf("after Reset: %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.After = func(time.Duration) <-chan time.Time { return nil } // never fires
	if _, err := b.Wait(ctx); err == nil {
		t.Error("Wait ignored a cancelled context")
	}
}
