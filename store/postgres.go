package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Options says how OpenDSN opens the database. The zero value opens an
// existing SQLite state in the current directory.
type Options struct {
	// Dir is the state directory: it holds the SQLite database (when the
	// URL is empty) and what is the machine's own in any case.
	Dir string
	// Create is for init and up. SQLite: see Open. PostgreSQL: an empty
	// database is migrated; without Create it is ErrNotInitialized.
	Create bool
	// Insecure allows a PostgreSQL link to a host that is neither loopback
	// nor a Unix socket without sslmode=verify-ca or verify-full
	// (--database-insecure). The caller logs a warning at every start.
	Insecure bool
	// NoMigrate opens a PostgreSQL database as it is, without applying
	// the migrations (nor, without Create, requiring them): migrate
	// inspects a target before it makes the schema there (DB.Migrate).
	NoMigrate bool
}

// ErrInsecureLink is returned by OpenDSN for a PostgreSQL URL whose link
// would leave the machine unencrypted or unverified, without
// Options.Insecure.
var ErrInsecureLink = errors.New("store: the database link is not encrypted and verified")

// OpenDSN opens the database a URL names and applies pending migrations:
// "" is SQLite in o.Dir (Open); postgres://… or postgresql://… is that
// PostgreSQL database, through pgx.
func OpenDSN(ctx context.Context, dsn string, o Options) (*DB, error) {
	switch {
	case dsn == "":
		return Open(ctx, o.Dir, o.Create)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, o)
	}
	const want = "want a postgres:// URL, or none for SQLite in the state directory"
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && !strings.ContainsAny(scheme, " =@:/") {
		return nil, fmt.Errorf("store: unsupported database URL scheme %q (%s)", scheme, want)
	}
	return nil, errors.New("store: the database is not named by a URL (" + want + ")") // not echoed: it may hold a password
}

// pgLookup, when set (tests), resolves host names for PostgreSQL links.
var pgLookup pgconn.LookupFunc

func openPostgres(ctx context.Context, dsn string, o Options) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's error holds the URL, and so maybe a password.
		return nil, errors.New("store: the database URL does not parse")
	}
	if err := checkLink(&cfg.Config, o.Insecure); err != nil {
		return nil, err
	}
	if pgLookup != nil {
		cfg.LookupFunc = pgLookup
	}
	sdb := stdlib.OpenDB(*cfg)
	sdb.SetConnMaxIdleTime(time.Minute)
	db := &DB{DB: sdb, Dialect: Postgres}
	db.notify.pg = cfg
	if err := db.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: %s: %w", where(cfg), err)
	}
	if o.NoMigrate {
		return db, nil
	}
	if !o.Create {
		var ok bool
		if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&ok); err != nil {
			sdb.Close()
			return nil, fmt.Errorf("store: %s: %w", where(cfg), err)
		}
		if !ok {
			sdb.Close()
			return nil, fmt.Errorf("%w: database %s holds no waappliance state (run `waappliance init` first)", ErrNotInitialized, where(cfg))
		}
	}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// where names a database for messages: host and name, never credentials.
func where(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%q on %s", cfg.Database, cfg.Host)
}

// checkLink refuses a link to a host that is neither loopback nor a Unix
// socket unless it is TLS with the server's certificate verified
// (sslmode=verify-full, or verify-ca: the chain only). It judges the TLS
// settings pgx derived from the URL and the PG* environment, for the host
// and every fallback (sslmode=prefer's plain retry is one), so what is
// checked is what would connect.
func checkLink(cfg *pgconn.Config, insecure bool) error {
	if insecure {
		return nil
	}
	type hop struct {
		host     string
		verified bool
	}
	hops := []hop{{cfg.Host, tlsVerified(cfg.TLSConfig)}}
	for _, f := range cfg.Fallbacks {
		hops = append(hops, hop{f.Host, tlsVerified(f.TLSConfig)})
	}
	for _, h := range hops {
		if h.verified || local(h.host) {
			continue
		}
		return fmt.Errorf("%w: %s is not loopback, so the URL must set sslmode=verify-full (or verify-ca) and sslrootcert; --database-insecure allows a weaker link", ErrInsecureLink, h.host)
	}
	return nil
}

// local reports whether host is a Unix socket directory or loopback.
func local(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsVerified reports whether t is TLS that verifies the server: the chain
// and name (verify-full), or the chain only (verify-ca, which pgx does in
// VerifyPeerCertificate).
func tlsVerified(t *tls.Config) bool {
	return t != nil && (!t.InsecureSkipVerify || t.VerifyPeerCertificate != nil)
}
