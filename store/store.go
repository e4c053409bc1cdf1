// Package store opens the appliance's one database and applies the
// embedded, numbered migrations: SQLite in the state directory (pure Go, via
// modernc.org/sqlite) by default, or PostgreSQL (pgx) when a database URL
// names one.
//
// The same *sql.DB is shared by every package of the appliance and by
// whatsmeow's sqlstore, so it is opened once per process. SQL is written
// once, with $N placeholders, for both engines; what must be serialised
// goes through WriteTx or Batch, which take the same lock on either.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside the state directory.
const FileName = "waappliance.db"

// ErrNotInitialized is returned by Open when the state directory holds no
// database and create is false.
var ErrNotInitialized = errors.New("state directory is not initialized")

// DB is the appliance database. It is safe for concurrent use. Durable
// writes that many callers make concurrently (an outbox insert, an audit
// row, an inbound event) go through Batch, which commits them together.
type DB struct {
	*sql.DB
	// Path is the SQLite file; "" on PostgreSQL.
	Path string
	// Dialect is the engine, as whatsmeow's sqlstore wants it named.
	Dialect Dialect

	batch  batcher
	notify notifier
	// writeGate (PostgreSQL; nil on SQLite) lets writeGateSize write
	// transactions of this process at a time take a pooled connection:
	// the one holding the write lock and the next, already waiting for it
	// on the server (so the hand-over costs no round trip). A burst of
	// writers holds two connections, not one each, and leaves the rest of
	// the capped pool to readers.
	writeGate chan struct{}
	// gate (SQLite; nil on PostgreSQL) orders the process's writers,
	// whatsmeow's included, at the driver (see sqliteGate).
	gate *sqliteGate
}

// Dialect names a database engine.
type Dialect string

// The engines store opens.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Close stops Batch (callers still queued get ErrClosed, a batch being
// committed finishes first) and the wake-ups (Wait returns ErrClosed), then
// closes the database. Calling it again is harmless.
func (db *DB) Close() error {
	db.batch.stop()
	db.notify.stop()
	return db.DB.Close()
}

// ErrForeignDir is returned by Open with create when the directory is not
// empty and holds no database: it is somebody else's directory (a typo such
// as --state /), which must be neither used nor have its mode changed.
var ErrForeignDir = errors.New("directory is not empty and holds no waappliance state")

// Open opens the database in dir and applies pending migrations.
//
// Without create (every command but init and up) the directory and the
// database must exist, and nothing's mode is changed. With create the
// directory is made 0700 (or, when it exists and is empty or already holds
// the database, tightened to 0700), and the database file is made 0600; a
// non-empty directory without a database is refused with ErrForeignDir.
func Open(ctx context.Context, dir string, create bool) (*DB, error) {
	path := filepath.Join(dir, FileName)
	if linked(dir) {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("store: the state in %s keeps its database elsewhere (see its %s file)", dir, DatabaseFile)
		}
	}
	if !create {
		if err := checkState(dir, path); err != nil {
			return nil, err
		}
	} else if err := prepareDir(dir, path); err != nil {
		return nil, err
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: create %s: %w", path, err)
		}
		f.Close()
	}
	db, err := OpenPath(ctx, path)
	if err != nil {
		return nil, err
	}
	if create {
		// SQLite gives -wal and -shm the mode of the main file; tighten
		// anyway in case an older file was looser.
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm() != 0o600 {
				_ = os.Chmod(p, 0o600)
			}
		}
	}
	return db, nil
}

// OpenPath opens the database file at path with WAL, a busy timeout,
// foreign keys on and synchronous FULL, and migrates it. FULL makes a
// commit durable before it returns, even across a power failure: the
// appliance acknowledges (202 for a send, the event ack to WhatsApp, the
// audit row before the response) only after a commit.
func OpenPath(ctx context.Context, path string) (*DB, error) {
	gate := newSQLiteGate()
	conn, err := newGatedConnector(sqliteDSN(path), gate)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sdb := sql.OpenDB(conn)
	// database/sql keeps 2 idle connections by default: under a burst
	// (the API's reads, the sender, whatsmeow's store, receipts) it closed
	// and reopened connections all the time, and each open re-applies the
	// pragmas and parses the whole schema (15% of serve's CPU in a
	// 1,000-send burst). An idle connection still goes after a minute.
	sdb.SetMaxIdleConns(sqliteIdleConns)
	sdb.SetConnMaxIdleTime(time.Minute)
	db := &DB{DB: sdb, Path: path, Dialect: SQLite, gate: gate}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// sqliteIdleConns is how many idle SQLite connections the pool keeps.
const sqliteIdleConns = 8

// sqliteDSN is modernc's DSN for the file at path, with OpenPath's pragmas
// and BEGIN IMMEDIATE for every transaction (the write lock, see WriteTx).
func sqliteDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// checkState checks that dir holds a database, changing nothing.
func checkState(dir, path string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist (run `waappliance init` first)", ErrNotInitialized, dir)
	case err != nil:
		return fmt.Errorf("store: state dir: %w", err)
	case !st.IsDir():
		return fmt.Errorf("store: state dir %s is not a directory", dir)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if linked(dir) {
			return nil
		}
		return fmt.Errorf("%w: no %s in %s (run `waappliance init` first)", ErrNotInitialized, FileName, dir)
	} else if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// prepareDir makes dir 0700 for init and up: created when missing,
// tightened when it is empty or already ours, refused when it is someone
// else's.
func prepareDir(dir, path string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: create state dir: %w", err)
		}
		return os.Chmod(dir, 0o700) // in case the umask was tighter than usual
	case err != nil:
		return fmt.Errorf("store: state dir: %w", err)
	case !st.IsDir():
		return fmt.Errorf("store: state dir %s is not a directory", dir)
	}
	if err := refuseForeign(dir, path); err != nil {
		return err
	}
	if st.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// refuseForeign refuses (ErrForeignDir) a directory that is not empty and
// holds no database at path.
func refuseForeign(dir, path string) error {
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if linked(dir) { // a state whose database is elsewhere: no file here
			return nil
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("store: state dir: %w", err)
		}
		if !onlyLock(ents) {
			return fmt.Errorf("%s: %w; refusing to use it (give --state a new or empty directory)", dir, ErrForeignDir)
		}
	case err != nil:
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// linked reports whether dir holds a DatabaseFile: a state whose database
// is elsewhere.
func linked(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, DatabaseFile))
	return err == nil
}

// onlyLock reports whether a directory without a database holds nothing
// but our lock file (up locks a new state dir before it initializes it).
func onlyLock(ents []os.DirEntry) bool {
	return len(ents) == 0 || len(ents) == 1 && ents[0].Name() == LockFile
}
