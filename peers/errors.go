package peers

import "errors"

var (
	// ErrNotFound is returned by Get, Remove, Update, Rotate and the
	// enable/disable calls when no peer has the name.
	ErrNotFound = errors.New("peer not found")
	// ErrExists is returned by Add when the name or the public key is taken.
	ErrExists = errors.New("peer already exists")
	// ErrBadName is returned by Add for a name outside [a-z0-9][a-z0-9-]{0,31}.
	ErrBadName = errors.New("invalid peer name: want [a-z0-9][a-z0-9-]{0,31}")
	// ErrBadScope is returned by ParseScopes for an unknown scope.
	ErrBadScope = errors.New("invalid scope")
	// ErrBadSession is returned by Add and Update for an invalid session name.
	ErrBadSession = errors.New("invalid session name: want [a-z0-9][a-z0-9-]{0,31}")
	// ErrBadLimit is returned by Add and Update for a negative or absurd rate or burst.
	ErrBadLimit = errors.New("invalid rate limit: rate must be > 0 and burst >= 1")
	// ErrSubnetFull is returned by Add when the subnet has no free address.
	ErrSubnetFull = errors.New("no free address left in the tunnel subnet")
	// ErrNotInitialized is returned by LoadServer when init has not run.
	ErrNotInitialized = errors.New("appliance is not initialized (run `waappliance init`)")
	// ErrAlreadyInitialized is returned by InitServer when a server key exists.
	ErrAlreadyInitialized = errors.New("state is already initialized")
)
