package peers

import (
	"fmt"
	"time"
)

// Limits of a peer's request budget. They are wide enough for benchmarks
// (a million requests a second) and narrow enough that every derived
// duration (Retry-After, RateLimit-Reset) fits a time.Duration.
const (
	// MinRate is the lowest rate: one request every 100 seconds.
	MinRate = 0.01
	// MaxRate is the highest rate, in requests per second.
	MaxRate = 1e6
	// MaxBurst is the largest bucket.
	MaxBurst = 1_000_000
)

// MaxExpiry is the latest expiry a peer may have: expiries are stored as
// Unix nanoseconds, which end in April 2262.
var MaxExpiry = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)

// ValidateRate reports ErrBadLimit unless rate is a finite number of
// requests per second from MinRate to MaxRate (NaN fails every comparison).
func ValidateRate(rate float64) error {
	if !(rate >= MinRate && rate <= MaxRate) {
		return fmt.Errorf("%w (got rate %g)", ErrBadLimit, rate)
	}
	return nil
}

// ValidateBurst reports ErrBadLimit unless burst is from 1 to MaxBurst.
func ValidateBurst(burst int) error {
	if burst < 1 || burst > MaxBurst {
		return fmt.Errorf("%w (got burst %d)", ErrBadLimit, burst)
	}
	return nil
}

// ValidateLimit is the one check of a rate and burst, shared by the
// registry, the API and the command line.
func ValidateLimit(rate float64, burst int) error {
	if err := ValidateRate(rate); err != nil {
		return err
	}
	return ValidateBurst(burst)
}

// ValidateExpiry reports ErrBadExpiry unless t is zero (never expires) or
// after now and before MaxExpiry.
func ValidateExpiry(t, now time.Time) error {
	if t.IsZero() {
		return nil
	}
	if !t.After(now) || !t.Before(MaxExpiry) {
		return fmt.Errorf("%w (got %s)", ErrBadExpiry, t.UTC().Format(time.RFC3339))
	}
	return nil
}

// ValidateSendPerMinute reports ErrBadLimit unless n messages a minute is
// from 1 to 1,000,000.
func ValidateSendPerMinute(n int) error {
	if n < 1 || n > 1e6 {
		return fmt.Errorf("%w (send_per_minute must be 1-1000000, got %d)", ErrBadLimit, n)
	}
	return nil
}

// Bounds of the per-peer caps on connections and event streams (0 means
// the appliance's default).
const (
	MaxPeerConns   = 100_000
	MaxPeerStreams = 10_000
)

// ValidateMaxConns reports ErrBadCap unless n is 0 (the appliance's
// default) or from 1 to MaxPeerConns.
func ValidateMaxConns(n int) error {
	if n < 0 || n > MaxPeerConns {
		return fmt.Errorf("%w: max_conns must be 0 (the appliance default) or 1-%d, got %d", ErrBadCap, MaxPeerConns, n)
	}
	return nil
}

// ValidateMaxStreams reports ErrBadCap unless n is 0 (the appliance's
// default) or from 1 to MaxPeerStreams.
func ValidateMaxStreams(n int) error {
	if n < 0 || n > MaxPeerStreams {
		return fmt.Errorf("%w: max_streams must be 0 (the appliance default) or 1-%d, got %d", ErrBadCap, MaxPeerStreams, n)
	}
	return nil
}

// ValidateListenPort reports an error unless port is a UDP port from 1 to
// 65535 (0 is refused: it would mean "any" to the OS, and the default to
// Server.Validate).
func ValidateListenPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("want a UDP port from 1 to 65535")
	}
	return nil
}
