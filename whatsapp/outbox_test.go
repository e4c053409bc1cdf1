package whatsapp

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/events"
	"waappliance/internal/pgtest"
	"waappliance/store"
)

// openStore opens a fresh database of the engine dsn names (see
// pgtest.ForEngines: "" is SQLite in a new state directory), closed when t
// ends.
func openStore(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.OpenDSN(context.Background(), dsn, store.Options{Dir: filepath.Join(t.TempDir(), "state"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newTestEngine is an engine on a fresh database of the engine dsn names
// with one session "shop" (never connected: the tests below drive statuses
// directly).
func newTestEngine(t *testing.T, dsn string, log *slog.Logger) (*Engine, *store.DB) {
	t.Helper()
	ctx := context.Background()
	db := openStore(t, dsn)
	e, err := New(ctx, Config{DB: db, Events: events.New(db, events.Options{}), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); db.Close() })
	if _, err := e.Create(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	return e, db
}

func insertMessage(t *testing.T, e *Engine, id, status string) {
	t.Helper()
	now := time.Now().UnixNano()
	if _, err := e.cfg.DB.Exec(`INSERT INTO outbox(id, session, peer, to_jid, text, content, status, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9)`,
		id, "shop", "p", "15550002@s.whatsapp.net", `{"kind":"text","text":{"body":"hi"}}`, status, now, now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cfg.DB.Exec(`INSERT INTO outbox_history(message_id, at, status) VALUES ($1, $2, $3)`, id, now, status); err != nil {
		t.Fatal(err)
	}
}

func statusOf(t *testing.T, e *Engine, id string) (string, []string) {
	t.Helper()
	m, err := e.Message(context.Background(), "shop", id)
	if err != nil {
		t.Fatal(err)
	}
	var h []string
	for _, x := range m.History {
		h = append(h, x.Status)
	}
	return m.Status, h
}

// TestStatusTransitions: statuses only move forward, queued → sent →
// delivered → read, and to failed only from queued.
func TestStatusTransitions(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		all := []string{StatusQueued, StatusSent, StatusDelivered, StatusRead, StatusFailed}
		allowed := map[[2]string]bool{
			{StatusQueued, StatusSent}: true, {StatusQueued, StatusDelivered}: true, {StatusQueued, StatusRead}: true,
			{StatusQueued, StatusFailed}: true, {StatusSent, StatusDelivered}: true, {StatusSent, StatusRead}: true,
			{StatusDelivered, StatusRead}: true,
		}
		n := 0
		for _, from := range all {
			for _, to := range all {
				n++
				id := fmt.Sprintf("3EB0T%02d", n)
				insertMessage(t, e, id, from)
				if err := e.setStatus(context.Background(), id, to, "why", time.Time{}); err != nil {
					t.Fatal(err)
				}
				want := from
				if allowed[[2]string{from, to}] {
					want = to
				}
				if got, h := statusOf(t, e, id); got != want {
					t.Errorf("%s → %s: status %s (history %v), want %s", from, to, got, h, want)
				}
				if canMove(from, to) != allowed[[2]string{from, to}] {
					t.Errorf("canMove(%s, %s) = %v", from, to, !allowed[[2]string{from, to}])
				}
			}
		}
	})
}

// TestFailRacesReceipts: a logout's failPending and the sender's give-up
// race delivered receipts; a message ends delivered or failed, never failed
// after it was sent or delivered, whoever wins.
func TestFailRacesReceipts(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		const n = 60
		for i := range n {
			insertMessage(t, e, fmt.Sprintf("3EB0R%03d", i), StatusQueued)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			id := fmt.Sprintf("3EB0R%03d", i)
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				if err := e.setStatus(ctx, id, StatusDelivered, "", time.Time{}); err != nil {
					t.Error(err)
				}
			}()
			go func() {
				defer wg.Done()
				<-start
				if i%2 == 0 {
					if err := e.setStatus(ctx, id, StatusFailed, "gave up", time.Time{}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			e.failPending(ctx, "shop", "session logged out")
		}()
		close(start)
		wg.Wait()
		for i := range n {
			id := fmt.Sprintf("3EB0R%03d", i)
			st, h := statusOf(t, e, id)
			path := strings.Join(h, ">")
			switch st {
			case StatusDelivered:
				if path != "queued>sent>delivered" {
					t.Errorf("%s: history %s", id, path)
				}
			case StatusFailed:
				if path != "queued>failed" {
					t.Errorf("%s: failed after it moved on: %s", id, path)
				}
			default:
				t.Errorf("%s: status %s (%s)", id, st, path)
			}
		}
	})
}

// TestReceiptNotDurableIsNotAcked: when a receipt's status cannot be
// committed, the handler reports failure, so whatsmeow (SynchronousAck)
// withholds the ack and WhatsApp redelivers the receipt.
func TestReceiptNotDurableIsNotAcked(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, db := newTestEngine(t, dsn, nil)
		insertMessage(t, e, "3EB0AAA", StatusSent)
		s, err := e.session("shop")
		if err != nil {
			t.Fatal(err)
		}
		rcpt := func(id string) *waEvents.Receipt {
			return &waEvents.Receipt{Type: types.ReceiptTypeDelivered, MessageIDs: []types.MessageID{types.MessageID(id)}}
		}
		if !s.handle(nil, rcpt("3EB0AAA")) {
			t.Fatal("a recorded receipt was not acked")
		}
		if st, _ := statusOf(t, e, "3EB0AAA"); st != StatusDelivered {
			t.Fatalf("status %s", st)
		}
		if !s.handle(nil, rcpt("3EB0NOTOURS")) {
			t.Fatal("a receipt for a message that is not ours was not acked")
		}
		db.Close() // every write fails from here
		if s.handle(nil, &waEvents.Receipt{Type: types.ReceiptTypeRead, MessageIDs: []types.MessageID{"3EB0AAA"}}) {
			t.Fatal("a receipt that was not recorded would be acked")
		}
	})
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+4915123456789", "+…789"},
		{"4915123456789@s.whatsapp.net", "…789@s.whatsapp.net"},
		{"4915123456789:12@s.whatsapp.net", "…789:12@s.whatsapp.net"},
		{"123456789012345@lid", "…345@lid"},
		{`<message to="4915123456789@s.whatsapp.net" id="3EB0ABC0123456789DEF">`, `<message to="…789@s.whatsapp.net" id="3EB0ABC0123456789DEF">`},
		{"failed to get LID for PN 4915123456789@s.whatsapp.net: timed out", "failed to get LID for PN …789@s.whatsapp.net: timed out"},
		{"Node handling took 1.234567s for <receipt from=\"15550002@s.whatsapp.net\">", "Node handling took 1.234567s for <receipt from=\"…002@s.whatsapp.net\">"},
		{"port 51820, 12345 items", "port 51820, 12345 items"},
		{"123456", "…456"},
		{"", ""},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWhatsmeowLogRedacted: a whatsmeow warning with a JID reaches the log
// masked through the engine's logger; its debug lines stay raw.
func TestWhatsmeowLogRedacted(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, _ := newTestEngine(t, "", log) // the logger, not the engine, is under test
	wl := newWALogger(e.log, "client").Sub("shop")
	wl.Warnf("Error decrypting message %s from %s: %v", "3EB0ABC0123456789DEF", "4915123456789:12@s.whatsapp.net", errors.New("no session"))
	wl.Errorf("Failed to handle retry receipt for %s", "4915123456789@s.whatsapp.net")
	e.log.Info("send failed; will retry", "err", errors.New("failed to get LID for PN 4915123456789@s.whatsapp.net"))
	e.log.Warn("device 4915123456789:3@s.whatsapp.net is gone")
	out := buf.String()
	if strings.Contains(out, "4915123456789") {
		t.Fatalf("a full number above debug:\n%s", out)
	}
	if strings.Count(out, "…789") != 4 || !strings.Contains(out, "3EB0ABC0123456789DEF") {
		t.Fatalf("redaction went wrong:\n%s", out)
	}
	buf.Reset()
	wl.Debugf("raw %s", "4915123456789@s.whatsapp.net")
	wl.Infof("raw %s", "4915123456789@s.whatsapp.net") // whatsmeow's info is our debug
	if strings.Count(buf.String(), "4915123456789@") != 2 {
		t.Fatalf("debug is not raw:\n%s", buf.String())
	}
}

// TestConcurrentSendsSameKeyOneMessage: sends that share one commit
// (store.DB.Batch) still re-check the Idempotency-Key inside it, so copies
// of a request racing each other create one message and all get it.
func TestConcurrentSendsSameKeyOneMessage(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, db := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		if err := e.sessions["shop"].setJID(ctx, types.NewJID("15550001", types.DefaultUserServer), ""); err != nil {
			t.Fatal(err)
		}
		// Hold the committer so that the copies queue into one batch.
		started, release := make(chan struct{}), make(chan struct{})
		held := make(chan error, 1)
		go func() {
			held <- db.Batch(ctx, func(context.Context, *sql.Tx) error {
				close(started)
				<-release
				return nil
			})
		}()
		<-started
		const n = 8
		type result struct {
			id      string
			created bool
			err     error
		}
		res := make(chan result, n+1)
		req := SendRequest{To: "+15550002", Content: Text("once"), Peer: "p", IdempotencyKey: "k1"}
		for i := 0; i < n; i++ {
			go func() {
				m, created, err := e.Send(ctx, "shop", req)
				res <- result{m.ID, created, err}
			}()
		}
		go func() { // another message in the same batch
			m, created, err := e.Send(ctx, "shop", SendRequest{To: "+15550002", Content: Text("other"), Peer: "p", IdempotencyKey: "k2"})
			res <- result{m.ID, created, err}
		}()
		time.Sleep(50 * time.Millisecond) // let them queue behind the held batch
		close(release)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		ids := map[string]int{}
		created := 0
		for i := 0; i < n+1; i++ {
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			ids[r.id]++
			if r.created {
				created++
			}
		}
		var rows int
		if err := db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if created != 2 || len(ids) != 2 || rows != 2 {
			t.Fatalf("%d created, ids %v, %d rows; want 2 messages, one of them sent %d times", created, ids, rows, n)
		}
	})
}

