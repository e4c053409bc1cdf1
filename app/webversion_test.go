package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	waStore "go.mau.fi/whatsmeow/store"

	"waappliance/app"
	"waappliance/peers"
)

// TestWebVersionInHealthAndDoctor: an admin's /v1/health names the web
// client version in use and where it came from, other peers' does not, and
// doctor shows what the last start used. WhatsApp's answer is injected
// (the check itself is never run in tests: it would reach the internet).
func TestWebVersionInHealthAndDoctor(t *testing.T) {
	builtIn := waStore.GetWAVersion()
	defer waStore.SetWAVersion(builtIn)
	newer := waStore.WAVersionContainer{builtIn[0], builtIn[1], builtIn[2] + 7}
	ctx := context.Background()
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(t, dir, func(o *app.Options) {
		o.Sandbox = app.SandboxInProcess
		o.LatestWebVersion = func(context.Context) (waStore.WAVersionContainer, error) { return newer, nil }
	})
	boss, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "reader", Scopes: []peers.Scope{peers.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	type health struct {
		WebVersion *struct {
			InUse   string `json:"in_use"`
			BuiltIn string `json:"built_in"`
			Source  string `json:"source"`
		} `json:"whatsapp_web_version"`
	}
	var h health
	eventually(t, "the version settled", func() bool {
		h = health{}
		r := do(t, ta.client(t, boss), "GET", "/v1/health", nil)
		if r.Status != 200 || r.JSON(&h) != nil {
			t.Fatalf("health: %d %s", r.Status, r.Body)
		}
		return h.WebVersion != nil && h.WebVersion.Source == "web.whatsapp.com"
	})
	if h.WebVersion.InUse != newer.String() || h.WebVersion.BuiltIn != builtIn.String() {
		t.Fatalf("admin health: %+v", *h.WebVersion)
	}
	h = health{}
	if r := do(t, ta.client(t, reader), "GET", "/v1/health", nil); r.Status != 200 || r.JSON(&h) != nil || h.WebVersion != nil {
		t.Fatalf("a reader's health shows the web version: %d %s", r.Status, r.Body)
	}
	ta.Close()
	var o, e bytes.Buffer
	app.Main(ctx, []string{"doctor", "--state", dir}, &o, &e)
	if !strings.Contains(o.String(), "web client") || !strings.Contains(o.String(), newer.String()+" (web.whatsapp.com; built-in "+builtIn.String()) {
		t.Fatalf("doctor does not show the version in use:\n%s", o.String())
	}
}
