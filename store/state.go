package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DatabaseFile is the file in the state directory that names the database
// of a state kept elsewhere than in the SQLite file beside it (a
// PostgreSQL URL, which may hold a password: the file is 0600, in the
// 0700 directory that already holds keys). Absent, the state is SQLite in
// FileName. init writes it; every later command reads it, so that serve
// needs no --database; migrate rewrites it as its last step.
const DatabaseFile = "database"

// Link names the database of a state: what --database and
// --database-insecure chose at init.
type Link struct {
	// URL is a postgres:// URL; "" is SQLite in the state directory.
	URL string `json:"url"`
	// Insecure allows a link that the TLS rule refuses (see
	// Options.Insecure).
	Insecure bool `json:"insecure,omitempty"`
}

// Dialect is the engine the link names.
func (l Link) Dialect() Dialect {
	if l.URL == "" {
		return SQLite
	}
	return Postgres
}

// String names the database for messages, without any password.
func (l Link) String() string {
	if l.URL == "" {
		return "SQLite (" + FileName + " in the state directory)"
	}
	return Redact(l.URL)
}

// Same reports whether l and o name the same database: the engine and,
// on PostgreSQL, the hosts, ports, database and user (a URL that differs
// only in its password or its options is the same database).
func (l Link) Same(o Link) bool {
	if l.Dialect() != o.Dialect() {
		return false
	}
	if l.URL == "" || l.URL == o.URL {
		return true
	}
	a, err1 := pgx.ParseConfig(l.URL)
	b, err2 := pgx.ParseConfig(o.URL)
	if err1 != nil || err2 != nil {
		return false
	}
	return a.Host == b.Host && a.Port == b.Port && a.Database == b.Database && a.User == b.User
}

// ReadLink reads the link of the state in dir: Link{} (SQLite) when dir
// has no DatabaseFile.
func ReadLink(dir string) (Link, error) {
	b, err := os.ReadFile(filepath.Join(dir, DatabaseFile))
	if errors.Is(err, os.ErrNotExist) {
		return Link{}, nil
	}
	if err != nil {
		return Link{}, fmt.Errorf("store: %w", err)
	}
	var l Link
	if err := json.Unmarshal(b, &l); err != nil {
		return Link{}, fmt.Errorf("store: %s in %s does not parse (want {\"url\": \"postgres://…\"})", DatabaseFile, dir)
	}
	return l, nil
}

// WriteLink makes l the link of the state in dir, atomically (a new file
// renamed over the old one, both synced): Link{} removes DatabaseFile.
func WriteLink(dir string, l Link) error {
	path := filepath.Join(dir, DatabaseFile)
	if l.URL == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: %w", err)
		}
		return syncDir(dir)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: write %s: %w", DatabaseFile, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// PrepareState makes dir ready for a new state, as init and up need it:
// created 0700 when missing, tightened when it is empty or already ours,
// ErrForeignDir when it is someone else's.
func PrepareState(dir string) error {
	return prepareDir(dir, filepath.Join(dir, FileName))
}

// Redact returns a database URL without its password (userinfo and a
// password= option), for messages and logs.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(a database URL that does not parse)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// CheckLink applies the TLS rule of OpenDSN to a PostgreSQL URL without
// connecting: ErrInsecureLink when the link would need
// --database-insecure, nil when it is verified TLS or stays on the
// machine (loopback, Unix socket) or is SQLite ("").
func CheckLink(dsn string) error {
	if dsn == "" {
		return nil
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("store: the database URL does not parse")
	}
	return checkLink(&cfg.Config, false)
}

// SetLookup makes PostgreSQL links resolve host names with fn (nil: the
// system resolver). It is for tests, which name a host that is not
// loopback but reaches a server on it.
func SetLookup(fn func(ctx context.Context, host string) ([]string, error)) {
	pgLookup = fn
}