// TestStatusMovesNoLostUpdate: a send's ack and its delivered and read
// receipts (each twice, as a retried send and redelivered receipts bring
// them) race on the same messages, through the receipt handler and the
// sender's setStatus. Whatever the order, a status only moves forward and
// every move is in the history, and in the event log, exactly once: on
// PostgreSQL as on SQLite, a move's read of the old status and its write
// are one step (store.WriteTx), so no two movers both see "queued".
func TestStatusMovesNoLostUpdate(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		s, _ := e.session("shop")
		const n = 20
		ack := time.Unix(1_700_000_123, 0)
		for i := range n {
			insertMessage(t, e, fmt.Sprintf("3EB0L%03d", i), StatusQueued)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			id := fmt.Sprintf("3EB0L%03d", i)
			for range 2 {
				wg.Add(3)
				go func() {
					defer wg.Done()
					<-start
					if err := e.setStatus(ctx, id, StatusSent, "", ack); err != nil {
						t.Error(err)
					}
				}()
				for _, typ := range []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeRead} {
					go func() {
						defer wg.Done()
						<-start
						if !s.handle(nil, &waEvents.Receipt{Type: typ, MessageIDs: []types.MessageID{types.MessageID(id)}}) {
							t.Errorf("%s: receipt %q not recorded", id, typ)
						}
					}()
				}
			}
		}
		close(start)
		wg.Wait()

		evs, err := e.cfg.Events.List(ctx, events.Filter{Limit: events.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		moves := map[string][]string{} // message.status events by message
		for _, ev := range evs {
			if ev.Type != events.TypeMessageStatus {
				continue
			}
			var d struct{ ID, Status string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			moves[d.ID] = append(moves[d.ID], d.Status)
		}
		for i := range n {
			id := fmt.Sprintf("3EB0L%03d", i)
			m, err := e.Message(ctx, "shop", id)
			if err != nil {
				t.Fatal(err)
			}
			var path, moved []string
			for _, h := range m.History {
				path = append(path, h.Status)
				if h.Status != StatusQueued && !strings.HasPrefix(h.Detail, "implied") {
					moved = append(moved, h.Status)
				}
			}
			if m.Status != StatusRead || path[len(path)-1] != StatusRead {
				t.Errorf("%s: status %s, history %v; want read last", id, m.Status, path)
			}
			if len(path) < 3 || path[0] != StatusQueued || path[1] != StatusSent {
				t.Errorf("%s: history %v; want queued, sent, …", id, path)
			}
			for j := 1; j < len(path); j++ {
				if statusRank[path[j]] <= statusRank[path[j-1]] {
					t.Errorf("%s: history %v moves backwards or twice", id, path)
					break
				}
			}
			if strings.Join(moved, ">") != strings.Join(moves[id], ">") {
				t.Errorf("%s: events %v, history moves %v; want each move once in both", id, moves[id], moved)
			}
			if m.ServerTS == nil || !m.ServerTS.Equal(ack) {
				t.Errorf("%s: server timestamp %v, want the ack's %v", id, m.ServerTS, ack)
			}
		}
	})
}

