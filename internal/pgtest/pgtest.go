// Package pgtest gives tests a fresh PostgreSQL database of their own on
// the server that WAA_TEST_DATABASE names (scripts/pg starts one), so that
// tests on PostgreSQL run in parallel and leave nothing behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the server: a postgres:// URL of a role that may CREATE
// DATABASE. Unset, the tests run on SQLite only.
const Env = "WAA_TEST_DATABASE"

// Enabled reports whether Env names a server.
func Enabled() bool { return os.Getenv(Env) != "" }

// Fresh creates an empty database for t on the server Env names and
// returns its URL; the database is dropped (its connections ended) when t
// and its subtests have finished. It skips t when Env is unset.
func Fresh(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(Env)
	if admin == "" {
		t.Skip(Env + " is not set (scripts/pg runs a server)")
	}
	return fresh(t, admin)
}

// FreshFrom is Fresh on the server and with the link (TLS, socket) that
// base names, with the same admin rights; base is one of scripts/pg's
// WAA_TEST_DATABASE_* variants.
func FreshFrom(t testing.TB, base string) string {
	t.Helper()
	return fresh(t, base)
}

func fresh(t testing.TB, admin string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "waa_t_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to the test server: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: %s does not parse", Env)
	}
	u.Path = "/" + name
	return u.String()
}

// ForEngines runs fn as a parallel subtest per engine: "sqlite" with dsn
// "" (store.OpenDSN's SQLite in the state directory the test chooses),
// and, when Enabled, "postgres" with the URL of a fresh database (Fresh)
// of the subtest's own. A test that opens a second handle on the same
// database (a second process) opens dsn again, or, on SQLite, the same
// directory.
func ForEngines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "")
	})
	if Enabled() {
		t.Run("postgres", func(t *testing.T) {
			t.Parallel()
			fn(t, Fresh(t))
		})
	}
}
