package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"waappliance/audit"
	"waappliance/peers"
	"waappliance/store"
)

// wire is a ResponseWriter that remembers whether anything was sent yet.
type wire struct {
	*httptest.ResponseRecorder
	sent bool
}

func (w *wire) WriteHeader(code int) { w.sent = true; w.ResponseRecorder.WriteHeader(code) }

func (w *wire) Write(b []byte) (int, error) { w.sent = true; return w.ResponseRecorder.Write(b) }

// fakeAudit records the final entries (Finish and Refused), whether a row
// was begun, whether the response was already on the wire when a row was
// begun (early: it must not be) and when one was finished (after: it must
// be, the answer is not held back for the audit).
type fakeAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
	begun   int
	current *wire
	early   []string
	after   int   // Finish calls made once the answer was written
	failing error // Begin fails with it
}

func (f *fakeAudit) Begin(ctx context.Context, e audit.Entry) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing != nil {
		return 0, f.failing
	}
	f.begun++
	if f.current != nil && f.current.sent {
		f.early = append(f.early, "begin "+e.Method+" "+e.Route)
	}
	return int64(f.begun), nil
}

// BeginInWrite: these tests have no store, so no write ever commits the
// row (the handler's writes are the app tests').
func (f *fakeAudit) BeginInWrite(ctx context.Context, e audit.Entry) (context.Context, func() (int64, bool)) {
	return ctx, func() (int64, bool) { return 0, false }
}

func (f *fakeAudit) Finish(ctx context.Context, id int64, e audit.Entry) error {
	f.mu.Lock()
	if f.current != nil && f.current.sent {
		f.after++
	}
	f.mu.Unlock()
	f.record(e)
	return nil
}

func (f *fakeAudit) Refused(e audit.Entry) { f.record(e) }

func (f *fakeAudit) record(e audit.Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
}

func (f *fakeAudit) List(ctx context.Context, peer string, after int64, limit int) ([]audit.Entry, error) {
	return nil, nil
}

