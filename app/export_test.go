package app

import (
	"context"

	"waappliance/peers"
	"waappliance/store"
)

// Initialize is initialize for the tests of package app_test: the path
// `init` takes, so that a test's state is made as a user's is, on either
// engine (url "" is SQLite in dir).
func Initialize(ctx context.Context, dir string, s peers.Server, url string) error {
	_, err := initialize(ctx, dir, s, DatabaseChoice{Named: url != "", URL: url})
	return err
}

// OpenStateDB opens the database of the state in dir as every command
// does: following its link.
func OpenStateDB(ctx context.Context, dir string) (*store.DB, error) {
	return openStateDB(ctx, dir, DatabaseChoice{}, nil)
}
