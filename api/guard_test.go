package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"waappliance/peers"
)

// TestGuardTable runs the browser guard's and the strict decoder's
// refusals through the whole handler: status, code, the security headers
// on every answer, and no peer added by a refused POST /v1/peers.
func TestGuardTable(t *testing.T) {
	h, reg := newTestServer(t)
	ctx := context.Background()
	admin, err := reg.Add(ctx, peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1e6, Burst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"wa.example.com", "2001:db8::7"}
	if _, err := reg.UpdateServer(ctx, peers.ServerChange{APIHosts: &hosts}); err != nil {
		t.Fatal(err)
	}
	const create = `{"name":"x","scopes":["admin"]}`
	for _, tc := range []struct {
		name         string
		method, path string
		host         string // "" the tunnel address
		hdr          map[string]string
		body         string
		status       int
		code         string
	}{
		{"tunnel address", "GET", "/v1/whoami", "10.77.0.1", nil, "", 200, ""},
		{"tunnel address :80", "GET", "/v1/whoami", "10.77.0.1:80", nil, "", 200, ""},
		{"tunnel address, trailing dot", "GET", "/v1/whoami", "10.77.0.1.", nil, "", 200, ""},
		{"operator name, upper case, dot, port", "GET", "/v1/whoami", "WA.Example.COM.:80", nil, "", 200, ""},
		{"operator IPv6 name", "GET", "/v1/whoami", "[2001:db8::7]:80", nil, "", 200, ""},
		{"rebinding name", "GET", "/v1/peers", "rebind.attacker.example", nil, "", 421, "misdirected_request"},
		{"rebinding name, write", "POST", "/v1/peers", "rebind.attacker.example", nil, create, 421, "misdirected_request"},
		{"two trailing dots", "GET", "/v1/whoami", "wa.example.com..", nil, "", 421, "misdirected_request"},
		{"suffix of an allowed name", "GET", "/v1/whoami", "evil-wa.example.com", nil, "", 421, "misdirected_request"},
		{"localhost", "GET", "/v1/whoami", "localhost", nil, "", 421, "misdirected_request"},
		{"[::1]", "GET", "/v1/whoami", "[::1]:80", nil, "", 421, "misdirected_request"},
		{"bad port", "GET", "/v1/whoami", "10.77.0.1:x", nil, "", 421, "misdirected_request"},
		{"empty Host", "GET", "/v1/whoami", "-", nil, "", 421, "misdirected_request"},
		{"404 gets the headers", "GET", "/v1/nothing", "", nil, "", 404, "not_found"},

		{"cross-site fetch", "POST", "/v1/peers", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, create, 403, "cross_origin"},
		{"same-site fetch", "POST", "/v1/peers", "", map[string]string{"Sec-Fetch-Site": "same-site"}, create, 403, "cross_origin"},
		{"foreign Origin", "POST", "/v1/peers", "", map[string]string{"Origin": "http://evil.example"}, create, 403, "cross_origin"},
		{"Origin null", "DELETE", "/v1/peers/admin", "", map[string]string{"Origin": "null"}, "", 403, "cross_origin"},
		{"own Origin on another port", "POST", "/v1/peers", "", map[string]string{"Origin": "http://10.77.0.1:8080"}, create, 403, "cross_origin"},
		{"cross-site GET is a read", "GET", "/v1/whoami", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 200, ""},
		{"own Origin", "PATCH", "/v1/peers/admin", "", map[string]string{"Origin": "http://10.77.0.1"}, `{}`, 200, ""},
		{"own Origin, Host with :80", "PATCH", "/v1/peers/admin", "10.77.0.1:80", map[string]string{"Origin": "http://10.77.0.1"}, `{}`, 200, ""},
		{"operator name Origin", "PATCH", "/v1/peers/admin", "wa.example.com", map[string]string{"Origin": "http://wa.example.com", "Sec-Fetch-Site": "same-origin"}, `{}`, 200, ""},

		{"text/plain body", "POST", "/v1/peers", "", map[string]string{"Content-Type": "text/plain"}, create, 415, "unsupported_media_type"},
		{"form body", "POST", "/v1/peers", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, create, 415, "unsupported_media_type"},
		{"multipart body", "POST", "/v1/peers", "", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, create, 415, "unsupported_media_type"},
		{"no Content-Type", "POST", "/v1/peers", "", map[string]string{"Content-Type": ""}, create, 415, "unsupported_media_type"},
		{"latin-1 JSON", "POST", "/v1/peers", "", map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, create, 415, "unsupported_media_type"},
		{"text/plain to a bodyless route", "POST", "/v1/peers/admin/rotate", "", map[string]string{"Content-Type": "text/plain"}, "x", 415, "unsupported_media_type"},
		{"JSON with charset", "PATCH", "/v1/peers/admin", "", map[string]string{"Content-Type": "Application/JSON; charset=UTF-8"}, `{}`, 200, ""},
		{"bodyless POST without Content-Type", "POST", "/v1/peers/ghost/rotate", "", map[string]string{"Content-Type": ""}, "", 404, "not_found"},

		{"duplicate key", "POST", "/v1/peers", "", nil, `{"name":"x","name":"y"}`, 400, "bad_json"},
		{"duplicate key, other case", "POST", "/v1/peers", "", nil, `{"name":"x","NAME":"y"}`, 400, "bad_json"},
		{"duplicate key, nested", "PATCH", "/v1/peers/admin", "", nil, `{"expires_at":{"a":[{"b":1,"b":2}]}}`, 400, "bad_json"},
		{"invalid UTF-8", "POST", "/v1/peers", "", nil, "{\"name\":\"x\xff\"}", 400, "bad_json"},
		{"lone surrogate", "POST", "/v1/peers", "", nil, `{"name":"x\ud800"}`, 400, "bad_json"},
		{"lone low surrogate", "POST", "/v1/peers", "", nil, `{"name":"x\udc00y"}`, 400, "bad_json"},
		{"NUL", "POST", "/v1/peers", "", nil, `{"name":"x\u0000"}`, 400, "bad_json"},
		{"escaped backslash then u0000 text", "POST", "/v1/peers", "", nil, `{"name":"x\\u0000"}`, 400, "invalid_argument"},
		{"control character in a path id", "DELETE", "/v1/peers/a%1bb", "", nil, "", 400, "invalid_argument"},
		{"paired surrogates pass", "POST", "/v1/peers", "", nil, `{"name":"\ud83d\ude00"}`, 400, "invalid_argument"},

		{"bad API host", "PATCH", "/v1/settings", "", nil, `{"api_hosts":["*.example.com"]}`, 400, "invalid_argument"},
		{"API host with port", "PATCH", "/v1/settings", "", nil, `{"api_hosts":["wa.example.com:80"]}`, 400, "invalid_argument"},
	} {
		req := tunnelRequest(tc.method, tc.path, tc.body)
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		switch tc.host {
		case "":
		case "-":
			req.Host = ""
		default:
			req.Host = tc.host
		}
		for k, v := range tc.hdr {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, rec.Code, tc.status, rec.Body)
			continue
		}
		if tc.code != "" {
			var e struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("%s: body %s, want code %s", tc.name, rec.Body, tc.code)
			}
		}
		for _, kv := range securityHeaders {
			if got := rec.Header().Values(kv.k); len(got) != 1 || got[0] != kv.v[0] {
				t.Errorf("%s: %s = %q, want %q", tc.name, kv.k, got, kv.v[0])
			}
		}
		for k := range rec.Header() {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s: sends %s", tc.name, k)
			}
		}
		if _, err := reg.Get("x"); err == nil {
			t.Fatalf("%s: a refused request created peer x", tc.name)
		}
	}
	if p, _ := reg.Get("admin"); p.PublicKey != admin.Peer.PublicKey {
		t.Error("a refused rotate changed the admin's key")
	}
	if got := reg.Server().APIHosts; strings.Join(got, ",") != "wa.example.com,2001:db8::7" {
		t.Errorf("refused settings changes changed the API hosts: %q", got)
	}
}

