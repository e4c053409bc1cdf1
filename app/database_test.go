package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/pgtest"
	"waappliance/store"
)

// testPGName is the host name scripts/pg's certificate holds besides the
// loopback ones; tests (and the appliance processes they start, which are
// this binary) resolve it to 127.0.0.1, so that a link to it is judged as
// one that leaves the machine while its traffic stays on loopback.
const testPGName = "pg.waa.test"

func init() {
	store.SetLookup(func(ctx context.Context, host string) ([]string, error) {
		if host == testPGName {
			return []string{"127.0.0.1"}, nil
		}
		return net.DefaultResolver.LookupHost(ctx, host)
	})
}

// withHost returns u with its host (not its port) replaced and sslmode set
// (when mode is not "").
func withHost(t *testing.T, u, host, mode string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = host + ":" + p.Port()
	if mode != "" {
		q := p.Query()
		q.Set("sslmode", mode)
		if mode == "require" { // with a root certificate, require verifies the chain (as libpq)
			q.Del("sslrootcert")
		}
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// initSQLite makes a SQLite state with a free listen port.
func initSQLite(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	port := freeUDPPort(t)
	mustCLI(t, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	return dir
}

// TestServeRefusesAnotherDatabase: the database is chosen at init; serve
// (and every other command) given another one, by flag or environment,
// exits 1 saying so, and a stored database that cannot be reached is an
// error too. No message shows the URL's password.
func TestServeRefusesAnotherDatabase(t *testing.T) {
	dir := initSQLite(t)
	other := "postgres://waa:sekrit-pw@127.0.0.1:1/other?sslmode=disable"
	for _, args := range [][]string{{"serve", "--database", other}, {"audit", "--database", other}, {"doctor", "--database", other}} {
		code, o, e := cliRun(t, dir, args...)
		if code != 1 || !strings.Contains(e+o, "keeps its database in SQLite") || !strings.Contains(e+o, "migrate") {
			t.Errorf("%v on a SQLite state: exit %d: %s%s", args, code, o, e)
		}
		if strings.Contains(e+o, "sekrit-pw") {
			t.Errorf("%v shows the password: %s%s", args, o, e)
		}
	}
	t.Setenv(app.DatabaseEnv, other)
	if code, _, e := cliRun(t, dir, "serve"); code != 1 || !strings.Contains(e, "keeps its database in SQLite") || strings.Contains(e, "sekrit") {
		t.Errorf("serve with %s naming another database: exit %d: %s", app.DatabaseEnv, code, e)
	}
	if code, _, e := cliRun(t, dir, "peer", "list"); code != 1 || !strings.Contains(e, "keeps its database in SQLite") {
		t.Errorf("peer list with %s naming another database: exit %d: %s", app.DatabaseEnv, code, e)
	}
	t.Setenv(app.DatabaseEnv, "")
	if code, _, e := cliRun(t, dir, "peer", "list"); code != 0 {
		t.Fatalf("peer list: exit %d: %s", code, e)
	}

	// A state whose stored database is unreachable (nothing listens on
	// port 1) is an error, not a wait or a fresh SQLite file.
	if err := store.WriteLink(dir, store.Link{URL: other}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, store.DatabaseFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the database file: %v %v", st, err)
	}
	code, _, e := cliRun(t, dir, "serve")
	if code != 1 || !strings.Contains(e, "127.0.0.1") || strings.Contains(e, "sekrit") {
		t.Errorf("serve with an unreachable database: exit %d: %s", code, e)
	}
	if code, _, e := cliRun(t, dir, "serve", "--database", "sqlite"); code != 1 || !strings.Contains(e, "keeps its database in postgres://waa:xxxxx@127.0.0.1:1/other") {
		t.Errorf("serve --database sqlite on a PostgreSQL state: exit %d: %s", code, e)
	}
}

// TestServeOnPostgresRefusesAnotherDatabase: a state moved to PostgreSQL
// refuses --database sqlite and a --database naming another PostgreSQL
// database.
func TestServeOnPostgresRefusesAnotherDatabase(t *testing.T) {
	pg, other := pgtest.Fresh(t), pgtest.Fresh(t)
	dir := initSQLite(t)
	mustCLI(t, dir, "migrate", "--to", pg)
	for _, db := range []string{"sqlite", other} {
		code, _, e := cliRun(t, dir, "serve", "--database", db)
		if code != 1 || !strings.Contains(e, "the database is chosen at init") || strings.Contains(e, passwordOf(pg)) {
			t.Errorf("serve --database %s on a PostgreSQL state: exit %d: %s", store.Redact(db), code, e)
		}
	}
}

// TestDatabaseTLSRule: a --database (or --to) whose host is not loopback
// must verify the server's certificate; a weaker link is refused with a
// message naming --database-insecure, which allows it, is stored, and is
// warned about at every start and by doctor.
func TestDatabaseTLSRule(t *testing.T) {
	tlsBase := os.Getenv("WAA_TEST_DATABASE_TLS")
	if tlsBase == "" {
		t.Skip("WAA_TEST_DATABASE_TLS is not set (scripts/pg runs a server)")
	}
	weak := withHost(t, pgtest.FreshFrom(t, tlsBase), testPGName, "require")
	pw := passwordOf(weak)

	dir := filepath.Join(t.TempDir(), "state")
	code, _, e := cliRun(t, dir, "init", "--database", weak)
	if code != 1 || !strings.Contains(e, "--database-insecure") || strings.Contains(e, pw) {
		t.Fatalf("init with sslmode=require to %s: exit %d: %s", testPGName, code, e)
	}

	dir = initSQLite(t)
	code, _, e = cliRun(t, dir, "migrate", "--to", weak)
	if code != 1 || !strings.Contains(e, "--database-insecure") || !strings.Contains(e, "untouched") || strings.Contains(e, pw) {
		t.Fatalf("migrate --to sslmode=require: exit %d: %s", code, e)
	}
	if l, _ := store.ReadLink(dir); l.URL != "" {
		t.Fatalf("a refused migrate switched the state: %+v", l)
	}
	mustCLI(t, dir, "migrate", "--to", weak, "--database-insecure")
	if l, _ := store.ReadLink(dir); !l.Insecure || l.Dialect() != store.Postgres {
		t.Fatalf("the stored link: %+v", l)
	}
	_, o, _ := cliRun(t, dir, "doctor")
	if !strings.Contains(o, "FIX  db tls") || !strings.Contains(o, "not verified") || strings.Contains(o, pw) {
		t.Errorf("doctor on an unverified link:\n%s", o)
	}
	// The warning at start (serve stops at once: ctx is short).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var so, se bytes.Buffer
	app.Main(ctx, []string{"serve", "--state", dir, "--sandbox"}, &so, &se)
	if !strings.Contains(se.String(), "INSECURE DATABASE LINK") || strings.Contains(se.String(), pw) {
		t.Errorf("serve on an unverified link logs no warning:\n%s", se.String())
	}

	// verify-full to the same name needs no flag, and doctor finds TLS.
	good := withHost(t, pgtest.FreshFrom(t, tlsBase), testPGName, "verify-full")
	dir = initSQLite(t)
	mustCLI(t, dir, "migrate", "--to", good)
	_, o, _ = cliRun(t, dir, "doctor")
	if !strings.Contains(o, "ok   db tls") || !strings.Contains(o, "TLS") {
		t.Errorf("doctor on a verified link:\n%s", o)
	}
}

// TestDoctorDatabaseChecks: doctor names the database, finds the
// migrations current and, on PostgreSQL, checks the clock and
// synchronous_commit.
func TestDoctorDatabaseChecks(t *testing.T) {
	dir := initSQLite(t)
	_, o, _ := cliRun(t, dir, "doctor")
	for _, want := range []string{"ok   database", "(SQLite)", "ok   migrations current"} {
		if !strings.Contains(o, want) {
			t.Errorf("doctor on SQLite lacks %q:\n%s", want, o)
		}
	}
	if !pgtest.Enabled() {
		return
	}
	pg := pgtest.Fresh(t)
	mustCLI(t, dir, "migrate", "--to", pg)
	_, o, _ = cliRun(t, dir, "doctor")
	for _, want := range []string{"ok   database", "(reachable)", "ok   migrations current", "ok   db tls", "ok   db clock", "ok   db commit", "synchronous_commit is on"} {
		if !strings.Contains(o, want) {
			t.Errorf("doctor on PostgreSQL lacks %q:\n%s", want, o)
		}
	}
	if strings.Contains(o, passwordOf(pg)) {
		t.Errorf("doctor shows the password:\n%s", o)
	}
	db, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, _ := url.Parse(pg)
	if _, err := db.Exec(`ALTER DATABASE "` + strings.TrimPrefix(u.Path, "/") + `" SET synchronous_commit = off`); err != nil {
		t.Fatal(err)
	}
	_, o, _ = cliRun(t, dir, "doctor")
	if !strings.Contains(o, "FIX  db commit") || !strings.Contains(o, "synchronous_commit is off") {
		t.Errorf("doctor with synchronous_commit off:\n%s", o)
	}
}

// TestMigrateRefusals: migrate wants the appliance stopped, a target, an
// empty target database; each refusal leaves the state as it was.
func TestMigrateRefusals(t *testing.T) {
	dir := initSQLite(t)
	if code, _, e := cliRun(t, dir, "migrate"); code != 2 || !strings.Contains(e, "--to") {
		t.Errorf("migrate without --to: exit %d: %s", code, e)
	}
	if code, _, e := cliRun(t, dir, "migrate", "--to", "sqlite"); code != 1 || !strings.Contains(e, "already keeps its database in SQLite") {
		t.Errorf("migrate --to sqlite on a SQLite state: exit %d: %s", code, e)
	}
	lock, err := store.Lock(dir) // what a running serve holds
	if err != nil {
		t.Fatal(err)
	}
	code, _, e := cliRun(t, dir, "migrate", "--to", "postgres://waa@127.0.0.1:1/x")
	lock.Unlock()
	if code != 1 || !strings.Contains(e, "stop the appliance first") {
		t.Errorf("migrate while serving: exit %d: %s", code, e)
	}
	if !pgtest.Enabled() {
		return
	}
	full, schema := pgtest.Fresh(t), pgtest.Fresh(t)
	for u, stmts := range map[string][]string{
		full:   {`CREATE TABLE peers (x BIGINT)`, `INSERT INTO peers VALUES (1), (2)`},
		schema: {`CREATE TABLE whatever (x BIGINT)`},
	} {
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
	}
	code, _, e = cliRun(t, dir, "migrate", "--to", full)
	if code != 1 || !strings.Contains(e, "holds data in peers (2 rows)") || !strings.Contains(e, "untouched") {
		t.Errorf("migrate into a database with rows: exit %d: %s", code, e)
	}
	code, _, e = cliRun(t, dir, "migrate", "--to", schema)
	if code != 1 || !strings.Contains(e, "holds a schema (tables whatever") {
		t.Errorf("migrate into a database with a schema: exit %d: %s", code, e)
	}
	if l, _ := store.ReadLink(dir); l.URL != "" {
		t.Fatalf("a refused migrate switched the state: %+v", l)
	}
	mustCLI(t, dir, "peer", "list")

	// A copy that fails after the target's schema was made (the source
	// holds a table this binary's schema lacks) leaves the source as it
	// was and the target empty again, so that a second try goes through.
	target := pgtest.Fresh(t)
	src, err := store.Open(context.Background(), dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exec(`CREATE TABLE zz_extra (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	src.Close()
	code, _, e = cliRun(t, dir, "migrate", "--to", target)
	if code != 1 || !strings.Contains(e, "no table zz_extra") || !strings.Contains(e, "untouched") {
		t.Fatalf("migrate with a table the target lacks: exit %d: %s", code, e)
	}
	if l, _ := store.ReadLink(dir); l.URL != "" {
		t.Fatalf("a failed migrate switched the state: %+v", l)
	}
	tdb, err := store.OpenDSN(context.Background(), target, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := tdb.Tables(context.Background())
	tdb.Close()
	if err != nil || len(ts) != 0 {
		t.Fatalf("the failed migrate left tables in the target: %v %v", ts, err)
	}
	src, _ = store.Open(context.Background(), dir, false)
	src.Exec(`DROP TABLE zz_extra`)
	src.Close()
	mustCLI(t, dir, "migrate", "--to", target)
	if l, _ := store.ReadLink(dir); l.Dialect() != store.Postgres {
		t.Fatalf("the second try did not switch: %+v", l)
	}
}

// TestInitServeOnPostgres is the basic flow on a state kept in
// PostgreSQL from init: whoami, a peer added by the CLI, a sandbox session
// paired against the built-in wasim, a send queued and sent, an event
// read, all through the real tunnel with serve as its own process.
func TestInitServeOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	pg := pgtest.Fresh(t)
	ctx := context.Background()
	port := freeUDPPort(t)
	dir := filepath.Join(t.TempDir(), "state")
	stderr, _ := mustCLI(t, dir, "init", "--database", pg, "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	if strings.Contains(stderr, passwordOf(pg)) || !strings.Contains(stderr, "database postgres://") {
		t.Errorf("init's message: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		t.Error("init --database made a SQLite file too")
	}
	_, cfg := mustCLI(t, dir, "peer", "add", "boss", "--scopes", "admin", "--rate", "1000", "--burst", "1000")
	boss := createdFromCLI(t, dir, "boss", cfg)

	startProc(t, dir, "true") // no --database: the state says where it is
	cl := procClient(t, dir, port, boss)
	eventually(t, "the appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	var who struct{ Name string }
	if r := do(t, cl, "GET", "/v1/whoami", nil); r.Status != 200 || r.JSON(&who) != nil || who.Name != "boss" {
		t.Fatalf("whoami: %d %s", r.Status, r.Body)
	}
	pairSession(t, cl, "shop", "+15550001")
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	m := send(t, cl, "shop", "+15550002", "stored in postgres")
	eventually(t, "the contact has the message", func() bool {
		for _, in := range inbox(t, cl, "+15550002") {
			if in.ID == m.ID {
				return true
			}
		}
		return false
	})
	eventually(t, "an event to read", func() bool { return len(listEvents(t, cl, 0)) > 0 })
	db := openStateStore(t, dir)
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM whatsmeow_device`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("whatsmeow's device row in PostgreSQL: %d %v", n, err)
	}
}
