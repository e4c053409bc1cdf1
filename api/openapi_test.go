package api

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"waappliance/events"
	"waappliance/peers"
	"waappliance/store"
	"waappliance/whatsapp"
)

func newTestServer(t testing.TB) (http.Handler, *peers.Registry) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := peers.InitServer(ctx, db, peers.Server{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := peers.NewRegistry(ctx, db, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Registry: reg, Sandbox: fakeSandbox{}}), reg
}

// tunnelRequest is a request as a client inside the tunnel sends it: Host
// the tunnel address (the default subnet's), a body declared as JSON.
func tunnelRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "10.77.0.1"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// fakeSandbox only lets the router register the sandbox routes.
type fakeSandbox struct{ Sandbox }

// TestOpenAPICoversRoutes fails when a route is registered but not
// documented, or documented but not served.
func TestOpenAPICoversRoutes(t *testing.T) {
	h, _ := newTestServer(t)
	served := registeredRoutes(h)
	if len(served) == 0 {
		t.Fatal("could not list the router's routes")
	}
	var documented []string
	paths := buildOpenAPI("test")["paths"].(map[string]any)
	for k, item := range paths {
		for m := range item.(map[string]any) {
			documented = append(documented, strings.ToUpper(m)+" "+k)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but missing from the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("route %s is documented but not served", d)
		}
	}
	if doc := buildOpenAPI("x"); doc["openapi"] != "3.1.0" {
		t.Errorf("openapi version %v", doc["openapi"])
	}
}

// TestUnknownAddressRefused: a request whose source is not an enabled
// peer's tunnel address never reaches a handler.
func TestUnknownAddressRefused(t *testing.T) {
	h, reg := newTestServer(t)
	c, err := reg.Add(context.Background(), peers.AddOptions{Name: "a", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(remote string) int {
		req := tunnelRequest("GET", "/v1/whoami", "")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		remote string
		status int
	}{
		{c.Peer.Addr.String() + ":40000", 200},
		{"10.77.0.99:40000", 403},
		{"127.0.0.1:40000", 403},
		{"garbage", 403},
	} {
		if got := serve(tc.remote); got != tc.status {
			t.Errorf("from %s: %d, want %d", tc.remote, got, tc.status)
		}
	}
	if _, err := reg.SetDisabled(context.Background(), "a", true); err != nil {
		t.Fatal(err)
	}
	if got := serve(c.Peer.Addr.String() + ":1"); got != 403 {
		t.Errorf("disabled peer: %d, want 403", got)
	}
}

// FuzzCreatePeer throws arbitrary bodies at POST /v1/peers: never a 5xx,
// never a panic, always the JSON error shape on failure.
func FuzzCreatePeer(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"name":"b","scopes":["send","read"],"rate":5,"burst":9}`,
		`{"name":"c","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"name":"d","expires_in":"1h"}`, `{`, `[]`, `{"name":null}`, `{"name":"e","sessions":["shop"]}`,
		`{"name":"f","expires_at":"2030-01-01T00:00:00Z"}`, `{"name":"g","rate":1e300,"burst":-5}`} {
		f.Add(s)
	}
	h, reg := newTestServer(f)
	admin, err := reg.Add(context.Background(), peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1e6, Burst: 1e6})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := tunnelRequest("POST", "/v1/peers", body)
		req.RemoteAddr = admin.Peer.Addr.String() + ":1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code != 201 && !strings.Contains(rec.Body.String(), `"request_id"`) {
			t.Fatalf("body %q: error without the error shape: %s", body, rec.Body)
		}
		for _, p := range reg.List() {
			if p.Name != "admin" {
				reg.Remove(context.Background(), p.Name)
			}
		}
	})
}

// eventTypeConsts parses the events package for its Type* constants, so a
// new event type fails TestOpenAPIEventTypes until it is documented, even
// if nobody adds it to events.Types.
func eventTypeConsts(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "../events", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !strings.HasPrefix(n.Name, "Type") || i >= len(vs.Values) {
							continue
						}
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("found no event type constants in ../events")
	}
	return out
}

// TestOpenAPIEventTypes fails when an event type the engine can emit has no
// schema tied to it by the discriminator, when a $ref dangles, or when the
// stream is not documented as text/event-stream.
func TestOpenAPIEventTypes(t *testing.T) {
	doc := buildOpenAPI("test")
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths      map[string]map[string]map[string]any
		Components struct {
			Schemas map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var event struct {
		OneOf []struct {
			Ref string `json:"$ref"`
		}
		Discriminator struct {
			PropertyName string `json:"propertyName"`
			Mapping      map[string]string
		}
	}
	if err := json.Unmarshal(d.Components.Schemas["Event"], &event); err != nil {
		t.Fatal(err)
	}
	if event.Discriminator.PropertyName != "type" {
		t.Fatalf("Event has no discriminator on type: %s", d.Components.Schemas["Event"])
	}
	for name, typ := range eventTypeConsts(t) {
		if !slices.Contains(events.Types, typ) {
			t.Errorf("events.%s (%q) is missing from events.Types", name, typ)
		}
		ref, ok := event.Discriminator.Mapping[typ]
		if !ok {
			t.Errorf("event type %q has no schema in the OpenAPI document", typ)
			continue
		}
		schema := d.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		var es struct {
			Properties struct {
				Type struct{ Const string }
				Data struct {
					Ref string `json:"$ref"`
				}
			}
		}
		if json.Unmarshal(schema, &es) != nil || es.Properties.Type.Const != typ || es.Properties.Data.Ref == "" {
			t.Errorf("event type %q: schema %s does not tie type to its data: %s", typ, ref, schema)
		}
	}
	// Every $ref resolves.
	for _, m := range regexp.MustCompile(`"\$ref":"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
		if _, ok := d.Components.Schemas[m[1]]; !ok {
			t.Errorf("dangling $ref to %s", m[1])
		}
	}
	content, _ := d.Paths["/v1/events/stream"]["get"]["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
	if _, ok := content["text/event-stream"]; !ok || len(content) != 1 {
		t.Errorf("the stream's response is not documented as text/event-stream: %v", content)
	}
	// The session states, in both places they appear, are the engine's.
	for _, st := range []string{whatsapp.StateNew, whatsapp.StatePairing, whatsapp.StateConnecting, whatsapp.StateConnected,
		whatsapp.StateDisconnected, whatsapp.StateLoggedOut, whatsapp.StateReplaced, whatsapp.StateTemporarilyBanned} {
		for _, schema := range []string{"Session", "SessionState"} {
			if !strings.Contains(string(d.Components.Schemas[schema]), `"`+st+`"`) {
				t.Errorf("schema %s lacks the session state %q", schema, st)
			}
		}
	}
}
