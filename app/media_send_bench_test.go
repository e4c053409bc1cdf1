package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/wgclient"
	"waappliance/peers"
)

// BenchmarkMediaSend measures a media send end to end through the tunnel
// against the in-process sandbox (wasim as WhatsApp's media server):
//
//	go test ./app -run XXX -bench MediaSend -benchtime 1x
//
// For 1 MB, 16 MB and 100 MB documents: ms from the start of POST /v1/media
// to the message's status sent (WhatsApp's ack, after the sender's
// streamed upload to the media server), and of that the part from the
// send's 202 to the ack (the sender's encryption, upload and send). The
// median of 3 runs (1 of 100 MB). WAA_TEST_ENGINE chooses the engine.
func BenchmarkMediaSend(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchMediaSend(b)
	}
}

func benchMediaSend(b *testing.B) {
	ta := serveWith(b, initState(b, peers.Server{Endpoint: "127.0.0.1:51820"}), func(o *app.Options) {
		o.Sandbox = app.SandboxInProcess
		o.MediaMaxBytes = 4 << 30
	})
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: "bench", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1e6, Burst: 1e6, SendPerMinute: 100000})
	if err != nil {
		b.Fatal(err)
	}
	ta.Sync()
	cl := ta.client(b, c)
	benchPair(b, cl)
	for _, sz := range []struct {
		name string
		n    int
		runs int
	}{{"1MB", 1e6, 3}, {"16MB", 16e6, 3}, {"100MB", 100e6, 1}} {
		var total, send []time.Duration
		for i := 0; i < sz.runs; i++ {
			body := make([]byte, sz.n)
			rand.Read(body)
			copy(body, "%PDF-1.7\n")
			t0 := time.Now()
			r, err := cl.DoWithHeader(context.Background(), "POST", "/v1/media?filename=bench.pdf", body, map[string]string{"Content-Type": "application/pdf"})
			var item struct{ ID string }
			if err != nil || r.Status != 201 || r.JSON(&item) != nil {
				b.Fatalf("upload: %v %d %s", err, r.Status, r.Body)
			}
			r = do(b, cl, "POST", "/v1/sessions/shop/messages", fmt.Sprintf(`{"to":"+15550002","document":{"media":%q}}`, item.ID))
			var m messageJSON
			if r.Status != 202 || r.JSON(&m) != nil {
				b.Fatalf("send: %d %s", r.Status, r.Body)
			}
			t1 := time.Now()
			benchWait(b, "the document sent", 5*time.Minute, func() bool {
				var got messageJSON
				do(b, cl, "GET", "/v1/sessions/shop/messages/"+m.ID, nil).JSON(&got)
				if got.Status == "failed" {
					b.Fatalf("send failed: %s", got.Error)
				}
				return got.Status != "queued"
			})
			total, send = append(total, time.Since(t0)), append(send, time.Since(t1))
		}
		tm, sm := median(total), median(send)
		b.ReportMetric(float64(tm.Microseconds())/1000, "ms-upload-to-acked-"+sz.name)
		b.ReportMetric(float64(sm.Microseconds())/1000, "ms-202-to-acked-"+sz.name)
		b.ReportMetric(float64(sz.n)/1e6/tm.Seconds(), "MB/s-upload-to-acked-"+sz.name)
	}
}

// benchPair pairs session shop as +15550001 through the sandbox routes and
// adds the contact +15550002.
func benchPair(b testing.TB, cl *wgclient.Client) {
	b.Helper()
	if r := do(b, cl, "POST", "/v1/sessions", map[string]string{"name": "shop"}); r.Status != 201 {
		b.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := do(b, cl, "POST", "/v1/sessions/shop/login", nil); r.Status != 202 {
		b.Fatalf("login: %d %s", r.Status, r.Body)
	}
	benchWait(b, "a QR code", time.Minute, func() bool { return do(b, cl, "GET", "/v1/sessions/shop/qr", nil).Status == 200 })
	if r := do(b, cl, "POST", "/v1/sandbox/scan", map[string]string{"session": "shop", "phone": "+15550001"}); r.Status != 200 {
		b.Fatalf("scan: %d %s", r.Status, r.Body)
	}
	benchWait(b, "connected", time.Minute, func() bool {
		var s sessionJSON
		return json.Unmarshal(do(b, cl, "GET", "/v1/sessions/shop", nil).Body, &s) == nil && s.State == "connected"
	})
	if r := do(b, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		b.Fatalf("contact: %d %s", r.Status, r.Body)
	}
}

func benchWait(b testing.TB, what string, d time.Duration, fn func() bool) {
	b.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