// TestIdempotentSendsRace: ten copies of one request with the same
// Idempotency-Key, racing freely (not held in one batch), half of them
// through a second engine on its own handle of the same database (another
// process; on PostgreSQL, later, another appliance): exactly one outbox row,
// one of them creates it, and every copy answers with it.
func TestIdempotentSendsRace(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e1, db := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		if err := e1.sessions["shop"].setJID(ctx, types.NewJID("15550001", types.DefaultUserServer), ""); err != nil {
			t.Fatal(err)
		}
		var db2 *store.DB
		var err error
		if dsn == "" {
			db2, err = store.OpenPath(ctx, db.Path)
		} else {
			db2, err = store.OpenDSN(ctx, dsn, store.Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		e2, err := New(ctx, Config{DB: db2, Events: events.New(db2, events.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e2.Close(); db2.Close() })

		const copies = 10
		type result struct {
			id      string
			created bool
			err     error
		}
		res := make(chan result, copies)
		start := make(chan struct{})
		req := SendRequest{To: "+15550002", Content: Text("exactly once"), Peer: "p", IdempotencyKey: "order-42"}
		for i := range copies {
			e := e1
			if i%2 == 1 {
				e = e2
			}
			go func() {
				<-start
				m, created, err := e.Send(ctx, "shop", req)
				res <- result{m.ID, created, err}
			}()
		}
		close(start)
		ids := map[string]int{}
		created := 0
		for range copies {
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			ids[r.id]++
			if r.created {
				created++
			}
		}
		var rows, history int
		if err := db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE peer = $1 AND idem_key = $2`, "p", "order-42").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM outbox_history`).Scan(&history); err != nil {
			t.Fatal(err)
		}
		// "queued" is the outbox row's own (no history row is written).
		if rows != 1 || created != 1 || len(ids) != 1 || history != 0 {
			t.Fatalf("%d rows, %d created, ids %v, %d history rows; want one message, created once, answered to all %d", rows, created, ids, history, copies)
		}
	})
}

