package peers

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is returned by Get, Remove, Update, Rotate and the
	// enable/disable calls when no peer has the name.
	ErrNotFound = errors.New("peer not found")
	// ErrExists is returned by Add when the name is taken.
	ErrExists = errors.New("peer already exists")
	// ErrKeyInUse is returned by Add when the public key is another peer's
	// or the appliance's own.
	ErrKeyInUse = errors.New("public key already in use")
	// ErrBadName is returned by Add for a name outside [a-z0-9][a-z0-9-]{0,31}.
	ErrBadName = errors.New("invalid peer name: want [a-z0-9][a-z0-9-]{0,31}")
	// ErrBadScope is returned by ParseScopes for an unknown scope.
	ErrBadScope = errors.New("invalid scope")
	// ErrBadSession is returned by Add and Update for an invalid session name.
	ErrBadSession = errors.New("invalid session name: want [a-z0-9][a-z0-9-]{0,31}")
	// ErrBadLimit is returned by ValidateLimit (and so by Add, Update and
	// Server.Validate) for a rate or burst out of range, NaN or infinite.
	ErrBadLimit = fmt.Errorf("invalid rate limit: rate must be a number from %g to %.0f requests/second, burst an integer from 1 to %d", MinRate, MaxRate, MaxBurst)
	// ErrBadCap is returned by ValidateMaxConns and ValidateMaxStreams (and
	// so by Add and Update) for a connection or stream cap out of range.
	ErrBadCap = errors.New("invalid cap")
	// ErrBadExpiry is returned by ValidateExpiry (and so by Add and Update)
	// for an expiry that is not in the future or is after MaxExpiry.
	ErrBadExpiry = fmt.Errorf("invalid expiry: must be in the future and before %s", MaxExpiry.Format("2006-01-02"))
	// ErrBadAPIHost is returned by NormalizeAPIHosts (and so by
	// Server.Validate and UpdateServer) for a name that is not a host name
	// or IP literal, or has a port or a wildcard.
	ErrBadAPIHost = errors.New("invalid API host name")
	// ErrSubnetFull is returned by Add when the subnet has no free address.
	ErrSubnetFull = errors.New("no free address left in the tunnel subnet")
	// ErrNotInitialized is returned by LoadServer when init has not run.
	ErrNotInitialized = errors.New("appliance is not initialized (run `waappliance init`)")
	// ErrAlreadyInitialized is returned by InitServer when a server key exists.
	ErrAlreadyInitialized = errors.New("state is already initialized")
)

// PeerError is a failed registry operation on the peer Name. Err is one of
// the sentinels above, possibly wrapped, or a database error; callers that
// show errors to people use Name and the sentinel rather than Error, which
// names the Go operation.
type PeerError struct {
	Op   string // e.g. "peers.Add"
	Name string
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("%s %q: %v", e.Op, e.Name, e.Err) }

func (e *PeerError) Unwrap() error { return e.Err }

func peerErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *PeerError
	if errors.As(err, &pe) {
		return err
	}
	return &PeerError{Op: op, Name: name, Err: err}
}
