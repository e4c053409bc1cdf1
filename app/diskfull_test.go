package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/peers"
)

// countingHandler counts log records by message.
type countingHandler struct {
	mu  sync.Mutex
	n   map[string]int
	all int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	h.all++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// fillDatabase makes db full the way a full disk does (SQLITE_FULL on any
// write that needs a page): every pooled connection gets max_page_count at
// the current size, then the audit table and its indexes are filled with
// rows like real ones until nothing fits.
func fillDatabase(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	const conns = 8
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	var cs []*sql.Conn
	for range conns {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	var pages int
	if err := cs[0].QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{16, 1} {
		for i := 0; ; i++ {
			if i > 200000 {
				t.Fatal("the database never filled")
			}
			_, err := cs[0].ExecContext(ctx, `INSERT INTO audit(at, peer, method, route, target, status, request_id) VALUES (?,?,?,?,?,?,?)`,
				time.Now().UnixNano(), "~filler", "POST", "/v1/peers", "", 201, strings.Repeat("f", size))
			if err != nil {
				if !strings.Contains(err.Error(), "full") {
					t.Fatalf("filling: %v", err)
				}
				break
			}
		}
	}
	for _, c := range cs {
		c.Close()
	}
}

// TestDiskFullRefusesMutations: with the database full, a mutating request
// whose audit row cannot be committed is answered 503 storage_unavailable
// and nothing is done (no peer created); reads still work; and a flood of
// such failures logs a bounded number of lines.
func TestDiskFullRefusesMutations(t *testing.T) {
	skipOnPostgres(t, "the full disk is SQLite's max_page_count")
	logs := &countingHandler{n: map[string]int{}}
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) {
		o.Logger = slog.New(logs)
		o.NoWhatsApp = true
		o.AuditInterval = 50 * time.Millisecond
	})
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	admin := ta.client(t, c)
	if r := do(t, admin, "POST", "/v1/peers", map[string]any{"name": "before", "scopes": []string{"read"}}); r.Status != 201 {
		t.Fatalf("before the disk filled: %d %s", r.Status, r.Body)
	}
	fillDatabase(t, ta.DB().DB)

	const flood = 300
	for i := range flood {
		r := do(t, admin, "POST", "/v1/peers", map[string]any{"name": fmt.Sprint("p", i), "scopes": []string{"admin"}})
		wantError(t, r, 503, "storage_unavailable")
	}
	if r := do(t, admin, "GET", "/v1/peers", nil); r.Status != 200 {
		t.Fatalf("reads on a full disk: %d", r.Status)
	} else {
		var ps []struct{ Name string }
		r.JSON(&ps)
		for _, p := range ps {
			if strings.HasPrefix(p.Name, "p") {
				t.Errorf("peer %q was created although its audit row failed", p.Name)
			}
		}
	}
	for i := range flood {
		if _, err := ta.Peers().Get(fmt.Sprint("p", i)); err == nil {
			t.Fatalf("peer p%d exists", i)
		}
	}
	time.Sleep(200 * time.Millisecond) // a few flush intervals fail too
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.n["request failed"] > 20 || logs.all > 60 {
		t.Errorf("%d log lines for %d failed requests (%v); want them rate-limited", logs.all, flood, logs.n)
	}
	if logs.n["request failed"] == 0 {
		t.Errorf("the failure was not logged at all: %v", logs.n)
	}
}
