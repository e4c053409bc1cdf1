package store

import (
	"context"
	"database/sql/driver"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// gateWait bounds how long a writer waits for the gate; it is the DSN's
// busy_timeout. Past it the writer goes on without the gate, to SQLite's own
// lock and busy handler, as every writer did before the gate: the gate only
// orders writers, it never fails one that SQLite would have let through
// (a writer that holds it and, wrongly, writes on a second connection gets
// what it got before, SQLITE_BUSY after the busy timeout).
const gateWait = 10 * time.Second

// sqliteGate is the in-process write gate of a SQLite database: every write
// transaction of the process (WriteTx and Batch, and whatsmeow's sqlstore,
// which shares the *sql.DB) and every write statement outside a transaction
// takes it first, one at a time, in arrival order.
//
// Without it a writer that finds the database locked waits in SQLite's busy
// handler, which polls with sleeps of up to 100 ms: under a burst of group
// commits one of whatsmeow's Signal-session writes (made while it encrypts a
// message, before sending it) lost the lock again and again and stalled the
// sender for up to 0.9 s. Waiting on a channel instead wakes the next writer
// the moment the lock is released. SQLite's own lock still serialises, and
// still guards against other processes (a CLI command beside serve).
type sqliteGate struct {
	ch chan struct{}
	// wait is gateWait; tests shorten it.
	wait time.Duration
	// onQueue, when set (tests, before the first write), is called when a
	// writer finds the gate taken and starts to wait.
	onQueue func()
}

func newSQLiteGate() *sqliteGate {
	return &sqliteGate{ch: make(chan struct{}, 1), wait: gateWait}
}

// acquire takes the gate and returns its release, or a no-op release when it
// went without (the wait timed out). It fails only when ctx ends first.
func (g *sqliteGate) acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.ch <- struct{}{}:
		return g.release, nil
	default:
	}
	if g.onQueue != nil {
		g.onQueue()
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.ch <- struct{}{}:
		return g.release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return func() {}, nil
	}
}

func (g *sqliteGate) release() { <-g.ch }

// gatedConnector opens modernc connections that pass through gate.
type gatedConnector struct {
	inner driver.Connector
	gate  *sqliteGate
}

func newGatedConnector(dsn string, gate *sqliteGate) (*gatedConnector, error) {
	inner, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &gatedConnector{inner: inner, gate: gate}, nil
}

func (c *gatedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: conn, gate: c.gate}, nil
}

func (c *gatedConnector) Driver() driver.Driver { return c.inner.Driver() }

// innerConn is what modernc's connection implements and gatedConn uses.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// gatedConn takes the gate for a write transaction (from BeginTx until its
// Commit or Rollback) and for an Exec outside a transaction. Reads take
// nothing: under WAL they never wait for the writer. database/sql uses a
// connection from one goroutine at a time, so its fields need no lock.
type gatedConn struct {
	driver.Conn
	gate *sqliteGate
	// inTx: a transaction is open; release is the held gate's release
	// while it is a write transaction, else nil.
	inTx    bool
	release func()
	// stmts are its kept prepared statements (stmtcache.go).
	stmts map[string]*cachedStmt
}

func (c *gatedConn) inner() innerConn { return c.Conn.(innerConn) }

func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.ReadOnly {
		tx, err := c.inner().BeginTx(ctx, opts) // a deferred BEGIN: a reader
		if err != nil {
			return nil, err
		}
		c.inTx = true
		return &gatedTx{Tx: tx, c: c}, nil
	}
	release, err := c.gate.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.inner().BeginTx(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	c.inTx, c.release = true, release
	return &gatedTx{Tx: tx, c: c}, nil
}

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// ExecContext runs an Exec outside a transaction under the gate (it may
// write); inside one the transaction already holds it.
func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.inTx {
		return c.exec(ctx, query, args)
	}
	release, err := c.gate.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return c.exec(ctx, query, args)
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.query(ctx, query, args)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.inner().PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{Stmt: st, c: c}, nil
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) Ping(ctx context.Context) error { return c.inner().Ping(ctx) }

func (c *gatedConn) ResetSession(ctx context.Context) error { return c.inner().ResetSession(ctx) }

func (c *gatedConn) IsValid() bool { return c.inner().IsValid() }

// Close releases the gate if a transaction was still open (database/sql
// ends one before closing its connection, so this is a safety net).
func (c *gatedConn) Close() error {
	c.endTx()
	c.closeStmts()
	return c.Conn.Close()
}

func (c *gatedConn) endTx() {
	if c.release != nil {
		c.release()
	}
	c.inTx, c.release = false, nil
}

// gatedTx releases the gate once its transaction has ended.
type gatedTx struct {
	driver.Tx
	c    *gatedConn
	once sync.Once
}

func (t *gatedTx) Commit() error {
	err := t.Tx.Commit()
	t.once.Do(t.c.endTx)
	return err
}

func (t *gatedTx) Rollback() error {
	err := t.Tx.Rollback()
	t.once.Do(t.c.endTx)
	return err
}

// innerStmt is what modernc's statement implements.
type innerStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// gatedStmt is a prepared statement whose Exec outside a transaction takes
// the gate, as gatedConn's does.
type gatedStmt struct {
	driver.Stmt
	c *gatedConn
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	st := s.Stmt.(innerStmt)
	if s.c.inTx {
		return st.ExecContext(ctx, args)
	}
	release, err := s.c.gate.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return st.ExecContext(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(innerStmt).QueryContext(ctx, args)
}
