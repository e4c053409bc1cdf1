package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"waappliance/internal/pgtest"
)

// caFile writes a self-signed CA certificate for sslrootcert.
func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLinkRule: a link that stays on the machine (loopback, Unix socket)
// may be plain; one that leaves it must verify the server (verify-full, or
// verify-ca: the chain), every host of it; --database-insecure allows the
// rest. A refusal comes before any connection and names the flag.
func TestLinkRule(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	t.Setenv("PGHOST", "")
	ca := caFile(t)
	cases := []struct {
		dsn string
		ok  bool
	}{
		{"postgres://u@127.0.0.1/db?sslmode=disable", true},
		{"postgres://u@127.3.4.5:5433/db", true},
		{"postgres://u@localhost/db?sslmode=allow", true},
		{"postgres://u@[::1]/db?sslmode=disable", true},
		{"postgres://u@/db?host=/run/postgresql", true},
		{"postgresql://u@127.0.0.1,[::1]/db?sslmode=prefer", true},
		{"postgres://u@db.example.com/db?sslmode=verify-full&sslrootcert=" + ca, true},
		{"postgres://u@192.0.2.7/db?sslmode=verify-ca&sslrootcert=" + ca, true},
		{"postgres://u@db.example.com/db?sslmode=require&sslrootcert=" + ca, true}, // libpq: verify-ca
		{"postgres://u@db.example.com/db", false},                                  // prefer: plain fallback
		{"postgres://u@db.example.com/db?sslmode=disable", false},
		{"postgres://u@db.example.com/db?sslmode=allow", false},
		{"postgres://u@db.example.com/db?sslmode=require", false},
		{"postgres://u@db.example.com/db?ssl=true", false},
		{"postgres://u@10.1.2.3:5432/db?sslmode=disable", false},
		{"postgres://u@[2001:db8::1]/db?sslmode=require", false},
		{"postgres://u@127.0.0.1,db.example.com/db?sslmode=disable", false},
		{"postgres://u@/db?host=db.example.com&sslmode=require", false},
	}
	for _, c := range cases {
		cfg, err := pgx.ParseConfig(c.dsn)
		if err != nil {
			t.Fatalf("%s: %v", c.dsn, err)
		}
		err = checkLink(&cfg.Config, false)
		if c.ok != (err == nil) {
			t.Errorf("%s: %v, want allowed=%v", c.dsn, err, c.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInsecureLink) || !strings.Contains(err.Error(), "--database-insecure") {
				t.Errorf("%s: %v does not name --database-insecure", c.dsn, err)
			}
			if err := checkLink(&cfg.Config, true); err != nil {
				t.Errorf("%s with --database-insecure: %v", c.dsn, err)
			}
			// OpenDSN refuses before it dials (db.example.com is not
			// looked up, 10.1.2.3 not reached).
			if _, err := OpenDSN(context.Background(), c.dsn, Options{}); !errors.Is(err, ErrInsecureLink) {
				t.Errorf("OpenDSN %s: %v", c.dsn, err)
			}
		}
	}
	if _, err := OpenDSN(context.Background(), "mysql://u@h/db", Options{}); err == nil || !strings.Contains(err.Error(), `"mysql"`) {
		t.Errorf("a mysql URL: %v", err)
	}
	for _, bad := range []string{"postgres://u:secret@[::1/db", "host=db password=secret", "u:secret@db/x"} {
		if _, err := OpenDSN(context.Background(), bad, Options{}); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: %v (must fail without echoing it)", bad, err)
		}
	}
}

