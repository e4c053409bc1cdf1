package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
	"waappliance/peers"
)

// BenchmarkWebhooksRSS: the appliance as its own process (this test
// binary re-executed as `waappliance serve --sandbox=HOST:PORT`, as
// BenchmarkWhatsApp runs it) with 100 webhook subscriptions on ten client
// peers: 50 to receivers that answer 204, 30 to ones that answer 500 and
// 20 to a port where nothing listens (refused). It reports serve's VmRSS
// idle with the subscriptions, the peak sampled every 50 ms during a burst
// of WAA_BENCH_EVENTS (1000) inbound messages from wasim until every one
// of the 50 has received all of them, and 3 s after. The RSS is serve's
// alone: wasim, the client peers and the receivers are in this process.
//
//	go test ./app -run XXX -bench WebhooksRSS -benchtime 1x
func BenchmarkWebhooksRSS(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("WAA_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		benchWebhooksRSS(b, n)
	}
}

func benchWebhooksRSS(b *testing.B, n int) {
	ctx := context.Background()
	srv, ctl := startWasim(b)
	port := freeUDPPort(b)
	dir := filepath.Join(b.TempDir(), "state")
	mustCLI(b, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg := mustCLI(b, dir, "peer", "add", "bench", "--scopes", "admin", "--rate", "1000000", "--burst", "1000000")
	boss := createdFromCLI(b, dir, "bench", cfg)
	const peersN, ok, err500, refused = 10, 5, 3, 2 // per peer
	var recv []string
	for i := range peersN {
		name := fmt.Sprintf("r%d", i)
		_, cfg := mustCLI(b, dir, "peer", "add", name, "--scopes", "read")
		recv = append(recv, cfg)
	}
	created := make([]peers.Created, 0, peersN)
	for i, cfg := range recv {
		created = append(created, createdFromCLI(b, dir, fmt.Sprintf("r%d", i), cfg))
	}

	lf, _ := os.Create(filepath.Join(b.TempDir(), "serve.log"))
	cmd := execAppliance(dir, ctl.String(), lf)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	cl := procClient(b, dir, port, boss)
	waitB(b, "appliance up", func() bool { r, err := cl.Do(ctx, "GET", "/v1/health", nil); return err == nil && r.Status == 200 })

	do(b, cl, "POST", "/v1/sessions", map[string]string{"name": "s000"})
	do(b, cl, "POST", "/v1/sessions/s000/login", nil)
	waitB(b, "qr", func() bool { return do(b, cl, "GET", "/v1/sessions/s000/qr", nil).Status == 200 })
	if r := do(b, cl, "POST", "/v1/sandbox/scan", map[string]string{"session": "s000", "phone": "+188800000"}); r.Status != 200 {
		b.Fatalf("scan: %s", r.Body)
	}
	var si sessionJSON
	waitB(b, "connected", func() bool {
		do(b, cl, "GET", "/v1/sessions/s000", nil).JSON(&si)
		return si.State == "connected"
	})
	acct, _ := types.ParseJID(si.JID)
	srv.AddContact(ctx, "19990001", "Bench", -1)

	// The receivers: on each peer's tunnel address, :9000 answers 204 and
	// counts the message.received events per path; :9001 answers 500.
	var mu sync.Mutex
	got := map[string]map[int64]bool{}
	paths := 0
	for i, c := range created {
		pc := procClient(b, dir, port, c)
		for port, code := range map[uint16]int{9000: 204, 9001: 500} {
			ln, err := pc.Listen(port)
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if code == 204 {
					var e events.Event
					json.Unmarshal(body, &e)
					if e.Type == events.TypeMessageReceived {
						mu.Lock()
						got[r.URL.Path][e.ID] = true
						mu.Unlock()
					}
				}
				w.WriteHeader(code)
			})}
			go hs.Serve(ln)
			b.Cleanup(func() { hs.Close() })
		}
		addr := c.Peer.Addr
		for j := range ok + err500 + refused {
			p, path := 9000, fmt.Sprintf("/r%d/ok%d", i, j)
			switch {
			case j >= ok+err500:
				p, path = 9002, "/refused"
			case j >= ok:
				p, path = 9001, "/500"
			default:
				mu.Lock()
				got[path] = map[int64]bool{}
				paths++
				mu.Unlock()
			}
			r := do(b, pc, "POST", "/v1/webhooks", map[string]any{"url": fmt.Sprintf("http://%s:%d%s", addr, p, path), "events": []string{"*"}})
			if r.Status != 201 {
				b.Fatalf("create webhook: %d %s", r.Status, r.Body)
			}
		}
	}
	time.Sleep(3 * time.Second)
	idle := rssMiB(cmd.Process.Pid)

	stopRSS := peakRSS(cmd.Process.Pid, idle, 50*time.Millisecond)
	t0 := time.Now()
	for range n {
		if _, err := srv.ContactSend(ctx, "19990001", acct.ToNonAD(), "webhook bench", ""); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		mu.Lock()
		done := 0
		for _, m := range got {
			if len(m) >= n {
				done++
			}
		}
		mu.Unlock()
		if done == paths {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivering subscriptions got all %d events", done, paths, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	peak := stopRSS()
	time.Sleep(3 * time.Second)
	after := rssMiB(cmd.Process.Pid)
	b.ReportMetric(idle, "RSS-MiB-idle-100-subs")
	b.ReportMetric(peak, "RSS-MiB-burst-peak")
	b.ReportMetric(after, "RSS-MiB-3s-after")
	b.ReportMetric(float64(n*paths)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(elapsed.Seconds(), "burst-all-delivered-s")
}
