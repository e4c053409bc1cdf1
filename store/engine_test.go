package store

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"waappliance/internal/pgtest"
)

// engine opens fresh databases of one kind, each a test's own: a new
// SQLite state directory, or a new PostgreSQL database (pgtest), closed
// and removed when the test ends.
type engine struct {
	name string
	open func(t *testing.T) *DB
}

func sqliteEngine() engine {
	return engine{"sqlite", func(t *testing.T) *DB {
		t.Helper()
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "s"), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}}
}

func postgresEngine() engine {
	return engine{"postgres", func(t *testing.T) *DB {
		t.Helper()
		db, err := OpenDSN(context.Background(), pgtest.Fresh(t), Options{Create: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}}
}

// engines is SQLite, and PostgreSQL when pgtest has a server.
func engines() []engine {
	es := []engine{sqliteEngine()}
	if pgtest.Enabled() {
		es = append(es, postgresEngine())
	}
	return es
}

// forEngines runs fn as a parallel subtest per engine.
func forEngines(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			fn(t, e)
		})
	}
}

// testHost is the host name scripts/pg's server certificate holds besides
// the loopback ones; the tests resolve it to 127.0.0.1 themselves, so a
// link to it is judged as one that leaves the machine while its traffic
// stays on loopback.
const testHost = "pg.waa.test"

func init() {
	pgLookup = func(ctx context.Context, host string) ([]string, error) {
		if host == testHost {
			return []string{"127.0.0.1"}, nil
		}
		return net.DefaultResolver.LookupHost(ctx, host)
	}
}
