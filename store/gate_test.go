package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
)

func openGated(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.gate == nil {
		t.Fatal("a SQLite DB without its write gate")
	}
	return db
}

// TestSQLiteGateQueuesWhatsmeow: whatsmeow's sqlstore, which shares the
// *sql.DB, waits for our write transaction in the gate, not in SQLite's
// busy handler (which polls with sleeps of up to 100 ms and starved its
// Signal-session writes behind a burst of group commits), and goes on once
// that transaction has committed.
func TestSQLiteGateQueuesWhatsmeow(t *testing.T) {
	db := openGated(t)
	ctx := context.Background()
	c := sqlstore.NewWithDB(db.DB, string(db.Dialect), waLog.Noop)
	if err := c.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	queued := make(chan struct{}, 16)
	db.gate.onQueue = func() { queued <- struct{}{} }

	holding, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			close(holding)
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES ('gate-test', 'x')`)
			return err
		})
	}()
	<-holding
	putDone := make(chan struct{})
	var putErr error
	go func() {
		defer close(putDone)
		dev := c.NewDevice()
		jid := types.NewJID("15550000001", types.DefaultUserServer)
		dev.ID = &jid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
			AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
		putErr = c.PutDevice(ctx, dev) // an Exec outside a transaction
	}()
	select {
	case <-queued:
	case <-putDone:
		t.Fatalf("whatsmeow's write went past a held write transaction (err %v)", putErr)
	case <-time.After(20 * time.Second):
		t.Fatal("whatsmeow's write never queued at the gate")
	}
	close(release)
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	within(t, putDone, "whatsmeow's write after the commit")
	if putErr != nil {
		t.Fatal(putErr)
	}
	if len(db.gate.ch) != 0 {
		t.Fatal("gate still held after both writes")
	}
}

// TestSQLiteGateReleased: however a write ends — commit, an error, a
// panic, a cancelled context, a failed statement, a failed fn in a batch —
// the gate is free again for the next writer.
func TestSQLiteGateReleased(t *testing.T) {
	db := openGated(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE g(id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	ends := []struct {
		name string
		run  func() error
	}{
		{"commit", func() error {
			return db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO g(id) VALUES (1)`)
				return err
			})
		}},
		{"error", func() error {
			err := db.WriteTx(ctx, func(context.Context, *sql.Tx) error { return boom })
			if !errors.Is(err, boom) {
				return err
			}
			return nil
		}},
		{"panic", func() (err error) {
			defer func() { recover() }()
			return db.WriteTx(ctx, func(context.Context, *sql.Tx) error { panic("boom") })
		}},
		{"cancelled", func() error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			tx, err := db.BeginTx(cctx, nil)
			if err != nil {
				return err
			}
			cancel() // database/sql rolls the transaction back
			if tx.Commit() == nil {
				return errors.New("commit after cancel succeeded")
			}
			return nil
		}},
		{"failed statement", func() error {
			if _, err := db.ExecContext(ctx, `INSERT INTO g(id) VALUES (1)`); err == nil {
				return errors.New("duplicate key accepted")
			}
			return nil
		}},
		{"failed batch fn", func() error {
			err := db.Batch(ctx, func(context.Context, *sql.Tx) error { return boom })
			if !errors.Is(err, boom) {
				return err
			}
			return nil
		}},
		{"read-only transaction", func() error {
			return db.ReadTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				var n int
				return tx.QueryRowContext(ctx, `SELECT count(*) FROM g`).Scan(&n)
			})
		}},
	}
	for _, end := range ends {
		if err := end.run(); err != nil {
			t.Fatalf("%s: %v", end.name, err)
		}
		// database/sql ends a cancelled transaction from its own goroutine.
		deadline := time.Now().Add(20 * time.Second)
		for len(db.gate.ch) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the gate is still held", end.name)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestSQLiteGateWaitsBounded: a writer that finds the gate held longer than
// its wait (the busy timeout) goes on to SQLite, which lets it through when
// nothing holds the database's lock: the gate orders writers, it never
// fails one. A writer whose context ends while it waits gets its error.
func TestSQLiteGateWaitsBounded(t *testing.T) {
	db := openGated(t)
	ctx := context.Background()
	db.gate.wait = 50 * time.Millisecond
	db.gate.ch <- struct{}{} // held by nobody's transaction
	if _, err := db.ExecContext(ctx, `CREATE TABLE g(id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatalf("write past a stuck gate: %v", err)
	}
	db.gate.wait = time.Hour
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := db.ExecContext(cctx, `INSERT INTO g(id) VALUES (1)`); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	<-db.gate.ch
	if _, err := db.ExecContext(ctx, `INSERT INTO g(id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
}
