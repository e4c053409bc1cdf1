package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// within fails t unless ch is closed within a generous bound (a hang is the
// failure; the bound says nothing about speed).
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no wake-up", what)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestNotify: in one process Notify wakes its channel's waiters and only
// them; a second handle on the same database (another process) is woken
// by a commit and Notify there (PostgreSQL: NOTIFY; SQLite: the
// data_version poll); Wait ends with ctx; Close wakes everyone and ends
// Changed.
func TestNotify(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		db := e.open(t)
		a, err := db.Changed(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.Changed(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Notify(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		within(t, a, "Notify a")
		if closed(b) {
			t.Fatal("Notify a woke b")
		}

		other := reopen(t, e, db)
		x, err := other.Changed(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Settings().Set(ctx, "notify_test", "1"); err != nil {
			t.Fatal(err)
		}
		if err := db.Notify(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		within(t, x, "another handle")

		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := other.Wait(short, "nobody"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait without Notify: %v", err)
		}

		c, err := other.Changed(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		other.Close()
		within(t, c, "Close")
		if _, err := other.Changed(ctx, "c"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Changed after Close: %v", err)
		}
	})
}

// reopen opens a second handle on db's database, as another process would.
func reopen(t *testing.T, e engine, db *DB) *DB {
	t.Helper()
	var other *DB
	var err error
	if db.Dialect == Postgres {
		other, err = OpenDSN(context.Background(), db.notify.pg.ConnString(), Options{})
	} else {
		other, err = OpenPath(context.Background(), db.Path)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// TestNotifyAfterListenerLoss: when PostgreSQL ends the listening
// connection, the watcher reconnects and then wakes every waiter (what was
// sent meanwhile is lost), and notifications arrive again.
func TestNotifyAfterListenerLoss(t *testing.T) {
	db := postgresEngine().open(t)
	ctx := context.Background()
	ch, err := db.Changed(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = db.QueryRowContext(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+pgChannel+`'`).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("ended %d listeners: %v", n, err)
	}
	// The wake-up comes once it listens again: a Notify from another
	// handle then reaches this one through PostgreSQL.
	within(t, ch, "listener lost")
	other := reopen(t, postgresEngine(), db)
	ch, err = db.Changed(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Notify(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	within(t, ch, "Notify after the reconnect")
}
