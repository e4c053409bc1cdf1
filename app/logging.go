package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the log limiter: per interval, the first logBurst lines of
// one level and message pass.
const (
	logBurst    = 10
	logInterval = 10 * time.Second
)

// logLimiter is a slog.Handler that passes the first burst records of each
// (level, message) per interval and drops the rest; the first record of
// that key in a later interval is preceded by one "suppressed N similar
// lines" summary. A failing disk makes every request fail the same way:
// without it, 50,000 identical lines were logged in 20 s.
//
// Keys are bounded: the messages are the program's own constant strings
// (attributes are not part of the key), keys quiet for an interval are
// forgotten, and past maxLimiterKeys a new message passes uncounted.
type logLimiter struct {
	next     slog.Handler
	st       *limiterState
	burst    int
	interval time.Duration
}

type limiterState struct {
	mu        sync.Mutex
	now       func() time.Time
	keys      map[limiterKey]*limiterCount
	lastSweep time.Time
}

type limiterKey struct {
	level slog.Level
	msg   string
}

type limiterCount struct {
	start      time.Time // of the current interval
	passed     int
	suppressed int
}

const maxLimiterKeys = 4096

// newLogLimiter wraps next; now nil is time.Now.
func newLogLimiter(next slog.Handler, burst int, interval time.Duration, now func() time.Time) *logLimiter {
	if now == nil {
		now = time.Now
	}
	return &logLimiter{next: next, burst: burst, interval: interval,
		st: &limiterState{now: now, keys: map[limiterKey]*limiterCount{}}}
}

func (h *logLimiter) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logLimiter) Handle(ctx context.Context, r slog.Record) error {
	pass, summaries := h.st.admit(limiterKey{r.Level, r.Message}, h.burst, h.interval)
	for _, sm := range summaries {
		s := slog.NewRecord(r.Time, sm.key.level, fmt.Sprintf("suppressed %d similar lines", sm.n), r.PC)
		s.AddAttrs(slog.String("of", sm.key.msg), slog.Duration("within", h.interval))
		if err := h.next.Handle(ctx, s); err != nil {
			return err
		}
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

type limiterSummary struct {
	key limiterKey
	n   int
}

// admit counts one record of k: pass says whether it goes out. summaries
// are the keys whose interval ended with lines dropped, to report first
// (checked at most once an interval, so a flood that stopped is reported
// with the next line of any kind).
func (s *limiterState) admit(k limiterKey, burst int, interval time.Duration) (pass bool, summaries []limiterSummary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastSweep) >= interval {
		s.lastSweep = now
		for key, c := range s.keys {
			if now.Sub(c.start) < interval {
				continue
			}
			if c.suppressed > 0 {
				summaries = append(summaries, limiterSummary{key, c.suppressed})
			}
			delete(s.keys, key) // quiet for an interval: forget it
		}
	}
	c := s.keys[k]
	if c == nil {
		if len(s.keys) >= maxLimiterKeys {
			return true, summaries // unknown flood of distinct messages: pass, do not grow
		}
		c = &limiterCount{start: now}
		s.keys[k] = c
	}
	if now.Sub(c.start) >= interval {
		if c.suppressed > 0 {
			summaries = append(summaries, limiterSummary{k, c.suppressed})
		}
		c.start, c.passed, c.suppressed = now, 0, 0
	}
	if c.passed < burst {
		c.passed++
		return true, summaries
	}
	c.suppressed++
	return false, summaries
}

func (h *logLimiter) WithAttrs(as []slog.Attr) slog.Handler {
	return &logLimiter{next: h.next.WithAttrs(as), st: h.st, burst: h.burst, interval: h.interval}
}

func (h *logLimiter) WithGroup(name string) slog.Handler {
	return &logLimiter{next: h.next.WithGroup(name), st: h.st, burst: h.burst, interval: h.interval}
}
