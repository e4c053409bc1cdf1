package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"waappliance/peers"
)

// TestSettingsPatchAll: PATCH /v1/settings changes the endpoint, the listen
// port and the default rate and burst with the command line's rules: the
// registry has them at once (the next peer gets the new default rate), a
// value the CLI refuses is a 400 that changes nothing, and the settings
// fixed at init are unknown fields.
func TestSettingsPatchAll(t *testing.T) {
	h, reg := newTestServer(t)
	admin, err := reg.Add(context.Background(), peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(body string) *httptest.ResponseRecorder {
		req := tunnelRequest("PATCH", "/v1/settings", body)
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := patch(`{"endpoint":"vpn.example.com:4000","listen_port":4000,"default_rate":5,"default_burst":9}`)
	var got settingsJSON
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
	}
	// The listen port is stored for the next start; the running one stays
	// (configs with a placeholder endpoint name the port served now).
	if got.Endpoint != "vpn.example.com:4000" || got.ListenPort != peers.DefaultListenPort || got.DefaultRate != 5 || got.DefaultBurst != 9 {
		t.Fatalf("PATCH answered %+v", got)
	}
	if s := reg.Server(); s.Endpoint != "vpn.example.com:4000" || s.DefaultRate != 5 || s.DefaultBurst != 9 {
		t.Fatalf("registry after PATCH: %+v", s)
	}
	c, err := reg.Add(context.Background(), peers.AddOptions{Name: "next"})
	if err != nil || c.Peer.Rate != 5 || c.Peer.Burst != 9 {
		t.Fatalf("peer added after PATCH: %+v %v", c.Peer, err)
	}
	for _, tc := range []struct{ body, code, msg string }{
		{`{"endpoint":"no port"}`, "invalid_argument", "HOST:PORT"},
		{`{"endpoint":"vpn.example.com:0"}`, "invalid_argument", "port"},
		{`{"listen_port":0}`, "invalid_argument", "listen_port 0: want a UDP port from 1 to 65535"},
		{`{"listen_port":70000}`, "invalid_argument", "listen_port"},
		{`{"default_rate":0}`, "invalid_argument", "invalid rate limit"},
		{`{"default_rate":2e6}`, "invalid_argument", "invalid rate limit"},
		{`{"default_burst":0}`, "invalid_argument", "invalid rate limit"},
		{`{"endpoint":"a.example:1","default_burst":-1}`, "invalid_argument", "invalid rate limit"},
		{`{"mtu":1400}`, "unknown_field", "mtu"},
		{`{"subnet":"10.9.0.0/24"}`, "unknown_field", "subnet"},
	} {
		rec := patch(tc.body)
		e := ReadError(rec.Code, rec.Body.Bytes())
		if rec.Code != 400 || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("PATCH %s: %d %s; want 400 %s containing %q", tc.body, rec.Code, rec.Body, tc.code, tc.msg)
		}
	}
	if s := reg.Server(); s.Endpoint != "vpn.example.com:4000" || s.DefaultRate != 5 || s.DefaultBurst != 9 {
		t.Fatalf("a refused PATCH changed the settings: %+v", s)
	}
	if rec := patch(`{"endpoint":""}`); rec.Code != 200 || reg.Server().Endpoint != "" {
		t.Fatalf("clearing the endpoint: %d %s", rec.Code, rec.Body)
	}
}

// TestReadErrorRoundTrip: what writeError writes, ReadError reads back:
// the message, the code, the request id, and the sentinel for errors.Is
// (the longest sentinel text that starts the message, among those of the
// answer's code).
func TestReadErrorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err      error
		sentinel error
	}{
		{&peers.PeerError{Op: "peers.Get", Name: "x", Err: peers.ErrNotFound}, peers.ErrNotFound},
		{&peers.PeerError{Op: "peers.Add", Name: "x", Err: fmt.Errorf("%w by another peer", peers.ErrKeyInUse)}, peers.ErrKeyInUse},
		{fmt.Errorf("peers.Add: %w (got rate 0)", peers.ErrBadLimit), peers.ErrBadLimit},
		{peers.ErrSubnetFull, peers.ErrSubnetFull},
		{badArg("give expires_in or expires_at, not both"), nil},
		{errors.New("disk on fire"), nil},
	} {
		rec := httptest.NewRecorder()
		req := tunnelRequest("GET", "/", "")
		req = req.WithContext(context.WithValue(req.Context(), requestIDKey, "0123abcd"))
		writeError(rec, req, slog.New(slog.DiscardHandler), tc.err)
		want := toAPIError(tc.err)
		got := ReadError(rec.Code, rec.Body.Bytes())
		if got.Status != want.Status || got.Code != want.Code || got.Message != want.Message {
			t.Errorf("%v: read %+v, wrote %+v", tc.err, got, want)
		}
		if got.Err != tc.sentinel || (tc.sentinel != nil && !errors.Is(got, tc.sentinel)) {
			t.Errorf("%v: sentinel %v, want %v", tc.err, got.Err, tc.sentinel)
		}
		if got.RequestID != "0123abcd" || (got.Status >= 500 && got.Error() != got.Message+" (request_id 0123abcd)") {
			t.Errorf("server fault reads %q", got.Error())
		}
	}
	if e := ReadError(502, []byte("<html>bad gateway</html>\n")); e.Code != "unexpected_answer" || e.Error() != "unexpected answer 502: <html>bad gateway</html>" {
		t.Errorf("non-JSON answer: %+v %q", e, e.Error())
	}
}
