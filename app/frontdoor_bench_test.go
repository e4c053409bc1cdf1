package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waappliance/app"
)

// BenchmarkFrontDoor measures what one peer holding its maximum of
// connections and streams costs the appliance, run as its own process
// (this test binary re-executed as `waappliance serve`) through the real
// tunnel (loopback UDP):
//
//	go test ./app -run XXX -bench FrontDoor -benchtime 1x
//
// Peer 1 keeps its caps full for the whole load phase: its event streams,
// idle connections, connections dripping a 15 KiB header a byte at a time
// and connections dripping a 60 KiB body, each reopened as soon as the
// appliance cuts it, plus dialers that keep trying connections over the
// cap. Peer 2 meanwhile sends whoami requests one after another. It reports
// the appliance's RSS idle and under peer 1's load (and the peak), peer 2's
// whoami p50/p99 idle and under load, and the p99 ratio. WAA_BENCH_PEER_CONNS
// raises the per-peer connection cap (serve --peer-max-conns) to see what
// the total cap bounds; WAA_BENCH_MEMORY_LIMIT passes serve --memory-limit
// (the systemd unit's GOMEMLIMIT is 192MiB); WAA_BENCH_IDLE=1 makes every
// connection but the streams idle, to see what an idle connection costs.
func BenchmarkFrontDoor(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchFrontDoor(b)
	}
}

func benchFrontDoor(b *testing.B) {
	ctx := context.Background()
	peerConns := app.DefaultPeerConns
	if v, err := strconv.Atoi(os.Getenv("WAA_BENCH_PEER_CONNS")); err == nil && v > 0 {
		peerConns = v
	}
	streams := app.DefaultPeerStreams
	port := freeUDPPort(b)
	dir := filepath.Join(b.TempDir(), "state")
	mustCLI(b, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg1 := mustCLI(b, dir, "peer", "add", "p1", "--scopes", "read", "--rate", "1000000", "--burst", "1000000")
	_, cfg2 := mustCLI(b, dir, "peer", "add", "p2", "--scopes", "read", "--rate", "1000000", "--burst", "1000000")
	c1, c2 := createdFromCLI(b, dir, "p1", cfg1), createdFromCLI(b, dir, "p2", cfg2)

	lf, _ := os.Create(filepath.Join(b.TempDir(), "serve.log"))
	args := []string{"serve", "--state", dir, "--log-level", "warn", "--peer-max-conns", strconv.Itoa(peerConns)}
	if v := os.Getenv("WAA_BENCH_MEMORY_LIMIT"); v != "" {
		args = append(args, "--memory-limit", v)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WAAPPLIANCE_TEST_AS_MAIN=1")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	p1, p2 := procClient(b, dir, port, c1), procClient(b, dir, port, c2)
	waitB(b, "appliance up", func() bool { r, err := p2.Do(ctx, "GET", "/v1/health", nil); return err == nil && r.Status == 200 })
	waitB(b, "peer 1 up", func() bool { r, err := p1.Do(ctx, "GET", "/v1/whoami", nil); return err == nil && r.Status == 200 })
	p1.HTTP.CloseIdleConnections()

	whoami := func(d time.Duration) []time.Duration {
		var lat []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); {
			t0 := time.Now()
			r, err := p2.Do(ctx, "GET", "/v1/whoami", nil)
			if err != nil || r.Status != 200 {
				b.Fatalf("peer 2 whoami: %v", err)
			}
			lat = append(lat, time.Since(t0))
		}
		return lat
	}
	whoami(time.Second) // warm up
	time.Sleep(time.Second)
	rssIdle := rssMiB(cmd.Process.Pid)
	idle := whoami(5 * time.Second)

	// Peer 1 fills its caps and keeps them full.
	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var refused, cut atomic.Int64
	serverAddr := "10.77.0.1:80"
	streamClient := &http.Client{Transport: &http.Transport{DialContext: p1.DialContext, DisableKeepAlives: true}}
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(loadCtx, "GET", "http://10.77.0.1/v1/events/stream", nil)
				resp, err := streamClient.Do(req)
				if err != nil {
					continue
				}
				if resp.StatusCode != 200 {
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	// Everything but the streams: a third idle, a third dripping a big
	// header, a third dripping a big body.
	kinds := []func(c net.Conn){
		func(c net.Conn) { io.Copy(io.Discard, c) }, // idle until cut
		func(c net.Conn) {
			io.WriteString(c, "GET /v1/whoami HTTP/1.1\r\nHost: 10.77.0.1\r\nX-Pad: "+strings.Repeat("a", 15<<10))
			drip(loadCtx, c)
		},
		func(c net.Conn) {
			io.WriteString(c, "POST /v1/peers HTTP/1.1\r\nHost: 10.77.0.1\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n"+strings.Repeat(" ", 60<<10))
			drip(loadCtx, c)
		},
	}
	if os.Getenv("WAA_BENCH_IDLE") == "1" {
		kinds = kinds[:1]
	}
	holders := peerConns - streams
	for i := 0; i < holders; i++ {
		kind := kinds[i%len(kinds)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				c, err := p1.DialContext(loadCtx, "tcp", serverAddr)
				if err != nil {
					continue
				}
				go func() { <-loadCtx.Done(); c.Close() }()
				br := bufio.NewReader(c)
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if resp, err := http.ReadResponse(br, nil); err == nil && resp.StatusCode == 429 {
					refused.Add(1)
					c.Close()
					time.Sleep(50 * time.Millisecond) // a place frees when the appliance cuts one
					continue
				}
				c.SetReadDeadline(time.Time{})
				kind(c)
				c.Close()
				cut.Add(1)
			}
		}()
	}
	// Over the cap, all the time.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				c, err := p1.DialContext(loadCtx, "tcp", serverAddr)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == 429 {
					refused.Add(1)
				}
				c.Close()
			}
		}()
	}
	var peak atomic.Int64
	go func() {
		for loadCtx.Err() == nil {
			if r := int64(rssMiB(cmd.Process.Pid) * 1024); r > peak.Load() {
				peak.Store(r)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	rssLoad := rssMiB(cmd.Process.Pid)
	loaded := whoami(12 * time.Second) // past a header and body deadline (10 s)
	stop()
	wg.Wait()

	p50i, p99i := pct(idle, 0.5), pct(idle, 0.99)
	p50l, p99l := pct(loaded, 0.5), pct(loaded, 0.99)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(rssIdle, "RSS-MiB-idle")
	b.ReportMetric(rssLoad, "RSS-MiB-peer1-at-max")
	b.ReportMetric(float64(peak.Load())/1024, "RSS-MiB-peak")
	b.ReportMetric(ms(p50i), "peer2-whoami-p50-ms-idle")
	b.ReportMetric(ms(p99i), "peer2-whoami-p99-ms-idle")
	b.ReportMetric(ms(p50l), "peer2-whoami-p50-ms-load")
	b.ReportMetric(ms(p99l), "peer2-whoami-p99-ms-load")
	b.ReportMetric(ms(p99l)/ms(p99i), "p99-load/idle")
	b.ReportMetric(float64(refused.Load()), "peer1-refused-429")
	b.ReportMetric(float64(cut.Load()), "peer1-conns-cut")
	b.Logf("peer 1 cap %d connections (%d streams); peer 2: %d whoami idle, %d under load", peerConns, streams, len(idle), len(loaded))
}

// drip writes a byte every 500 ms until the connection fails.
func drip(ctx context.Context, c net.Conn) {
	for ctx.Err() == nil {
		if _, err := c.Write([]byte{' '}); err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
