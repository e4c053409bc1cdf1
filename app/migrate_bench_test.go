package app_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"waappliance/app"
	"waappliance/internal/pgtest"
	"waappliance/store"
)

// BenchmarkMigrate measures `migrate` for a state with 10 sessions (their
// whatsmeow devices with 100 pre-keys and 200 contacts' identities each)
// and 100,000 events: SQLite to the local PostgreSQL and back. The state is
// made by inserting rows directly. Run with
//
//	scripts/pg go test ./app -run XXX -bench Migrate -benchtime 1x
func BenchmarkMigrate(b *testing.B) {
	pg := pgtest.Fresh(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "state")
		if code := app.Main(ctx, []string{"init", "--state", dir}, discard{}, discard{}); code != 0 {
			b.Fatal("init failed")
		}
		fillState(b, dir, 10, 100_000)
		if i > 0 {
			pg = pgtest.Fresh(b)
		}
		b.StartTimer()
		t0 := time.Now()
		rep, err := app.Migrate(ctx, dir, store.Link{URL: pg})
		if err != nil {
			b.Fatal(err)
		}
		toPG := time.Since(t0)
		t0 = time.Now()
		if _, err := app.Migrate(ctx, dir, store.Link{}); err != nil {
			b.Fatal(err)
		}
		toSQLite := time.Since(t0)
		b.ReportMetric(toPG.Seconds(), "s-to-postgres")
		b.ReportMetric(toSQLite.Seconds(), "s-to-sqlite")
		b.ReportMetric(float64(rep.Rows), "rows")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func fillState(b *testing.B, dir string, sessions, events int) {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dir, false)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.NewWithDB(db.DB, "sqlite", waLog.Noop).Upgrade(ctx); err != nil {
		b.Fatal(err)
	}
	key := func(n int) []byte { k := make([]byte, n); rand.Read(k); return k }
	err = db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for s := 0; s < sessions; s++ {
			jid := fmt.Sprintf("1555000%04d.0:1@s.whatsapp.net", s)
			if _, err := tx.ExecContext(ctx, `INSERT INTO sessions(name, jid, state, created_at, updated_at) VALUES ($1, $2, 'connected', 1, 1)`, fmt.Sprint("s", s), jid); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key, signed_pre_key, signed_pre_key_id, signed_pre_key_sig,
				adv_key, adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig) VALUES ($1, 1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10)`,
				jid, key(32), key(32), key(32), key(64), key(32), key(100), key(64), key(32), key(64)); err != nil {
				return err
			}
			for k := 0; k < 100; k++ {
				if _, err := tx.ExecContext(ctx, `INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, $2, $3, $4)`, jid, k, key(32), k%2 == 0); err != nil {
					return err
				}
			}
			for c := 0; c < 200; c++ {
				if _, err := tx.ExecContext(ctx, `INSERT INTO whatsmeow_identity_keys (our_jid, their_id, identity) VALUES ($1, $2, $3)`, jid, fmt.Sprint("1666", c, ":0"), key(32)); err != nil {
					return err
				}
			}
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO events(at, session, type, data) VALUES ($1, $2, 'message.received', $3)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for e := 0; e < events; e++ {
			data := fmt.Sprintf(`{"id":"3EB0%016X","chat":"15551234567@s.whatsapp.net","from":"15551234567@s.whatsapp.net","text":"message number %d of the benchmark","timestamp":"2026-12-01T10:00:00Z"}`, e, e)
			if _, err := st.ExecContext(ctx, time.Now().UnixNano(), fmt.Sprint("s", e%sessions), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
