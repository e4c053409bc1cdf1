package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Querier is what a statement needs: a *DB (its embedded *sql.DB), a
// *sql.Tx of WriteTx or Batch, or a *sql.Conn. Domain packages take one so
// the same code runs inside and outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Querier = (*sql.DB)(nil)
	_ Querier = (*sql.Tx)(nil)
	_ Querier = (*sql.Conn)(nil)
)

// Strings runs query and returns its one column of strings (ids, names),
// the rows closed before it returns, so the caller may write in the same
// transaction next.
func Strings(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Keys of the PostgreSQL advisory locks (one number space per database,
// shared with whatever else runs there, hence ASCII "waa" and a tag).
const (
	writeLockKey   int64 = 0x776161_0000000001 // WriteTx and Batch
	appendLockKey  int64 = 0x776161_0000000002 // AppendLock
	migrateLockKey int64 = 0x776161_0000000003 // migrate
)

// WriteTx runs fn in a write transaction and commits it when fn returns
// nil; an error or a panic of fn rolls it back. Write transactions (WriteTx
// and Batch) are serialised, one at a time across every process on the
// database, so a read-modify-write in fn (read a row, compute, write it
// back; pick a free address, then insert it) never loses an update:
//
//   - SQLite: BEGIN IMMEDIATE (the DSN's _txlock) takes the database's one
//     write lock before fn's first read.
//   - PostgreSQL: READ COMMITTED plus pg_advisory_xact_lock on one fixed
//     key, held until COMMIT. Each statement of fn then sees every write
//     transaction that committed before it got the lock (READ COMMITTED
//     takes a snapshot per statement; REPEATABLE READ would keep the one
//     from before the wait). A lock rather than SERIALIZABLE with retries
//     because it is SQLite's rule, so a caller needs no retry loop and fn
//     runs once (it may wake a sender or fill a result), at the cost of one
//     writer at a time, which the appliance's load (a few writes per send)
//     has under SQLite too.
//
// fn must use tx only (another write of db from fn waits for the lock fn
// holds), and must not call tx.Commit or tx.Rollback. A FirstWrite in ctx
// (WithFirstWrite) runs in the transaction, before fn.
func (db *DB) WriteTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) (err error) {
	tx, done, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer done()
	first := claimFirstWrite(ctx)
	defer func() { first.settle(err == nil) }()
	fn = first.around(fn)
	defer func() {
		if v := recover(); v != nil {
			tx.Rollback()
			panic(v)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// ReadTx runs fn in a read-only transaction that sees one snapshot: every
// statement of fn reads the same committed state (a mark and the rows it
// guards, such as events_pruned_through and the events after a cursor).
// SQLite: a deferred read transaction (WAL keeps its snapshot and lets
// writers go on). PostgreSQL: REPEATABLE READ READ ONLY, since READ
// COMMITTED would take a new snapshot per statement. It takes no lock and
// never waits for WriteTx. fn must not write (PostgreSQL refuses it;
// SQLite may fail it with SQLITE_BUSY_SNAPSHOT).
func (db *DB) ReadTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Tx is WriteTx for callers that need no ctx in fn.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.WriteTx(ctx, func(_ context.Context, tx *sql.Tx) error { return fn(tx) })
}

// beginWrite begins a transaction holding the write lock (see WriteTx).
// The caller calls done once the transaction has ended (committed or
// rolled back).
//
// On PostgreSQL the process's writers first pass the write gate, two at a
// time (the lock's holder and the next in line), so that the others wait
// in the process, not each on a pooled connection of their own: under the
// pool's cap (DefaultMaxConns) a burst of writers would otherwise take
// every connection and leave none for reads.
func (db *DB) beginWrite(ctx context.Context) (tx *sql.Tx, done func(), err error) {
	if db.Dialect != Postgres {
		tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE
		if err != nil {
			return nil, nil, fmt.Errorf("store: begin: %w", err)
		}
		return tx, func() {}, nil
	}
	select {
	case db.writeGate <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("store: begin: %w", ctx.Err())
	}
	done = func() { <-db.writeGate }
	tx, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("store: begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLockKey); err != nil {
		tx.Rollback()
		done()
		return nil, nil, fmt.Errorf("store: write lock: %w", err)
	}
	return tx, done, nil
}

// AppendLock makes the ids that tx takes from now on from an identity
// column (an event id) commit in id order, so that a reader following
// "id > cursor" never sees id 12 before 11 has committed and then skips 11.
// Call it in the transaction, before the INSERT that takes the id.
//
// On SQLite it does nothing: there is one writer, so ids commit in order.
// On PostgreSQL ids come from a sequence before commit, and two
// transactions may commit in either order; AppendLock takes a
// transaction-level advisory lock, so appenders take ids one after the
// other and each releases the lock only once its commit is visible. A
// WriteTx or Batch already runs alone, so inside one it only costs a round
// trip; it is for appends outside them. A transaction that takes it must not
// then start waiting for WriteTx's lock (the order is write, then append).
func (db *DB) AppendLock(ctx context.Context, tx Querier) error {
	if db.Dialect != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, appendLockKey); err != nil {
		return fmt.Errorf("store: append lock: %w", err)
	}
	return nil
}
