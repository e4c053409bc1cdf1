// Package store opens the appliance's one SQLite database (pure Go, via
// modernc.org/sqlite) and applies the embedded, numbered migrations.
//
// The same *sql.DB is shared by every package of the appliance and, later, by
// whatsmeow's sqlstore, so it is opened once per process.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside the state directory.
const FileName = "waappliance.db"

// ErrNotInitialized is returned by Open when the state directory holds no
// database and create is false.
var ErrNotInitialized = errors.New("state directory is not initialized")

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the appliance database. It is safe for concurrent use.
type DB struct {
	*sql.DB
	Path string
}

// Open opens (and with create, creates) the database in dir, enforcing the
// directory mode 0700 and file modes 0600, and applies pending migrations.
func Open(ctx context.Context, dir string, create bool) (*DB, error) {
	if err := EnsureDir(dir, create); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("%w: %s (run `waappliance init` first)", ErrNotInitialized, dir)
		}
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
	// SQLite gives -wal and -shm the mode of the main file; tighten anyway in
	// case an older file was looser.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm() != 0o600 {
			_ = os.Chmod(p, 0o600)
		}
	}
	return db, nil
}

// OpenPath opens the database file at path with WAL, a busy timeout and
// foreign keys on, and migrates it.
func OpenPath(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sdb.SetConnMaxIdleTime(time.Minute)
	db := &DB{DB: sdb, Path: path}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// EnsureDir checks (and with create, makes) the state directory with mode
// 0700. An existing directory with looser permissions is tightened.
func EnsureDir(dir string, create bool) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !create {
			return fmt.Errorf("%w: %s does not exist (run `waappliance init` first)", ErrNotInitialized, dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: create state dir: %w", err)
		}
		return os.Chmod(dir, 0o700)
	case err != nil:
		return fmt.Errorf("store: state dir: %w", err)
	case !st.IsDir():
		return fmt.Errorf("store: state dir %s is not a directory", dir)
	case st.Mode().Perm() != 0o700:
		return os.Chmod(dir, 0o700)
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: bad migration name %q", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	for _, m := range ms {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate: %w", err)
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, time.Now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// Tx runs fn in a transaction and commits it when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
