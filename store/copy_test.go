package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// TestCopyKeepsRowsIdsAndSequences copies a state's tables between every
// pair of engines and checks that the rows, their ids, the settings and
// the id sequences arrive: an event appended after the copy gets the id
// after the last one the source ever handed out, even when that one was
// deleted (pruned).
func TestCopyKeepsRowsIdsAndSequences(t *testing.T) {
	for _, from := range engines() {
		for _, to := range engines() {
			t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				src, dst := from.open(t), to.open(t)
				err := src.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
					for i := 1; i <= 1200; i++ { // more than one INSERT's worth
						if _, err := tx.ExecContext(ctx, `INSERT INTO events(at, session, type, data) VALUES ($1, 's', 't', $2)`, i, fmt.Sprint(`{"n":`, i, `}`)); err != nil {
							return err
						}
					}
					if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id > 1000`); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO sessions(name, state, created_at, updated_at) VALUES ('s', 'connected', 1, 1)`); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO outbox(id, session, peer, idem_key, to_jid, text, status, next_attempt_at, created_at, updated_at) VALUES ('m1', 's', 'p', 'k1', 'j', 'hi', 'queued', 0, 1, 1)`); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_history(message_id, at, status) VALUES ('m1', 1, 'queued')`); err != nil {
						return err
					}
					return SettingsOf(tx).Set(ctx, "events_pruned_through", "1200")
				})
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Copy(ctx, dst, src)
				if err != nil {
					t.Fatal(err)
				}
				counts := map[string]int64{}
				for _, tb := range rep.Tables {
					counts[tb.Name] = tb.Rows
				}
				if counts["events"] != 1000 || counts["outbox"] != 1 || counts["outbox_history"] != 1 || counts["sessions"] != 1 {
					t.Fatalf("copied %v", counts)
				}
				if v, _, _ := dst.Settings().Get(ctx, "events_pruned_through"); v != "1200" {
					t.Fatalf("prune mark %q", v)
				}
				var id int64
				if err := dst.QueryRowContext(ctx, `INSERT INTO events(at, session, type, data) VALUES (2000, 's', 't', '{}') RETURNING id`).Scan(&id); err != nil {
					t.Fatal(err)
				}
				if id != 1201 {
					t.Fatalf("the first event after the copy has id %d, want 1201", id)
				}
				var data string
				if err := dst.QueryRowContext(ctx, `SELECT data FROM events WHERE id = 1000`).Scan(&data); err != nil || data != `{"n":1000}` {
					t.Fatalf("event 1000: %q %v", data, err)
				}
				var sm int
				dst.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&sm)
				if applied, embedded, _ := dst.Migrations(ctx); applied != embedded || sm == 0 {
					t.Fatalf("target migrations %d of %d (%d rows)", applied, embedded, sm)
				}
			})
		}
	}
}

// TestCopyRollsBackOnFailure: a copy that fails half-way (the target lacks
// a table) leaves the target as it was.
func TestCopyRollsBackOnFailure(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		src := e.open(t)
		dst, err := Open(ctx, filepath.Join(t.TempDir(), "d"), true)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		if _, err := src.ExecContext(ctx, `CREATE TABLE zz_extra (x INTEGER)`); err != nil {
			t.Fatal(err)
		}
		if err := dst.Settings().Set(ctx, "marker", "kept"); err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(ctx, dst, src); err == nil {
			t.Fatal("a copy into a target without the source's table succeeded")
		}
		if v, _, _ := dst.Settings().Get(ctx, "marker"); v != "kept" {
			t.Fatalf("the failed copy changed the target: marker %q", v)
		}
	})
}
