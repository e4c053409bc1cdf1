package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
)

// TestFirstWrite: a FirstWrite commits with the first Batch or WriteTx run
// on its context, in the same transaction, and never alone: when that
// write fails (its fn, or the FirstWrite itself) neither stays and the
// next write runs it again; once committed, later writes leave it out;
// another context never runs it.
func TestFirstWrite(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db, _ := batchDB(t, e)
		if _, err := db.Exec(`CREATE TABLE side(id INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		sides := func() []int { return tableIDs(t, db, "side") }
		next, failSide := 100, false
		ctx, fw := WithFirstWrite(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			if failSide {
				return errors.New("side refused")
			}
			next++
			_, err := tx.ExecContext(ctx, `INSERT INTO side(id) VALUES ($1)`, next)
			return err
		})
		errBoom := errors.New("boom")
		// The caller's fn fails after the FirstWrite ran: neither stays.
		if err := db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error { insert(1)(ctx, tx); return errBoom }); !errors.Is(err, errBoom) {
			t.Fatalf("Batch: %v", err)
		}
		if err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error { insert(2)(ctx, tx); return errBoom }); !errors.Is(err, errBoom) {
			t.Fatalf("WriteTx: %v", err)
		}
		// The FirstWrite itself fails: the caller's write does not happen.
		failSide = true
		if err := db.Batch(ctx, insert(3)); err == nil {
			t.Fatal("Batch went on without its FirstWrite")
		}
		failSide = false
		if fw.Done() || len(sides()) != 0 || len(ids(t, db)) != 0 {
			t.Fatalf("after failed writes: done %v, side %v, t %v", fw.Done(), sides(), ids(t, db))
		}
		// Another context's write leaves it alone.
		if err := db.Batch(context.Background(), insert(4)); err != nil || fw.Done() {
			t.Fatalf("another context: %v, done %v", err, fw.Done())
		}
		// The first write that commits takes it, once.
		if err := db.WriteTx(ctx, insert(5)); err != nil || !fw.Done() {
			t.Fatalf("WriteTx: %v, done %v", err, fw.Done())
		}
		if err := db.Batch(ctx, insert(6)); err != nil {
			t.Fatal(err)
		}
		if s, r := sides(), ids(t, db); !slices.Equal(s, []int{103}) || !slices.Equal(r, []int{4, 5, 6}) {
			t.Fatalf("side %v, t %v; want [103] and [4 5 6]", s, r)
		}
	})
}
