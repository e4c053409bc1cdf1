package app

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
)

// TestControlAppliesBeforeAnswer: on the control socket a successful
// mutating request waits for applied (the device taking the change) before
// its status goes out; safe requests and refusals do not call it.
func TestControlAppliesBeforeAnswer(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var events []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, s)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note("handler " + r.Method + " " + r.URL.Path)
		switch r.URL.Path {
		case "/v1/peers/ghost":
			http.Error(w, `{"error":{"code":"not_found","message":"peer not found","request_id":"1"}}`, 404)
		case "/v1/peers":
			w.WriteHeader(201)
		default:
			w.Write([]byte("{}"))
		}
	})
	srv, err := listenControl(dir, h, func() { note("applied") }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cc := serving(dir)
	if cc == nil {
		t.Fatal("the control socket does not answer")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		method, path string
		want         []string
	}{
		{"POST", "/v1/peers", []string{"handler POST /v1/peers", "applied"}},
		{"DELETE", "/v1/peers/bob", []string{"handler DELETE /v1/peers/bob", "applied"}},
		{"GET", "/v1/peers", []string{"handler GET /v1/peers"}},
		{"DELETE", "/v1/peers/ghost", []string{"handler DELETE /v1/peers/ghost"}},
	} {
		mu.Lock()
		events = nil
		mu.Unlock()
		err := cc.call(ctx, tc.method, tc.path, nil, nil)
		note("answered")
		mu.Lock()
		got := append([]string(nil), events...)
		mu.Unlock()
		want := append(tc.want, "answered")
		if len(got) != len(want) {
			t.Errorf("%s %s: %q, want %q (err %v)", tc.method, tc.path, got, want, err)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s %s: %q, want %q", tc.method, tc.path, got, want)
				break
			}
		}
	}
}
