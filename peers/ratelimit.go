package peers

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiters holds one token bucket per peer key, so one peer's flood never
// drains another's budget. The clock is injected for tests.
type Limiters struct {
	now func() time.Time

	mu sync.Mutex
	m  map[Key]*rate.Limiter
}

// NewLimiters returns an empty set; now nil means time.Now.
func NewLimiters(now func() time.Time) *Limiters {
	if now == nil {
		now = time.Now
	}
	return &Limiters{now: now, m: map[Key]*rate.Limiter{}}
}

// Decision is the outcome of one Allow call, enough for the RateLimit-*
// headers and Retry-After.
type Decision struct {
	OK         bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// Allow takes one token from the bucket of key, configured with rate r per
// second and burst b (the bucket follows changes to either).
func (l *Limiters) Allow(key Key, r float64, b int) Decision {
	// The registry validates limits; a bad stored value (from an older
	// version) still must not reach the float arithmetic below.
	if !(r >= MinRate) {
		r = MinRate
	}
	b = max(b, 1)
	now := l.now()
	l.mu.Lock()
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(r), b)
		l.m[key] = lim
	} else if float64(lim.Limit()) != r || lim.Burst() != b {
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, b)
	}
	l.mu.Unlock()

	d := Decision{Limit: b}
	res := lim.ReserveN(now, 1)
	if delay := res.DelayFrom(now); !res.OK() || delay > 0 {
		res.CancelAt(now)
		d.RetryAfter = delay
		if !res.OK() || delay <= 0 { // not OK: the request exceeds the burst
			d.RetryAfter = time.Second
		}
	} else {
		d.OK = true
	}
	tokens := lim.TokensAt(now)
	d.Remaining = max(0, int(math.Floor(tokens)))
	d.Reset = durationOf((float64(b) - tokens) / r)
	return d
}

// durationOf converts seconds to a Duration without overflow: NaN and
// negative values are 0, anything past the int64 range is the largest
// Duration.
func durationOf(sec float64) time.Duration {
	switch {
	case !(sec > 0):
		return 0
	case sec >= float64(math.MaxInt64)/float64(time.Second):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(sec * float64(time.Second))
}

// Forget drops the bucket of key (after the peer is removed or rotated).
func (l *Limiters) Forget(key Key) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// Retain drops the bucket of every key for which live is false (keys of
// removed peers and rotated-away keys), so buckets do not pile up.
func (l *Limiters) Retain(live func(Key) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.m {
		if !live(k) {
			delete(l.m, k)
		}
	}
}

// Len is the number of buckets held.
func (l *Limiters) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
