package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// kept is how many prepared statements conn keeps.
func kept(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	n := -1
	if err := conn.Raw(func(dc any) error { n = len(dc.(*gatedConn).stmts); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStmtCache: a SQLite connection prepares a statement once and runs it
// again by its text; the same query nested in its own open rows, a failed
// statement, a schema change and more distinct statements than it keeps
// all still give the right answers.
func TestStmtCache(t *testing.T) {
	db := openGated(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	base := kept(t, conn)
	for i := range 3 {
		if _, err := conn.ExecContext(ctx, `INSERT INTO k(id, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := kept(t, conn); n != base+1 {
		t.Fatalf("kept %d statements after three runs of one, want %d", n, base+1)
	}

	// The same query inside its own open rows: the second runs one-shot.
	const q = `SELECT id, v FROM k WHERE id >= $1 ORDER BY id`
	rows, err := conn.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var outer []string
	for rows.Next() {
		var id int
		var v string
		rows.Scan(&id, &v)
		var inner int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM k WHERE id >= $1`, id).Scan(&inner); err != nil {
			t.Fatal(err)
		}
		r2, err := conn.QueryContext(ctx, q, id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r2.Next() {
			n++
		}
		r2.Close()
		if n != inner || n != 3-id {
			t.Fatalf("nested run from %d saw %d rows, count %d", id, n, inner)
		}
		outer = append(outer, v)
	}
	if err := rows.Close(); err != nil || len(outer) != 3 {
		t.Fatalf("outer rows %v, %v", outer, err)
	}
	// And again, now that it is free, with another argument.
	var v string
	if err := conn.QueryRowContext(ctx, `SELECT v FROM k WHERE id = $1`, 2).Scan(&v); err != nil || v != "v2" {
		t.Fatalf("v %q, %v", v, err)
	}

	// A failed run (a duplicate key) is dropped; the text runs again fine.
	if _, err := conn.ExecContext(ctx, `INSERT INTO k(id, v) VALUES ($1, $2)`, 1, "dup"); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO k(id, v) VALUES ($1, $2)`, 9, "v9"); err != nil {
		t.Fatal(err)
	}

	// A schema change between two runs of one text.
	const all = `SELECT * FROM k WHERE id = $1`
	cols := func() int {
		r, err := conn.QueryContext(ctx, all, 9)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c, _ := r.Columns()
		return len(c)
	}
	before := cols()
	if _, err := conn.ExecContext(ctx, `ALTER TABLE k ADD COLUMN w TEXT`); err != nil {
		t.Fatal(err)
	}
	if after := cols(); after != before+1 {
		t.Fatalf("columns %d after adding one to %d", after, before)
	}

	// More distinct statements than it keeps.
	for i := range maxCachedStmts * 2 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) + %d FROM k`, i)).Scan(&n); err != nil || n != 4+i {
			t.Fatalf("statement %d: %d, %v", i, n, err)
		}
	}
	if n := kept(t, conn); n > maxCachedStmts {
		t.Fatalf("kept %d statements, at most %d", n, maxCachedStmts)
	}
}