// TestAuditEveryMutatingAnswer: every mutating answer of a known peer is
// audited: a request that reaches its handler has its row begun before
// the handler (and so before the answer), and its final status recorded
// after the answer was written; the others are counted as refusals.
func TestAuditEveryMutatingAnswer(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, _ := peers.InitServer(ctx, db, peers.Server{})
	reg, _ := peers.NewRegistry(ctx, db, srv, nil)
	add := func(name string, rate float64, burst int, scopes ...peers.Scope) peers.Peer {
		c, err := reg.Add(ctx, peers.AddOptions{Name: name, Scopes: scopes, Rate: rate, Burst: burst})
		if err != nil {
			t.Fatal(err)
		}
		return c.Peer
	}
	admin := add("admin", 1000, 1000, peers.ScopeAdmin)
	reader := add("reader", 1000, 1000, peers.ScopeRead)
	slow := add("slow", peers.MinRate, 1, peers.ScopeAdmin)
	gone := add("gone", 1000, 1000, peers.ScopeAdmin)
	if _, err := reg.SetDisabled(ctx, "gone", true); err != nil {
		t.Fatal(err)
	}
	fa := &fakeAudit{}
	h := New(Options{Registry: reg, Audit: fa})

	big := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		from         peers.Peer
		method, path string
		body         string
		status       int
		audited      string // "" when not audited
		begun        bool   // a row was committed before the handler ran
	}{
		{admin, "POST", "/v1/peers", `{"name":"x"}`, 201, "admin POST /v1/peers  201", true},
		{admin, "PATCH", "/v1/peers/x", `{"rate":3}`, 200, "admin PATCH /v1/peers/{name} x 200", true},
		{admin, "DELETE", "/v1/peers/ghost", ``, 404, "admin DELETE /v1/peers/{name} ghost 404", true},
		{admin, "POST", "/v1/nothing", `{}`, 404, "admin POST /v1/nothing  404", false},
		{admin, "PUT", "/v1/whoami", `{}`, 405, "admin PUT /v1/whoami  405", false},
		{admin, "POST", "/v1/peers", big, 413, "admin POST /v1/peers  413", false}, // refused on its Content-Length, before the handler
		{reader, "POST", "/v1/peers", `{"name":"y"}`, 403, "reader POST /v1/peers  403", false},
		{slow, "DELETE", "/v1/peers/ghost", ``, 404, "slow DELETE /v1/peers/{name} ghost 404", true},
		{slow, "DELETE", "/v1/peers/ghost", ``, 429, "slow DELETE /v1/peers/{name} ghost 429", false},
		{gone, "POST", "/v1/peers", `{"name":"z"}`, 403, "gone POST /v1/peers  403", false},
		{admin, "GET", "/v1/peers", ``, 200, "", false},
		{admin, "GET", "/v1/nothing", ``, 404, "", false},
	}
	for _, tc := range cases {
		req := tunnelRequest(tc.method, tc.path, tc.body)
		req.RemoteAddr = tc.from.Addr.String() + ":40000"
		w := &wire{ResponseRecorder: httptest.NewRecorder()}
		fa.mu.Lock()
		fa.current, fa.entries, fa.begun, fa.after = w, nil, 0, 0
		fa.mu.Unlock()
		h.ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("%s %s by %s: %d, want %d: %s", tc.method, tc.path, tc.from.Name, w.Code, tc.status, w.Body)
		}
		var got string
		if len(fa.entries) > 0 {
			e := fa.entries[0]
			got = e.Peer + " " + e.Method + " " + e.Route + " " + e.Target + " " + itoa(e.Status)
		}
		if len(fa.entries) > 1 || got != tc.audited {
			t.Errorf("%s %s by %s: audited %q (%d entries), want %q", tc.method, tc.path, tc.from.Name, got, len(fa.entries), tc.audited)
		}
		if (fa.begun == 1) != tc.begun || fa.begun > 1 {
			t.Errorf("%s %s by %s: %d rows begun, want begun=%v", tc.method, tc.path, tc.from.Name, fa.begun, tc.begun)
		}
		if tc.begun && fa.after != 1 {
			t.Errorf("%s %s by %s: %d finishes after the answer was written, want 1", tc.method, tc.path, tc.from.Name, fa.after)
		}
		if tc.audited != "" && (w.Body.Len() == 0) != (tc.status == http.StatusNoContent) {
			t.Errorf("%s %s: the buffered response body was lost", tc.method, tc.path)
		}
	}
	if len(fa.early) > 0 {
		t.Errorf("response sent before its audit row was begun: %v", fa.early)
	}
	// A source that is no peer at all is refused and not audited.
	req := tunnelRequest("POST", "/v1/peers", `{}`)
	req.RemoteAddr = "10.77.0.250:1"
	fa.entries = nil
	h.ServeHTTP(httptest.NewRecorder(), req)
	if len(fa.entries) != 0 {
		t.Errorf("an unknown source was audited: %+v", fa.entries)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestAuditFailureRefusesTheRequest: when the audit row cannot be
// committed, a mutating request is answered 503 storage_unavailable and its
// handler never runs; safe requests are still served.
func TestAuditFailureRefusesTheRequest(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, _ := peers.InitServer(ctx, db, peers.Server{})
	reg, _ := peers.NewRegistry(ctx, db, srv, nil)
	c, err := reg.Add(ctx, peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAudit{failing: errors.New("disk full")}
	h := New(Options{Registry: reg, Audit: fa})
	req := tunnelRequest("POST", "/v1/peers", `{"name":"x"}`)
	req.RemoteAddr = c.Peer.Addr.String() + ":40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"storage_unavailable"`) {
		t.Fatalf("POST /v1/peers with a failing audit: %d %s", w.Code, w.Body)
	}
	if _, err := reg.Get("x"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("the peer was created anyway: %v", err)
	}
	if len(fa.entries) != 1 || fa.entries[0].Status != http.StatusServiceUnavailable {
		t.Errorf("the refusal was not counted: %+v", fa.entries)
	}
	req = tunnelRequest("GET", "/v1/peers", "")
	req.RemoteAddr = c.Peer.Addr.String() + ":40000"
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("GET with a failing audit: %d", w.Code)
	}
}
