package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/internal/pgtest"
	"waappliance/internal/wasim"
	"waappliance/store"
)

// BenchmarkWhatsApp measures the appliance as a separate process (this test
// binary re-executed as `waappliance serve --sandbox=HOST:PORT`) against a
// wasim in this process, through the real tunnel (loopback UDP):
//
//	go test ./app -run XXX -bench WhatsApp -benchtime 1x
//
// It reports accepted sends/s into the outbox, queued→sent latency, inbound
// events/s and wasim-send→SSE latency, and the appliance's RSS with 1, 10
// and 100 connected sessions. Set WAA_BENCH_SESSIONS to change the 100,
// WAA_BENCH_LONE the number of lone sends (30).
//
// It runs once per engine, side by side: BenchmarkWhatsApp/sqlite, and
// BenchmarkWhatsApp/postgres when pgtest.Env names a server (a fresh
// database on it), so that
//
//	scripts/pg env WAA_BENCH_SESSIONS=10 go test ./app -run XXX -bench WhatsApp -benchtime 1x
//
// prints both (WAA_TEST_ENGINE does not matter here). The RSS is the
// appliance's alone, not the PostgreSQL server's.
func BenchmarkWhatsApp(b *testing.B) {
	engines := []store.Dialect{store.SQLite}
	if pgtest.Enabled() {
		engines = append(engines, store.Postgres)
	}
	for _, engine := range engines {
		b.Run(string(engine), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchWhatsApp(b, engine)
			}
		})
	}
}

func rssMiB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(kb) / 1024
		}
	}
	return 0
}

// peakRSS samples the RSS of process pid every interval, from a floor of
// from, until the returned stop is called, which returns the highest seen.
func peakRSS(pid int, from float64, every time.Duration) (stop func() float64) {
	peak := from
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
				peak = max(peak, rssMiB(pid))
			}
		}
	}()
	return func() float64 {
		close(done)
		<-sampled
		return peak
	}
}