// TestPruneMessages: the outbox prune deletes the messages that stopped
// moving before the cutoff, with their history, and never a queued one,
// however old.
func TestPruneMessages(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, db := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		old := time.Now().Add(-48 * time.Hour)
		for _, st := range []string{StatusQueued, StatusSent, StatusDelivered, StatusRead, StatusFailed} {
			insertMessage(t, e, "3EB0OLD"+strings.ToUpper(st), st)
			insertMessage(t, e, "3EB0NEW"+strings.ToUpper(st), st)
		}
		if _, err := db.Exec(`UPDATE outbox SET updated_at = $1 WHERE id LIKE $2`, old.UnixNano(), "3EB0OLD%"); err != nil {
			t.Fatal(err)
		}
		n, err := e.pruneMessages(ctx, time.Now().Add(-24*time.Hour))
		if err != nil || n != 4 {
			t.Fatalf("pruned %d, %v; want the 4 old messages that are not queued", n, err)
		}
		var ids []string
		rows, err := db.Query(`SELECT id FROM outbox ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		var history int
		if err := db.QueryRow(`SELECT COUNT(*) FROM outbox_history WHERE message_id LIKE $1`, "3EB0OLD%").Scan(&history); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 6 || ids[5] != "3EB0OLDQUEUED" || history != 1 {
			t.Fatalf("left %v with %d history rows of old messages; want the 5 new and the old queued one", ids, history)
		}
	})
}

// TestIdempotencyComparesTheRequest: a replay with the same key returns
// the original only for the same request (its hash: recipient in any
// spelling, content, quoted id); anything else is a conflict. A row from
// before request_hash is compared field by field.
func TestIdempotencyComparesTheRequest(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, db := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		if err := e.sessions["shop"].setJID(ctx, types.NewJID("15550001", types.DefaultUserServer), ""); err != nil {
			t.Fatal(err)
		}
		first, created, err := e.Send(ctx, "shop", SendRequest{To: "+15550002", Content: Text("hello"), Peer: "p", IdempotencyKey: "k"})
		if err != nil || !created || first.Kind != KindText || first.Text != "hello" {
			t.Fatalf("first: %+v %v %v", first, created, err)
		}
		reply := Text("hello")
		reply.ReplyTo = &MessageRef{ID: first.ID}
		for _, tc := range []struct {
			name string
			req  SendRequest
			want error
		}{
			{"same", SendRequest{To: "+15550002", Content: Text("hello")}, nil},
			{"same, the JID spelling", SendRequest{To: "15550002@s.whatsapp.net", Content: Text("hello")}, nil},
			{"other text", SendRequest{To: "+15550002", Content: Text("hello!")}, ErrIdempotencyConflict},
			{"other recipient", SendRequest{To: "+15550003", Content: Text("hello")}, ErrIdempotencyConflict},
			{"now a reply", SendRequest{To: "+15550002", Content: reply}, ErrIdempotencyConflict},
		} {
			tc.req.Peer, tc.req.IdempotencyKey = "p", "k"
			m, created, err := e.Send(ctx, "shop", tc.req)
			if !errors.Is(err, tc.want) || (tc.want == nil && (created || m.ID != first.ID)) {
				t.Errorf("%s: %s created %v, %v; want %v", tc.name, m.ID, created, err, tc.want)
			}
		}
		// A row of before migration 0007: no hash, the old columns.
		if _, err := db.Exec(`UPDATE outbox SET request_hash = '', text = $1, reply_to = '' WHERE id = $2`, "hello", first.ID); err != nil {
			t.Fatal(err)
		}
		if m, created, err := e.Send(ctx, "shop", SendRequest{To: "+15550002", Content: Text("hello"), Peer: "p", IdempotencyKey: "k"}); err != nil || created || m.ID != first.ID {
			t.Errorf("legacy replay: %s %v %v", m.ID, created, err)
		}
		if _, _, err := e.Send(ctx, "shop", SendRequest{To: "+15550002", Content: reply, Peer: "p", IdempotencyKey: "k"}); !errors.Is(err, ErrIdempotencyConflict) {
			t.Errorf("legacy replay as a reply: %v", err)
		}
		if _, _, err := e.Send(ctx, "shop", SendRequest{To: "+15550002", Content: Content{Kind: "sticker"}, Peer: "p"}); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("unknown kind: %v", err)
		}
	})
}

// TestBrokenContentFailsOnlyItsMessage: a row whose content does not parse
// (written by hand, say) is failed by the sender's build, not a reason to
// stop reading the outbox: it still reads as a message.
func TestBrokenContentFailsOnlyItsMessage(t *testing.T) {
	e, db := newTestEngine(t, "", nil)
	insertMessage(t, e, "3EB0BROKEN", StatusQueued)
	if _, err := db.Exec(`UPDATE outbox SET content = $1 WHERE id = $2`, "{not json", "3EB0BROKEN"); err != nil {
		t.Fatal(err)
	}
	m, err := e.Message(context.Background(), "shop", "3EB0BROKEN")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Content.build(); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("build of broken content: %v", err)
	}
}

// TestHistoryStartsQueued: a message's history starts with "queued" at
// its creation whether that is a row of its own (messages queued before
// 2026-12) or only the outbox row (Send writes no history row for it),
// and is never doubled.
func TestHistoryStartsQueued(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		insertMessage(t, e, "3EB0OLD", StatusQueued)
		insertMessage(t, e, "3EB0NEW", StatusQueued)
		if _, err := e.cfg.DB.Exec(`DELETE FROM outbox_history WHERE message_id = '3EB0NEW'`); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"3EB0OLD", "3EB0NEW"} {
			if _, h := statusOf(t, e, id); !slices.Equal(h, []string{StatusQueued}) {
				t.Errorf("%s queued: history %v", id, h)
			}
			if err := e.finishAttempt(ctx, id, StatusSent, "", time.Now()); err != nil {
				t.Fatal(err)
			}
			m, err := e.Message(ctx, "shop", id)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.History) != 2 || m.History[0].Status != StatusQueued || m.History[1].Status != StatusSent || !m.History[0].At.Equal(m.CreatedAt) {
				t.Errorf("%s sent: history %+v, created %v", id, m.History, m.CreatedAt)
			}
		}
	})
}
