package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"waappliance/store"
)

// DatabaseEnv names the database when --database is not given.
const DatabaseEnv = "WAAPPLIANCE_DATABASE"

// dbFlags are --database and --database-insecure, for every command that
// opens the state.
type dbFlags struct {
	url      *string
	insecure *bool
	fs       *flag.FlagSet
}

func addDBFlags(fs *flag.FlagSet) dbFlags {
	return dbFlags{fs: fs,
		// No default shown: the environment's URL may hold a password.
		url:      fs.String("database", "", "postgres://USER@HOST/DB?sslmode=verify-full&sslrootcert=CA: keep the state in this PostgreSQL database\n(env "+DatabaseEnv+"; default: SQLite in the state dir). Chosen at init and stored in the state dir,\nso later commands need it not; given later, it must name the stored database"),
		insecure: fs.Bool("database-insecure", false, "allow a --database link to a host that is not loopback or a Unix socket without verified TLS\n(sslmode=verify-ca or verify-full); stored at init, and warned about at every start"),
	}
}

// DatabaseChoice is what --database and --database-insecure asked for.
// The zero value asks for nothing: the state's stored database.
type DatabaseChoice struct {
	// Named is true when --database (or the environment) named a
	// database: URL, "" for SQLite in the state dir.
	Named bool
	URL   string
	// Insecure is --database-insecure.
	Insecure bool
}

func (c DatabaseChoice) link() store.Link { return store.Link{URL: c.URL, Insecure: c.Insecure} }

// choice is what the flags (or the environment) ask for.
func (f dbFlags) choice() DatabaseChoice {
	named := false
	f.fs.Visit(func(fl *flag.Flag) { named = named || fl.Name == "database" })
	url := *f.url
	if !named {
		url = os.Getenv(DatabaseEnv)
		named = url != ""
	}
	if url == "sqlite" {
		url = ""
	}
	return DatabaseChoice{Named: named, URL: url, Insecure: *f.insecure}
}

// envChoice is what the environment asks for, for the commands that take
// no --database (the peer commands).
func envChoice() DatabaseChoice {
	u := os.Getenv(DatabaseEnv)
	if u == "" {
		return DatabaseChoice{}
	}
	if u == "sqlite" {
		u = ""
	}
	return DatabaseChoice{Named: true, URL: u}
}

// stateLink returns the link of the initialized state in dir: the stored
// one, checked against what c asks for. A database of another engine or
// another database is refused: the database is chosen at init, and
// migrate moves a state. One that names the stored database under another
// URL (a new password) is used for this run. --database-insecure adds to
// what was stored.
func stateLink(dir string, c DatabaseChoice) (store.Link, error) {
	have, err := store.ReadLink(dir)
	if err != nil {
		return store.Link{}, err
	}
	insecure := have.Insecure || c.Insecure
	if !c.Named {
		have.Insecure = insecure
		return have, nil
	}
	want := c.link()
	if !have.Same(want) {
		return store.Link{}, fmt.Errorf("the state in %s keeps its database in %s, but --database (or %s) names %s; the database is chosen at init (move a state with 'waappliance migrate --to …' while it is stopped)",
			dir, have, DatabaseEnv, want)
	}
	want.Insecure = insecure
	return want, nil
}

// openStateDB opens the database of the initialized state in dir (see
// stateLink) and migrates it. log (nil: none) gets the warning for an
// insecure link.
func openStateDB(ctx context.Context, dir string, c DatabaseChoice, log *slog.Logger) (*store.DB, error) {
	link, err := stateLink(dir, c)
	if err != nil {
		return nil, err
	}
	if link.URL == "" {
		return store.Open(ctx, dir, false)
	}
	db, err := store.OpenDSN(ctx, link.URL, store.Options{Dir: dir, Insecure: link.Insecure})
	if err != nil {
		if errors.Is(err, store.ErrInsecureLink) || errors.Is(err, store.ErrNotInitialized) {
			return nil, err
		}
		return nil, fmt.Errorf("the state's database %s: %w", link, err)
	}
	warnInsecure(log, link)
	return db, nil
}

// warnInsecure logs, when the link needed --database-insecure, that it is
// not encrypted and verified.
func warnInsecure(log *slog.Logger, link store.Link) {
	if log != nil && link.Insecure && errors.Is(store.CheckLink(link.URL), store.ErrInsecureLink) {
		log.Warn("INSECURE DATABASE LINK: the database is reached without verified TLS (--database-insecure); anyone on the path can read or change the state", "database", link.String())
	}
}

// createStateDB makes a new state in dir (which holds none) in the database
// link names: SQLite beside it, or an empty PostgreSQL database, whose
// link is then stored. init refuses a PostgreSQL database that already
// holds a state: one database serves one appliance.
func createStateDB(ctx context.Context, dir string, link store.Link) (*store.DB, error) {
	if link.URL == "" {
		return store.Open(ctx, dir, true)
	}
	if err := store.PrepareState(dir); err != nil {
		return nil, err
	}
	db, err := store.OpenDSN(ctx, link.URL, store.Options{Dir: dir, Create: true, Insecure: link.Insecure})
	if err != nil {
		if errors.Is(err, store.ErrInsecureLink) {
			return nil, err
		}
		return nil, fmt.Errorf("database %s: %w", link, err)
	}
	return db, nil
}
