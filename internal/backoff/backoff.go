// Package backoff is the appliance's one retry delay: capped exponential
// with full jitter. Retry number n waits a uniformly random time in
// [0, min(Max, Min·2ⁿ)], so many clients that failed at the same moment
// (fifty sessions dropped by one network blip) retry spread over the
// window instead of in lock-step, and none waits longer than Max.
//
// The random source and the clock are injectable, so tests can assert the
// planned delays without sleeping.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a retry schedule. Zero values: Min 1 s, Max 1 min, Rand is
// math/rand/v2's Int64N, After is time.After.
type Policy struct {
	Min, Max time.Duration
	// Rand returns a uniform random number in [0, n), n > 0.
	Rand func(n int64) int64
	// After waits d (the clock of Wait).
	After func(d time.Duration) <-chan time.Time
}

func (p Policy) bounds() (lo, hi time.Duration) {
	lo, hi = p.Min, p.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = time.Minute
	}
	return lo, max(lo, hi)
}

// Ceiling is the longest delay retry number attempt (0-based) may get:
// min(Max, Min·2^attempt).
func (p Policy) Ceiling(attempt int) time.Duration {
	lo, hi := p.bounds()
	if attempt < 0 {
		attempt = 0
	}
	c := lo
	for i := 0; i < attempt && c < hi; i++ {
		c *= 2
	}
	return min(c, hi)
}

// Delay is the wait before retry number attempt (0-based): uniform in
// [0, Ceiling(attempt)].
func (p Policy) Delay(attempt int) time.Duration {
	c := p.Ceiling(attempt)
	r := p.Rand
	if r == nil {
		r = rand.Int64N
	}
	return time.Duration(r(int64(c) + 1))
}

// Backoff counts the failures of one retry loop. It is not safe for
// concurrent use; give each loop its own.
type Backoff struct {
	Policy
	n int
}

// New returns a Backoff on p with no failures yet.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Next returns the delay before the next retry and counts one failure.
func (b *Backoff) Next() time.Duration {
	d := b.Delay(b.n)
	b.n++
	return d
}

// Wait sleeps Next() on the policy's clock; it returns ctx's error early
// when ctx ends first, and the delay it planned.
func (b *Backoff) Wait(ctx context.Context) (time.Duration, error) {
	d := b.Next()
	after := b.After
	if after == nil {
		after = time.After
	}
	select {
	case <-after(d):
		return d, nil
	case <-ctx.Done():
		return d, ctx.Err()
	}
}

// Failures is how many delays Next has handed out since the last Reset.
func (b *Backoff) Failures() int { return b.n }

// Reset starts the schedule again, after a success.
func (b *Backoff) Reset() { b.n = 0 }