// cpuTime is the user+system CPU time process pid has used (utime and
// stime of /proc/PID/stat, in clock ticks of 10 ms); a figure that the
// other loads of a shared machine disturb less than wall-clock time.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:]) // after "pid (comm) "
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u+st) * 10 * time.Millisecond
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func benchWhatsApp(b *testing.B, engine store.Dialect) {
	ctx := context.Background()
	srv, ctl := startWasim(b)
	port := freeUDPPort(b)
	dir := filepath.Join(b.TempDir(), "state")
	database := "sqlite"
	if engine == store.Postgres {
		database = pgtest.Fresh(b)
	}
	mustCLI(b, dir, "init", "--database", database, "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg := mustCLI(b, dir, "peer", "add", "bench", "--scopes", "admin", "--rate", "1000000", "--burst", "1000000", "--send-per-minute", "1000000")
	boss := createdFromCLI(b, dir, "bench", cfg)

	logDir := b.TempDir()
	if d := os.Getenv(profileEnv); d != "" {
		logDir = d // kept beside the profiles
	}
	lf, _ := os.Create(filepath.Join(logDir, "serve.log"))
	cmd := execAppliance(dir, ctl.String(), lf)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	cl := procClient(b, dir, port, boss)
	waitB(b, "appliance up", func() bool { r, err := cl.Do(ctx, "GET", "/v1/health", nil); return err == nil && r.Status == 200 })

	sessions := 100
	if v, err := strconv.Atoi(os.Getenv("WAA_BENCH_SESSIONS")); err == nil && v > 0 {
		sessions = v
	}
	pair := func(i int) {
		name := fmt.Sprintf("s%03d", i)
		do(b, cl, "POST", "/v1/sessions", map[string]string{"name": name})
		do(b, cl, "POST", "/v1/sessions/"+name+"/login", nil)
		waitB(b, "qr", func() bool { return do(b, cl, "GET", "/v1/sessions/"+name+"/qr", nil).Status == 200 })
		if r := do(b, cl, "POST", "/v1/sandbox/scan", map[string]string{"session": name, "phone": fmt.Sprintf("+1888%05d", i)}); r.Status != 200 {
			b.Fatalf("scan: %s", r.Body)
		}
		waitB(b, "connected", func() bool {
			var s sessionJSON
			do(b, cl, "GET", "/v1/sessions/"+name, nil).JSON(&s)
			return s.State == "connected"
		})
	}
	rss := map[int]float64{}
	for i := 0; i < sessions; i++ {
		pair(i)
		if n := i + 1; n == 1 || n == 10 || n == sessions {
			time.Sleep(3 * time.Second)
			rss[n] = rssMiB(cmd.Process.Pid)
		}
	}

	// Outbound: accepted sends/s into the outbox, then queued→sent latency.
	srv.AddContact(ctx, "19990001", "Bench", -1)
	const nSend, workers = 1000, 8
	var mu sync.Mutex
	var ids []string
	// Arrival of each message at the contact (wasim's clock, this process).
	var arrMu sync.Mutex
	arrived := map[string]time.Time{}
	srv.OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventContactReceived {
			at := time.Now()
			arrMu.Lock()
			if _, ok := arrived[e.MessageID]; !ok {
				arrived[e.MessageID] = at
			}
			arrMu.Unlock()
		}
	})
	arrival := func(id string) (time.Time, bool) {
		arrMu.Lock()
		defer arrMu.Unlock()
		at, ok := arrived[id]
		return at, ok
	}
	benchProfile(cmd.Process.Pid, syscall.SIGUSR1)
	cpu0 := cpuTime(cmd.Process.Pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < nSend/workers; j++ {
				r, err := cl.Do(ctx, "POST", "/v1/sessions/s000/messages", map[string]string{"to": "+19990001", "text": "bench"})
				if err != nil || r.Status != 202 {
					b.Errorf("send: %v", err)
					return
				}
				var m messageJSON
				r.JSON(&m)
				mu.Lock()
				ids = append(ids, m.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	acceptedAt := time.Now()
	accepted := float64(len(ids)) / acceptedAt.Sub(start).Seconds()
	waitB(b, "all sent", func() bool {
		got, _ := srv.InboxOf(ctx, "19990001")
		return len(got) >= len(ids)
	})
	benchProfile(cmd.Process.Pid, syscall.SIGUSR2)
	burstCPU := cpuTime(cmd.Process.Pid) - cpu0
	// The burst: from the first API call to the last arrival, and the
	// longest pause between two consecutive arrivals.
	var arr []time.Time
	for _, id := range ids {
		if at, ok := arrival(id); ok {
			arr = append(arr, at)
		}
	}
	sort.Slice(arr, func(i, j int) bool { return arr[i].Before(arr[j]) })
	var burst, maxGap, maxGapAfter time.Duration
	if len(arr) > 0 {
		burst = arr[len(arr)-1].Sub(start)
	}
	for i := 1; i < len(arr); i++ {
		maxGap = max(maxGap, arr[i].Sub(arr[i-1]))
		if arr[i-1].After(acceptedAt) {
			maxGapAfter = max(maxGapAfter, arr[i].Sub(arr[i-1]))
		}
	}
	var lat []time.Duration
	for _, id := range ids {
		var m struct {
			History []struct {
				Status string
				At     time.Time
			}
		}
		do(b, cl, "GET", "/v1/sessions/s000/messages/"+id, nil).JSON(&m)
		var q, s time.Time
		for _, h := range m.History {
			switch h.Status {
			case "queued":
				q = h.At
			case "sent":
				s = h.At
			}
		}
		if !q.IsZero() && !s.IsZero() {
			lat = append(lat, s.Sub(q))
		}
	}

	// One at a time, unloaded: queued→sent of a lone message
	// (WAA_BENCH_LONE of them, 30 by default).
	var lone, loneInbox, loneAccept []time.Duration
	nLone := 30
	if v, err := strconv.Atoi(os.Getenv("WAA_BENCH_LONE")); err == nil && v > 0 {
		nLone = v
	}
	// The floor under a lone send's API→202: an unloaded GET /v1/whoami
	// (the tunnel both ways, HTTP, the middleware; no commit).
	var whoami []time.Duration
	for j := 0; j < nLone; j++ {
		t0 := time.Now()
		do(b, cl, "GET", "/v1/whoami", nil)
		whoami = append(whoami, time.Since(t0))
	}
	for j := 0; j < nLone; j++ {
		var m messageJSON
		t0 := time.Now()
		do(b, cl, "POST", "/v1/sessions/s000/messages", map[string]string{"to": "+19990001", "text": "lone"}).JSON(&m)
		loneAccept = append(loneAccept, time.Since(t0))
		waitB(b, "lone at the contact", func() bool { _, ok := arrival(m.ID); return ok })
		if at, ok := arrival(m.ID); ok {
			loneInbox = append(loneInbox, at.Sub(t0))
		}
		waitB(b, "lone sent", func() bool {
			var cur messageJSON
			do(b, cl, "GET", "/v1/sessions/s000/messages/"+m.ID, nil).JSON(&cur)
			return cur.Status == "sent" || cur.Status == "delivered" || cur.Status == "read"
		})
		var h struct {
			History []struct {
				Status string
				At     time.Time
			}
		}
		do(b, cl, "GET", "/v1/sessions/s000/messages/"+m.ID, nil).JSON(&h)
		for _, st := range h.History {
			if st.Status == "sent" {
				lone = append(lone, st.At.Sub(h.History[0].At))
			}
		}
	}

	// Inbound: wasim sends, an SSE client sees it.
	var si sessionJSON
	do(b, cl, "GET", "/v1/sessions/s000", nil).JSON(&si)
	acct, _ := types.ParseJID(si.JID)
	req, _ := http.NewRequest("GET", "http://10.77.0.1/v1/events/stream?session=s000", nil)
	var latest struct {
		NextAfter int64 `json:"next_after"`
	}
	do(b, cl, "GET", "/v1/events?session=s000&limit=1000&after=0", nil).JSON(&latest)
	for {
		var page struct {
			NextAfter int64 `json:"next_after"`
			Events    []any
		}
		do(b, cl, "GET", fmt.Sprintf("/v1/events?session=s000&limit=1000&after=%d", latest.NextAfter), nil).JSON(&page)
		if len(page.Events) == 0 {
			break
		}
		latest.NextAfter = page.NextAfter
	}
	req.Header.Set("Last-Event-ID", strconv.FormatInt(latest.NextAfter, 10))
	resp, err := (&http.Client{Transport: cl.HTTP.Transport}).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	const nIn = 300
	sentAt := make(map[string]time.Time, nIn)
	seen := make(chan struct {
		id string
		at time.Time
	}, nIn)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"message.received"`) {
				i := strings.Index(line, `"data":{"id":"`)
				if i >= 0 {
					rest := line[i+len(`"data":{"id":"`):]
					seen <- struct {
						id string
						at time.Time
					}{rest[:strings.Index(rest, `"`)], time.Now()}
				}
			}
		}
	}()
	inStart := time.Now()
	for j := 0; j < nIn; j++ {
		t0 := time.Now()
		id, err := srv.ContactSend(ctx, "19990001", acct.ToNonAD(), "inbound bench", "")
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		sentAt[id] = t0
		mu.Unlock()
	}
	var inLat []time.Duration
	var last time.Time
	deadline := time.After(60 * time.Second)
	for len(inLat) < nIn {
		select {
		case s := <-seen:
			mu.Lock()
			t0, ok := sentAt[s.id]
			mu.Unlock()
			if ok {
				inLat = append(inLat, s.at.Sub(t0))
				last = s.at
			}
		case <-deadline:
			b.Fatalf("SSE saw %d of %d inbound", len(inLat), nIn)
		}
	}
	inRate := float64(nIn) / last.Sub(inStart).Seconds()

	b.ReportMetric(accepted, "accepted-sends/s")
	b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "queued→sent-p50-ms")
	b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "queued→sent-p99-ms")
	b.ReportMetric(float64(pct(lone, 0.5).Microseconds())/1000, "lone-queued→sent-p50-ms")
	b.ReportMetric(float64(pct(lone, 0.99).Microseconds())/1000, "lone-queued→sent-p99-ms")
	b.ReportMetric(float64(pct(loneInbox, 0.5).Microseconds())/1000, "lone-API→inbox-p50-ms")
	b.ReportMetric(float64(pct(loneInbox, 0.99).Microseconds())/1000, "lone-API→inbox-p99-ms")
	b.ReportMetric(float64(pct(loneAccept, 0.5).Microseconds())/1000, "lone-API→202-p50-ms")
	b.ReportMetric(float64(pct(whoami, 0.5).Microseconds())/1000, "lone-whoami-p50-ms")
	b.ReportMetric(burst.Seconds(), "burst-1000-API→inbox-s")
	b.ReportMetric(float64(maxGap.Microseconds())/1000, "burst-max-gap-ms")
	b.ReportMetric(float64(burstCPU.Milliseconds()), "burst-appliance-cpu-ms")
	b.ReportMetric(float64(maxGapAfter.Microseconds())/1000, "burst-max-gap-after-accepts-ms")
	b.ReportMetric(inRate, "inbound-events/s")
	b.ReportMetric(float64(pct(inLat, 0.5).Microseconds())/1000, "wasim→SSE-p50-ms")
	b.ReportMetric(float64(pct(inLat, 0.99).Microseconds())/1000, "wasim→SSE-p99-ms")
	for _, n := range []int{1, 10, sessions} {
		b.ReportMetric(rss[n], fmt.Sprintf("RSS-MiB-%d-sessions", n))
	}
}

func waitB(b testing.TB, what string, fn func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
