package app_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/app"
	"waappliance/internal/wasim"
	"waappliance/peers"
)

// BenchmarkInboundMediaBurst: a contact sends a burst of 100 images
// (100 KiB each) to a session of an in-process sandbox appliance, with
// the real whatsmeow client on its side. It reports the events/s of their
// message.received (first send to the last event, by the events' own
// append times) and the latency from each send to its media.ready
// (median, p95, max):
//
//	go test ./app -run XXX -bench InboundMediaBurst -benchtime 1x
func BenchmarkInboundMediaBurst(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchInboundMedia(b, 100, 100<<10)
	}
}

func benchInboundMedia(b *testing.B, n, size int) {
	ctx := context.Background()
	dir := initState(b, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(b, dir, func(o *app.Options) { o.Sandbox = app.SandboxInProcess })
	c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1e6, Burst: 1e6, SendPerMinute: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	ta.Sync()
	cl := ta.client(b, c)
	do(b, cl, "POST", "/v1/sessions", map[string]string{"name": "shop"})
	do(b, cl, "POST", "/v1/sessions/shop/login", nil)
	waitB(b, "qr", func() bool { return do(b, cl, "GET", "/v1/sessions/shop/qr", nil).Status == 200 })
	do(b, cl, "POST", "/v1/sandbox/scan", map[string]string{"session": "shop", "phone": "+15550001"})
	var s sessionJSON
	waitB(b, "connected", func() bool { do(b, cl, "GET", "/v1/sessions/shop", nil).JSON(&s); return s.State == "connected" })
	account, _ := types.ParseJID(s.JID)
	do(b, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"})
	ada, err := ta.SandboxServer().Contact("15550002")
	if err != nil {
		b.Fatal(err)
	}
	img := make([]byte, size)
	copy(img, "\xff\xd8\xff\xe0")
	sent := map[string]time.Time{}
	var mu sync.Mutex
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				at := time.Now()
				id, err := ada.SendMedia(ctx, account.ToNonAD(), wasim.Media{Kind: wasim.KindImage, Data: img, Mimetype: "image/jpeg"})
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				sent[id] = at
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	type ev struct {
		Type string
		At   time.Time
		Data json.RawMessage
	}
	var evs []ev
	waitB(b, "every media.ready", func() bool {
		var out struct{ Events []ev }
		do(b, cl, "GET", "/v1/events?session=shop&limit=1000", nil).JSON(&out)
		ready := 0
		for _, e := range out.Events {
			if e.Type == "media.ready" {
				ready++
			}
		}
		evs = out.Events
		return ready >= n
	})
	b.StopTimer()
	var last time.Time
	var lat []time.Duration
	for _, e := range evs {
		var d struct {
			ID      string
			Message struct{ ID string }
		}
		json.Unmarshal(e.Data, &d)
		switch e.Type {
		case "message.received":
			if e.At.After(last) {
				last = e.At
			}
		case "media.ready":
			if at, ok := sent[d.Message.ID]; ok {
				lat = append(lat, e.At.Sub(at))
			}
		}
	}
	b.ReportMetric(float64(n)/last.Sub(start).Seconds(), "events/s")
	b.ReportMetric(float64(pct(lat, 0.5).Milliseconds()), "ready-p50-ms")
	b.ReportMetric(float64(pct(lat, 0.95).Milliseconds()), "ready-p95-ms")
	b.ReportMetric(float64(pct(lat, 1).Milliseconds()), "ready-max-ms")
}