// TestSettingsRoute: PATCH /v1/settings applies at once; the response and
// GET show the normalized names, never the private key.
func TestSettingsRoute(t *testing.T) {
	h, reg := newTestServer(t)
	admin, err := reg.Add(context.Background(), peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, body, host string) *httptest.ResponseRecorder {
		req := tunnelRequest(method, "/v1/settings", body)
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		if host != "" {
			req.Host = host
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve("GET", "", "wa.example.com"); rec.Code != 421 {
		t.Fatalf("before: %d", rec.Code)
	}
	rec := serve("PATCH", `{"api_hosts":["WA.example.com."]}`, "")
	var got settingsJSON
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || strings.Join(got.APIHosts, ",") != "wa.example.com" || got.TunnelAddr != "10.77.0.1" {
		t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
	}
	if rec := serve("GET", "", "wa.example.com"); rec.Code != 200 || strings.Contains(rec.Body.String(), reg.Server().PrivateKey.String()) {
		t.Fatalf("GET under the new name: %d %s", rec.Code, rec.Body)
	}
	if rec := serve("PATCH", `{"api_hosts":[]}`, ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"api_hosts":[]`) {
		t.Fatalf("clear: %d %s", rec.Code, rec.Body)
	}
	if rec := serve("GET", "", "wa.example.com"); rec.Code != 421 {
		t.Fatalf("after clearing: %d", rec.Code)
	}
}

func TestCheckEscapes(t *testing.T) {
	for in, ok := range map[string]bool{
		`"a"`: true, `"\n\t\\\"\/"`: true, `"\u00e4\ud83d\ude00"`: true, `"\\u0000"`: true, `"\\\\u0000"`: true,
		`"\u0000"`: false, `"\\\u0000"`: false, `"\ud800"`: false, `"\ud800\u0041"`: false, `"\udfff"`: false, `"\ud800\\"`: false,
	} {
		if err := checkEscapes([]byte(in)); (err == nil) != ok {
			t.Errorf("checkEscapes(%s) = %v, want ok %v", in, err, ok)
		}
	}
}

// FuzzStrictJSON: the strict checks never panic, and whatever they accept
// encoding/json decodes to the same value without U+FFFD appearing.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":{"b":[1,{"c":"\ud83d\ude00"}]}}`, `{"a":1,"a":2}`, `"\ud800"`, "\"\xff\"", `[[[[]]]]`, `{"a":"\\u0000"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		if strictJSON([]byte(s)) == nil && !strings.Contains(s, "\uFFFD") && !strings.Contains(strings.ToLower(s), `\ufffd`) {
			if b, _ := json.Marshal(v); strings.Contains(string(b), "\uFFFD") {
				t.Fatalf("accepted %q, which decodes with U+FFFD", s)
			}
		}
	})
}

// TestGuardRefusalsAudited: a known peer's refused write (421, 403
// cross_origin, 415) is audited like any other answer; a refused read is
// not.
func TestGuardRefusalsAudited(t *testing.T) {
	_, reg := newTestServer(t)
	admin, err := reg.Add(context.Background(), peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAudit{}
	h := New(Options{Registry: reg, Audit: fa})
	for _, tc := range []struct {
		method, host, origin, ctype string
		want                        string
	}{
		{"POST", "rebind.attacker.example", "", "application/json", "admin POST /v1/peers 421"},
		{"POST", "", "http://evil.example", "application/json", "admin POST /v1/peers 403"},
		{"POST", "", "", "text/plain", "admin POST /v1/peers 415"},
		{"GET", "rebind.attacker.example", "", "", ""},
	} {
		req := tunnelRequest(tc.method, "/v1/peers", `{"name":"x"}`)
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		req.Header.Set("Content-Type", tc.ctype)
		fa.entries = nil
		h.ServeHTTP(httptest.NewRecorder(), req)
		var got string
		if len(fa.entries) == 1 {
			e := fa.entries[0]
			got = e.Peer + " " + e.Method + " " + e.Route + " " + itoa(e.Status)
		}
		if got != tc.want || len(fa.entries) > 1 {
			t.Errorf("%s Host %q Origin %q: audited %q (%d rows), want %q", tc.method, tc.host, tc.origin, got, len(fa.entries), tc.want)
		}
	}
	// A control character a refused request named is stored quoted, never
	// as a terminal escape.
	for _, path := range []string{"/v1/peers/a%1b%5b2Jb", "/v1/nothing/a%1b%5b2Jb"} {
		req := tunnelRequest("DELETE", path, "")
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		fa.entries = nil
		h.ServeHTTP(httptest.NewRecorder(), req)
		if len(fa.entries) != 1 || strings.ContainsRune(fa.entries[0].Target+fa.entries[0].Route, 0x1b) || !strings.Contains(fa.entries[0].Target+fa.entries[0].Route, `\x1b[2J`) {
			t.Errorf("DELETE %s audited as %+v", path, fa.entries)
		}
	}
}
