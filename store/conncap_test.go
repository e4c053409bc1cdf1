package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"waappliance/internal/pgtest"
)

// withParam returns the URL dsn with the query parameter k=v added.
func withParam(t *testing.T, dsn, k, v string) string {
	t.Helper()
	u := mustURL(t, dsn)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPostgresConnectionCap: a PostgreSQL handle opens at most
// DefaultMaxConns connections, or what pool_max_conns says (which is not
// sent to the server as a setting); a bad value is refused without the
// password. Under a burst of 200 concurrent writers (WriteTx and Batch,
// each a read-modify-write) and readers on a cap of 4, everything
// completes, no increment is lost, and the server never sees more than the
// cap plus the LISTEN connection from this database handle.
func TestPostgresConnectionCap(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip(pgtest.Env + " is not set (scripts/pg runs a server)")
	}
	ctx := context.Background()
	dsn := pgtest.Fresh(t)
	db, err := OpenDSN(ctx, dsn, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := db.Stats().MaxOpenConnections; got != DefaultMaxConns {
		t.Errorf("default cap %d, want %d", got, DefaultMaxConns)
	}
	db.Close()

	pw, _ := mustURL(t, dsn).User.Password()
	for _, bad := range []string{"1", "0", "-3", "many", ""} {
		_, err := OpenDSN(ctx, withParam(t, dsn, MaxConnsParam, bad), Options{})
		if err == nil || !strings.Contains(err.Error(), MaxConnsParam) || (pw != "" && strings.Contains(err.Error(), pw)) {
			t.Errorf("%s=%q: %v", MaxConnsParam, bad, err)
		}
	}

	const capConns = 4
	db, err = OpenDSN(ctx, withParam(t, dsn, MaxConnsParam, "4"), Options{})
	if err != nil {
		t.Fatalf("open with %s: %v", MaxConnsParam, err)
	}
	defer db.Close()
	if got := db.Stats().MaxOpenConnections; got != capConns {
		t.Fatalf("cap %d, want %d", got, capConns)
	}
	// The LISTEN connection, as a serving appliance has it.
	changed, err := db.Changed(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	_ = changed

	// The server's count of this database's connections, sampled on a
	// connection of the sampler's own (not counted).
	mon, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var n int64
			if err := mon.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var writes atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 4 {
			case 0: // a read-modify-write in WriteTx
				err = db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
					v, _, err := SettingsOf(tx).Get(ctx, "counter")
					if err != nil {
						return err
					}
					c, _ := strconv.Atoi(v) // "" before the first
					return SettingsOf(tx).Set(ctx, "counter", strconv.Itoa(c+1))
				})
				writes.Add(1)
			case 1, 2: // group commit, as sends and audit rows
				err = db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
					_, err := SettingsOf(tx).Add(ctx, "counter", 1)
					return err
				})
				writes.Add(1)
			default: // reads, outside and in a snapshot
				var v string
				if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings`).Scan(&v); err == nil {
					err = db.ReadTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
						_, _, err := SettingsOf(tx).Get(ctx, "counter")
						return err
					})
				}
			}
			errs <- err
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the burst did not complete within 2 minutes under a cap of %d connections: a deadlock (pool stats %+v)", capConns, db.Stats())
	}
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	v, _, err := db.Settings().Get(ctx, "counter")
	if err != nil || v != strconv.FormatInt(writes.Load(), 10) {
		t.Errorf("counter %q (%v) after %d increments", v, err, writes.Load())
	}
	if p := peak.Load(); p > capConns+1 {
		t.Errorf("the server saw %d connections of this database; the cap is %d plus the LISTEN connection", p, capConns)
	} else if p < 2 {
		t.Errorf("the sampler saw %d connections: it measures nothing", p)
	}
	t.Logf("peak %d connections on the server; pool: %+v", peak.Load(), db.Stats())
}
