package store

import (
	"context"
	"encoding/json"
	"testing"
)

// TestOutboxContentBackfill: migration 0007 turns the outbox rows of
// before (text, reply_to) into content JSON of kind text, on both engines;
// the old columns stay readable and a row without a reply gets none.
func TestOutboxContentBackfill(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db := e.open(t)
		ctx := context.Background()
		// Back to before 0007: its columns gone, its version unrecorded.
		for _, q := range []string{
			`ALTER TABLE outbox DROP COLUMN kind`, `ALTER TABLE outbox DROP COLUMN content`, `ALTER TABLE outbox DROP COLUMN request_hash`,
			`DELETE FROM schema_migrations WHERE version = 7`,
			`INSERT INTO sessions(name, state, created_at, updated_at) VALUES ('s', 'new', 1, 1)`,
			`INSERT INTO outbox(id, session, peer, idem_key, to_jid, text, reply_to, status, next_attempt_at, created_at, updated_at)
				VALUES ('m1', 's', 'p', 'k1', '15550002@s.whatsapp.net', 'plain "quoted" text', '', 'queued', 0, 1, 1)`,
			`INSERT INTO outbox(id, session, peer, to_jid, text, reply_to, status, next_attempt_at, created_at, updated_at)
				VALUES ('m2', 's', 'p', '15550002@s.whatsapp.net', 'a reply', 'm1', 'sent', 0, 1, 1)`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		type content struct {
			Kind    string
			Text    *struct{ Body string }
			ReplyTo *struct{ Chat, Sender, ID string } `json:"reply_to"`
		}
		for _, id := range []string{"m1", "m2"} {
			var kind, raw, hash, text string
			if err := db.QueryRowContext(ctx, `SELECT kind, content, request_hash, text FROM outbox WHERE id = $1`, id).Scan(&kind, &raw, &hash, &text); err != nil {
				t.Fatal(err)
			}
			var c content
			if err := json.Unmarshal([]byte(raw), &c); err != nil || kind != "text" || c.Kind != "text" || c.Text == nil || c.Text.Body != text || hash != "" {
				t.Fatalf("%s: kind %q content %s (%v) hash %q text %q", id, kind, raw, err, hash, text)
			}
			switch {
			case id == "m1" && c.ReplyTo != nil:
				t.Errorf("m1 got a reply_to: %s", raw)
			case id == "m2" && (c.ReplyTo == nil || c.ReplyTo.ID != "m1" || c.ReplyTo.Chat != "15550002@s.whatsapp.net" || c.ReplyTo.Sender != "15550002@s.whatsapp.net"):
				t.Errorf("m2's reply_to: %s", raw)
			}
		}
	})
}
