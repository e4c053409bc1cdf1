package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/events"
	"waappliance/peers"
)

// BenchmarkWebhooks measures webhook delivery through the tunnel to one
// receiver on an in-process client's address, beside an SSE stream of the
// same events in the same run: catch-up of WAA_BENCH_EVENTS (10,000)
// events queued during an outage, and commit → receipt latency of events
// appended one at a time. Run: go test ./app -run XXX -bench Webhooks -benchtime 1x
func BenchmarkWebhooks(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("WAA_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		benchWebhooks(b, n)
	}
}

func benchWebhooks(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := initState(b, peers.Server{Endpoint: "127.0.0.1:51820"})
	sched := make([]time.Duration, 10000)
	for i := range sched {
		sched[i] = 50 * time.Millisecond
	}
	ta := serveWith(b, dir, func(o *app.Options) { o.NoWhatsApp = true; o.WebhookSchedule = sched; o.Logger = nil })
	c := ta.addPeer(b, "app", peers.ScopeRead)
	cl := ta.client(b, c)
	if r, err := cl.Do(ctx, "POST", "/v1/webhooks", map[string]any{"url": fmt.Sprintf("http://%s:9000/", c.Peer.Addr)}); err != nil || r.Status != 201 {
		b.Fatalf("create: %v", err)
	}

	// The outage: n events queued, nothing listening.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				if _, err := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": i}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	last, _ := ta.Events().Latest(ctx)

	var mu sync.Mutex
	seenHook := map[int64]time.Time{}
	hookDone := make(chan struct{})
	ln, err := cl.Listen(9000)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.Header.Get("webhook-id"), 10, 64)
		mu.Lock()
		if _, ok := seenHook[id]; !ok {
			seenHook[id] = time.Now()
			if id == last {
				close(hookDone)
			}
		}
		mu.Unlock()
		w.WriteHeader(204)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	<-hookDone
	hookCatchUp := time.Since(t0)

	// SSE over the same backlog, then left open for the live part.
	sseSeen := map[int64]time.Time{}
	sseLast := make(chan int64, 1)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://10.77.0.1/v1/events/stream?after=0", nil)
	t0 = time.Now()
	resp, err := (&http.Client{Transport: cl.HTTP.Transport}).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	caughtUp := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				id, _ := strconv.ParseInt(v, 10, 64)
				mu.Lock()
				sseSeen[id] = time.Now()
				mu.Unlock()
				if id == last {
					close(caughtUp)
				}
				select {
				case sseLast <- id:
				default:
				}
			}
		}
	}()
	<-caughtUp
	sseCatchUp := time.Since(t0)

	// Live: one event at a time, both readers connected.
	const live = 300
	committed := map[int64]time.Time{}
	for i := range live {
		e, err := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"live": i})
		if err != nil {
			b.Fatal(err)
		}
		committed[e.ID] = time.Now()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			_, h := seenHook[e.ID]
			_, s := sseSeen[e.ID]
			mu.Unlock()
			if h && s || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	var hookLat, sseLat []time.Duration
	mu.Lock()
	for id, at := range committed {
		if t, ok := seenHook[id]; ok {
			hookLat = append(hookLat, t.Sub(at))
		}
		if t, ok := sseSeen[id]; ok {
			sseLat = append(sseLat, t.Sub(at))
		}
	}
	mu.Unlock()
	b.ReportMetric(float64(n)/hookCatchUp.Seconds(), "webhook-catchup-events/s")
	b.ReportMetric(float64(n)/sseCatchUp.Seconds(), "sse-catchup-events/s")
	b.ReportMetric(hookCatchUp.Seconds(), "webhook-catchup-s")
	b.ReportMetric(float64(pct(hookLat, 0.5).Microseconds())/1000, "webhook-commit→receipt-p50-ms")
	b.ReportMetric(float64(pct(hookLat, 0.99).Microseconds())/1000, "webhook-commit→receipt-p99-ms")
	b.ReportMetric(float64(pct(sseLat, 0.5).Microseconds())/1000, "sse-commit→receipt-p50-ms")
	b.ReportMetric(float64(pct(sseLat, 0.99).Microseconds())/1000, "sse-commit→receipt-p99-ms")
}

// BenchmarkWebhooksTenReceivers: ten client peers, each with a receiver
// on its tunnel address and one webhook, and 20 failing subscriptions
// (nothing listens) beside them; events appended one at a time reach all
// ten. Reports deliveries/s and commit → receipt p50/p99 over all of them.
// Run: go test ./app -run XXX -bench WebhooksTen -benchtime 1x
func BenchmarkWebhooksTenReceivers(b *testing.B) {
	for range b.N {
		benchTenReceivers(b)
	}
}

func benchTenReceivers(b *testing.B) {
	ctx := context.Background()
	dir := initState(b, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serveWith(b, dir, func(o *app.Options) { o.NoWhatsApp = true; o.Logger = nil })
	const receivers, events_ = 10, 500
	var mu sync.Mutex
	seen := map[int64][]time.Time{}
	for i := range receivers {
		c := ta.addPeer(b, fmt.Sprintf("r%d", i), peers.ScopeRead)
		cl := ta.client(b, c)
		ln, err := cl.Listen(9000)
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := strconv.ParseInt(r.Header.Get("webhook-id"), 10, 64)
			mu.Lock()
			seen[id] = append(seen[id], time.Now())
			mu.Unlock()
			w.WriteHeader(204)
		})}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		for j := range 3 { // one delivering, two failing (no listener on 9001, 9002)
			if r, err := cl.Do(ctx, "POST", "/v1/webhooks", map[string]any{"url": fmt.Sprintf("http://%s:%d/", c.Peer.Addr, 9000+j)}); err != nil || r.Status != 201 {
				b.Fatalf("create: %v", err)
			}
		}
	}
	committed := map[int64]time.Time{}
	t0 := time.Now()
	for i := range events_ {
		e, err := ta.Events().Append(ctx, "shop", events.TypeMessageReceived, map[string]int{"n": i})
		if err != nil {
			b.Fatal(err)
		}
		committed[e.ID] = time.Now()
	}
	last := int64(0)
	for id := range committed {
		last = max(last, id)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(seen[last])
		mu.Unlock()
		if n >= receivers || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(t0)
	var lat []time.Duration
	total := 0
	mu.Lock()
	for id, at := range committed {
		for _, t := range seen[id] {
			lat = append(lat, t.Sub(at))
			total++
		}
	}
	mu.Unlock()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(total), "deliveries")
	b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "commit→receipt-p50-ms")
	b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "commit→receipt-p99-ms")
}
