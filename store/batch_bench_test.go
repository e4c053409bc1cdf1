package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"waappliance/internal/pgtest"
)

// BenchmarkBatchLone: one small insert at a time on an idle database,
// through Batch (a lone caller commits in its own goroutine) and, for
// comparison, through WriteTx (which never hands off), on SQLite and,
// when pgtest has a server, PostgreSQL.
//
//	go test ./store -run XXX -bench BatchLone
//	scripts/pg go test ./store -run XXX -bench BatchLone
func BenchmarkBatchLone(b *testing.B) {
	ctx := context.Background()
	dbs := []struct {
		name string
		open func() *DB
	}{
		{"sqlite", func() *DB {
			db, err := Open(ctx, filepath.Join(b.TempDir(), "s"), true)
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
	}
	if pgtest.Enabled() {
		dbs = append(dbs, struct {
			name string
			open func() *DB
		}{"postgres", func() *DB {
			db, err := OpenDSN(ctx, pgtest.Fresh(b), Options{Create: true})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}})
	}
	for _, d := range dbs {
		db := d.open()
		b.Cleanup(func() { db.Close() })
		if _, err := db.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		id := 0
		ins := func(ctx context.Context, tx *sql.Tx) error {
			id++
			_, err := tx.ExecContext(ctx, `INSERT INTO t(id, v) VALUES ($1, $2)`, id, "lone")
			return err
		}
		for _, w := range []struct {
			name  string
			write func(context.Context, func(context.Context, *sql.Tx) error) error
		}{{"Batch", db.Batch}, {"WriteTx", db.WriteTx}} {
			b.Run(d.name+"/"+w.name, func(b *testing.B) {
				for b.Loop() {
					if err := w.write(ctx, ins); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