// TestLinks connects the ways the rule allows, to scripts/pg's server:
// loopback TCP plain, the Unix socket, verify-full over loopback, and a
// host name that is not loopback (pg.waa.test, resolved to 127.0.0.1 by
// the test) — refused with sslmode=require, allowed with Insecure,
// verified with verify-full. TLS is checked on the server side.
func TestLinks(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip(pgtest.Env + " is not set (scripts/pg runs a server)")
	}
	ctx := context.Background()
	tlsURL, sockURL := os.Getenv("WAA_TEST_DATABASE_TLS"), os.Getenv("WAA_TEST_DATABASE_SOCKET")
	if tlsURL == "" || sockURL == "" {
		t.Fatal("scripts/pg sets WAA_TEST_DATABASE_TLS and WAA_TEST_DATABASE_SOCKET")
	}
	plain := pgtest.Fresh(t)
	name := strings.TrimPrefix(mustURL(t, plain).Path, "/")
	// with returns base for the fresh database, its query set to q.
	with := func(base, host string, q url.Values) string {
		u := mustURL(t, base)
		u.Path = "/" + name
		if host != "" {
			_, port, _ := net.SplitHostPort(u.Host)
			u.Host = net.JoinHostPort(host, port)
		}
		old := u.Query()
		for k, v := range q {
			old[k] = v
		}
		u.RawQuery = old.Encode()
		return u.String()
	}
	rootcert := mustURL(t, tlsURL).Query().Get("sslrootcert")
	cases := []struct {
		name     string
		dsn      string
		insecure bool
		refused  bool
		tls      bool
	}{
		{"loopback plain", plain, false, false, false},
		{"unix socket", with(sockURL, "", nil), false, false, false},
		{"loopback verify-full", with(tlsURL, "", nil), false, false, true},
		{"remote require", with(tlsURL, testHost, url.Values{"sslmode": {"require"}, "sslrootcert": nil}), false, true, false},
		{"remote require insecure", with(tlsURL, testHost, url.Values{"sslmode": {"require"}, "sslrootcert": nil}), true, false, true},
		{"remote plain insecure", with(tlsURL, testHost, url.Values{"sslmode": {"disable"}, "sslrootcert": nil}), true, false, false},
		{"remote verify-full", with(tlsURL, testHost, url.Values{"sslmode": {"verify-full"}, "sslrootcert": {rootcert}}), false, false, true},
		{"remote verify-ca", with(tlsURL, testHost, url.Values{"sslmode": {"verify-ca"}, "sslrootcert": {rootcert}}), false, false, true},
	}
	for i, c := range cases {
		db, err := OpenDSN(ctx, c.dsn, Options{Create: i == 0, Insecure: c.insecure})
		if c.refused {
			if !errors.Is(err, ErrInsecureLink) {
				t.Errorf("%s: %v, want refused", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var ssl bool
		err = db.QueryRowContext(ctx, `SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)`).Scan(&ssl)
		db.Close()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if ssl != c.tls {
			t.Errorf("%s: TLS %v, want %v", c.name, ssl, c.tls)
		}
	}
	// verify-full checks the name: the certificate holds no other.
	bad := with(tlsURL, "", url.Values{"sslmode": {"verify-full"}})
	cfg, _ := pgx.ParseConfig(bad)
	cfg.TLSConfig.ServerName = "other.waa.test"
	if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		conn.Close(ctx)
		t.Error("verify-full accepted a certificate for another name")
	}
}

// TestPostgresNeedsInit: without Create an empty database is not a state;
// with it, it is migrated, and later opens find it.
func TestPostgresNeedsInit(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip(pgtest.Env + " is not set (scripts/pg runs a server)")
	}
	ctx := context.Background()
	dsn := pgtest.Fresh(t)
	if _, err := OpenDSN(ctx, dsn, Options{}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("open of an empty database: %v", err)
	}
	// Two inits at once take turns (the migration lock) and both succeed.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			db, err := OpenDSN(ctx, dsn, Options{Create: true})
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent init: %v", err)
		}
	}
	db, err := OpenDSN(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect != Postgres || db.Path != "" {
		t.Fatalf("dialect %q path %q", db.Dialect, db.Path)
	}
	ms, _ := loadMigrations()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("%d migrations recorded (%v), want %d", n, err, len(ms))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal("a test database URL does not parse")
	}
	return u
}
