package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

// rowsOf returns the rows of query as tab-joined strings.
func rowsOf(t *testing.T, q Querier, query string, args ...any) []string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			s[i] = v.String
		}
		out = append(out, strings.Join(s, "\t"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSQLiteSchemaUnchanged: a state made by the previous release's
// migration code and files (testdata/migrations-v1, as they were before
// the files learnt PostgreSQL) migrates forward to exactly the schema a
// new state gets: sqlite_master (which keeps each CREATE's text) and the
// recorded migrations are the same.
func TestSQLiteSchemaUnchanged(t *testing.T) {
	ctx := context.Background()
	oldDir := filepath.Join(t.TempDir(), "old")
	if err := os.Mkdir(oldDir, 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", sqliteDSN(filepath.Join(oldDir, FileName)))
	if err != nil {
		t.Fatal(err)
	}
	// The previous release's migrate, statement for statement.
	if _, err := old.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/migrations-v1/*.sql")
	slices.Sort(files)
	if len(files) != 4 {
		t.Fatalf("%d frozen migrations", len(files))
	}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := old.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(string(b)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`, i+1, filepath.Base(f), time.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	upgraded, err := Open(ctx, oldDir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer upgraded.Close()
	fresh := sqliteEngine().open(t)
	const master = `SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name`
	const recorded = `SELECT version, name FROM schema_migrations ORDER BY version`
	for _, q := range []string{master, recorded, `SELECT key, value FROM settings ORDER BY key`} {
		a, b := rowsOf(t, upgraded, q), rowsOf(t, fresh, q)
		if !slices.Equal(a, b) {
			t.Errorf("%s differs:\nprevious release, migrated:\n  %s\nnew:\n  %s", q, strings.Join(a, "\n  "), strings.Join(b, "\n  "))
		}
	}
	if n := len(rowsOf(t, fresh, master)); n < 15 {
		t.Fatalf("only %d schema objects", n)
	}
}

// sqliteSchema and postgresSchema describe a schema in the same words:
// columns (canonical type, NOT NULL, has a default, in the primary key),
// indexes other than primary keys (their columns, unique, partial; the
// name when it is not a constraint's), and foreign keys.
func sqliteSchema(t *testing.T, db *DB) []string {
	canon := map[string]string{"INTEGER": "int", "TEXT": "text", "REAL": "float"}
	var out []string
	for _, tbl := range rowsOf(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`) {
		for _, c := range rowsOf(t, db, `SELECT name, type, "notnull", dflt_value IS NOT NULL, pk > 0 FROM pragma_table_info($1) ORDER BY cid`, tbl) {
			f := strings.Split(c, "\t")
			nn := f[2] == "1" || f[4] == "1" // a primary key is NOT NULL on PostgreSQL
			out = append(out, fmt.Sprintf("%s.%s %s notnull=%v default=%v pk=%v", tbl, f[0], canon[f[1]], nn, f[3] == "1", f[4] == "1"))
		}
		for _, ix := range rowsOf(t, db, `SELECT name, "unique", origin, partial FROM pragma_index_list($1) WHERE origin != 'pk'`, tbl) {
			f := strings.Split(ix, "\t")
			cols := rowsOf(t, db, `SELECT name FROM pragma_index_info($1) ORDER BY seqno`, f[0])
			name := ""
			if f[2] == "c" {
				name = f[0]
			}
			out = append(out, fmt.Sprintf("index %s(%s) unique=%v partial=%v %s", tbl, strings.Join(cols, ","), f[1] == "1", f[3] == "1", name))
		}
		for _, fk := range rowsOf(t, db, `SELECT "from", "table", "to", on_delete FROM pragma_foreign_key_list($1)`, tbl) {
			f := strings.Split(fk, "\t")
			out = append(out, fmt.Sprintf("fk %s.%s -> %s.%s on delete %s", tbl, f[0], f[1], f[2], strings.ToLower(f[3])))
		}
	}
	slices.Sort(out)
	return out
}

func postgresSchema(t *testing.T, db *DB) []string {
	// int4 and float4 have no SQLite twin: pgTypes makes every integer
	// BIGINT and every REAL a double.
	canon := map[string]string{"integer": "int4", "bigint": "int", "text": "text", "double precision": "float", "real": "float4"}
	var out []string
	for _, tbl := range rowsOf(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`) {
		for _, c := range rowsOf(t, db, `SELECT c.column_name, c.data_type, c.is_nullable = 'NO', c.column_default IS NOT NULL,
				EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
					WHERE i.indrelid = c.table_name::regclass AND i.indisprimary AND a.attname = c.column_name)
			FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name = $1 ORDER BY c.ordinal_position`, tbl) {
			f := strings.Split(c, "\t")
			out = append(out, fmt.Sprintf("%s.%s %s notnull=%v default=%v pk=%v", tbl, f[0], canon[f[1]], f[2] == "true", f[3] == "true", f[4] == "true"))
		}
		for _, ix := range rowsOf(t, db, `SELECT i.relname, x.indisunique, x.indpred IS NOT NULL,
				EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid),
				array_to_string(ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
					JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o), ',')
			FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
			WHERE x.indrelid = $1::regclass AND NOT x.indisprimary`, tbl) {
			f := strings.Split(ix, "\t")
			name := ""
			if f[3] == "false" {
				name = f[0]
			}
			out = append(out, fmt.Sprintf("index %s(%s) unique=%v partial=%v %s", tbl, f[4], f[1] == "true", f[2] == "true", name))
		}
		del := map[string]string{"a": "no action", "c": "cascade", "n": "set null", "d": "set default", "r": "restrict"}
		for _, fk := range rowsOf(t, db, `SELECT a.attname, c.confrelid::regclass::text, b.attname, c.confdeltype
			FROM pg_constraint c
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
			JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = c.confkey[1]
			WHERE c.conrelid = $1::regclass AND c.contype = 'f'`, tbl) {
			f := strings.Split(fk, "\t")
			out = append(out, fmt.Sprintf("fk %s.%s -> %s.%s on delete %s", tbl, f[0], f[1], f[2], del[f[3]]))
		}
	}
	slices.Sort(out)
	return out
}

// TestSchemaSameOnBothEngines: the migrations make the same tables,
// columns, indexes, foreign keys and seeded settings on both engines, so
// a dialect line cannot drift from its twin.
func TestSchemaSameOnBothEngines(t *testing.T) {
	pg := postgresEngine().open(t)
	lite := sqliteEngine().open(t)
	a, b := sqliteSchema(t, lite), postgresSchema(t, pg)
	if !slices.Equal(a, b) {
		var d []string
		for _, l := range a {
			if !slices.Contains(b, l) {
				d = append(d, "sqlite only:   "+l)
			}
		}
		for _, l := range b {
			if !slices.Contains(a, l) {
				d = append(d, "postgres only: "+l)
			}
		}
		t.Fatalf("the schemas differ:\n%s", strings.Join(d, "\n"))
	}
	if len(a) < 60 {
		t.Fatalf("only %d schema facts: %v", len(a), a)
	}
	q := `SELECT key, value FROM settings ORDER BY key`
	if x, y := rowsOf(t, lite, q), rowsOf(t, pg, q); !slices.Equal(x, y) {
		t.Fatalf("seeded settings: sqlite %v, postgres %v", x, y)
	}
}

// TestFilterFollowsDbutil: the dialect lines mean what they mean to
// go.mau.fi/util/dbutil (whatsmeow's migrations), for every migration
// file and every form of the marker.
func TestFilterFollowsDbutil(t *testing.T) {
	texts := map[string]string{"forms": `CREATE TABLE t (
-- only: sqlite
	a INTEGER,
-- only: postgres
	a BIGINT,
-- only: postgres for next 2 lines
	b BIGINT,
	c BIGINT,
	-- only: sqlite for next 2 lines
	b INTEGER,
	c INTEGER,
	d TEXT
);
-- only: postgres until "end only"
CREATE INDEX t_b ON t(b);
CREATE INDEX t_c ON t(c);
-- end only postgres
-- only: sqlite until "end only" (lines commented)
--CREATE INDEX t_bc ON t(b, c);
-- end only sqlite
-- only: postgres (line commented)
--SELECT 1;
`}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		texts[m.name] = m.sql
	}
	for name, text := range texts {
		for d, dd := range map[Dialect]dbutil.Dialect{SQLite: dbutil.SQLite, Postgres: dbutil.Postgres} {
			ours, err := filterSQL(text, d)
			if err != nil {
				t.Fatalf("%s %s: %v", name, d, err)
			}
			theirs, err := (&dbutil.Database{Dialect: dd}).Internals().FilterSQLUpgrade(bytes.Split([]byte(text), []byte("\n")))
			if err != nil {
				t.Fatalf("%s %s, dbutil: %v", name, d, err)
			}
			if ours != theirs {
				t.Errorf("%s for %s:\nours:\n%s\ndbutil:\n%s", name, d, ours, theirs)
			}
			if strings.Contains(ours, "-- only:") || strings.Contains(ours, "-- end only") {
				t.Errorf("%s for %s keeps a marker", name, d)
			}
		}
	}
	for _, bad := range []string{
		"-- only: postgres until \"end only\"\nSELECT 1;",
		"-- only: postgres until \"end only\"\nSELECT 1;\n-- end only sqlite",
		"SELECT 1;\n-- end only sqlite",
		"-- only: sqlite for next 3 lines\nSELECT 1;",
		"-- only: sqlite (lines commented)\nSELECT 1;",
	} {
		if _, err := filterSQL(bad, SQLite); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

// TestPlainAdditions: a migration written in SQLite's words only, as the
// next ones are (new nullable integer columns, nanosecond timestamps, a
// float, a blob, an index), runs on both engines and stores what SQLite
// stores: 64-bit integers, doubles, bytes.
func TestPlainAdditions(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db := e.open(t)
		ctx := context.Background()
		extra := []migration{{9001, "9001_plain.sql", `-- new limits, and when a refusal was first and last seen
ALTER TABLE peers ADD COLUMN max_sessions INTEGER;
ALTER TABLE audit ADD COLUMN x_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN x_first_at INTEGER;
ALTER TABLE audit ADD COLUMN x_last_at integer;
CREATE TABLE blobs (k TEXT PRIMARY KEY, v BLOB NOT NULL, f REAL, n INT, note TEXT DEFAULT 'INTEGER stays a word here');
CREATE INDEX audit_x_last ON audit(x_last_at) WHERE x_last_at IS NOT NULL;
`}}
		if err := db.apply(ctx, extra); err != nil {
			t.Fatal(err)
		}
		if err := db.apply(ctx, extra); err != nil {
			t.Fatalf("applied again: %v", err)
		}
		now := time.Now().UnixNano()
		if _, err := db.ExecContext(ctx, `INSERT INTO audit(at, peer, method, route, status, x_count, x_first_at, x_last_at) VALUES ($1, 'p', 'POST', '/', 429, $2, $1, $1)`, now, int64(1)<<40); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO blobs(k, v, f, n) VALUES ('a', $1, $2, $3)`, []byte{0, 1, 0xff}, 0.1+0.2, int64(-1)<<62); err != nil {
			t.Fatal(err)
		}
		var first, count, n int64
		var v []byte
		var f float64
		var note string
		if err := db.QueryRowContext(ctx, `SELECT x_first_at, x_count FROM audit`).Scan(&first, &count); err != nil || first != now || count != 1<<40 {
			t.Fatalf("audit: %d %d %v", first, count, err)
		}
		if err := db.QueryRowContext(ctx, `SELECT v, f, n, note FROM blobs`).Scan(&v, &f, &n, &note); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, []byte{0, 1, 0xff}) || f != 0.1+0.2 || n != -1<<62 || note != "INTEGER stays a word here" {
			t.Fatalf("blobs: %x %v %d %q", v, f, n, note)
		}
	})
}

func TestPGTypes(t *testing.T) {
	for in, want := range map[string]string{
		"a INTEGER NOT NULL, b integer, c INT, d REAL, e BLOB":   "a BIGINT NOT NULL, b BIGINT, c BIGINT, d DOUBLE PRECISION, e BYTEA",
		"INTEGERS int4 interval pint x_int":                      "INTEGERS int4 interval pint x_int",
		"DEFAULT 'REAL' -- an INTEGER\nCAST(x AS INTEGER)":       "DEFAULT 'REAL' -- an INTEGER\nCAST(x AS BIGINT)",
		`"int" /* BLOB */ BLOB 'it''s INT' INT`:                  `"int" /* BLOB */ BYTEA 'it''s INT' BIGINT`,
		"unterminated 'INT":                                      "unterminated 'INT",
		"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT) -- INT": "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) -- INT",
	} {
		if got := pgTypes(in); got != want {
			t.Errorf("pgTypes(%q) = %q, want %q", in, got, want)
		}
	}
}
