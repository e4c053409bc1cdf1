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
// when pgtest has a server, PostgreSQL. Each runs on a fresh database of
// its own, so neither inherits the other's rows or WAL.
//
//	go test ./store -run XXX -bench BatchLone
//	scripts/pg go test ./store -run XXX -bench BatchLone
func BenchmarkBatchLone(b *testing.B) {
	ctx := context.Background()
	type opener func(b *testing.B) *DB
	engines := []struct {
		name string
		open opener
	}{{"sqlite", func(b *testing.B) *DB {
		db, err := Open(ctx, filepath.Join(b.TempDir(), "s"), true)
		if err != nil {
			b.Fatal(err)
		}
		return db
	}}}
	if pgtest.Enabled() {
		engines = append(engines, struct {
			name string
			open opener
		}{"postgres", func(b *testing.B) *DB {
			db, err := OpenDSN(ctx, pgtest.Fresh(b), Options{Create: true})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}})
	}
	writes := []struct {
		name  string
		write func(*DB) func(context.Context, func(context.Context, *sql.Tx) error) error
	}{
		{"Batch", func(db *DB) func(context.Context, func(context.Context, *sql.Tx) error) error { return db.Batch }},
		{"WriteTx", func(db *DB) func(context.Context, func(context.Context, *sql.Tx) error) error { return db.WriteTx }},
	}
	for _, e := range engines {
		for _, w := range writes {
			b.Run(e.name+"/"+w.name, func(b *testing.B) {
				db := e.open(b)
				b.Cleanup(func() { db.Close() })
				if _, err := db.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
					b.Fatal(err)
				}
				write, id := w.write(db), 0
				ins := func(ctx context.Context, tx *sql.Tx) error {
					id++
					_, err := tx.ExecContext(ctx, `INSERT INTO t(id, v) VALUES ($1, $2)`, id, "lone")
					return err
				}
				for b.Loop() {
					if err := write(ctx, ins); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
