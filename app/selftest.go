package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"waappliance/internal/wgclient"
	"waappliance/peers"
	"waappliance/store"
)

// SelftestReport is what `waappliance selftest` measured.
type SelftestReport struct {
	Handshake    time.Duration // first request, including the WireGuard handshake
	LatencyP50   time.Duration
	LatencyMax   time.Duration
	Requests     int
	HeapAlloc    uint64
	RSS          uint64 // bytes; 0 where /proc is unavailable
	Platform     string
	TunnelAddr   netip.Addr
	ClientAddr   netip.Addr
	UDPPort      int
	ForbiddenMsg string
}

// Selftest starts a throwaway appliance in a temporary state dir on a
// loopback UDP port, brings up an in-process client peer, does a full
// WireGuard handshake, checks whoami and a 403 for a missing scope, and
// measures. It touches no real state and no network but loopback.
func Selftest(ctx context.Context) (*SelftestReport, error) {
	tmp, err := os.MkdirTemp("", "waappliance-selftest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "state")
	db, err := store.Open(ctx, dir, true)
	if err != nil {
		return nil, fmt.Errorf("open temporary state: %w", err)
	}
	_, err = peers.InitServer(ctx, db, peers.Server{Endpoint: "127.0.0.1:51820"})
	db.Close()
	if err != nil {
		return nil, fmt.Errorf("init temporary state: %w", err)
	}
	a, err := Open(ctx, Options{StateDir: dir, ListenPort: -1, Bind: wgclient.NewLoopbackBind(), NoWhatsApp: true})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	c, err := a.reg.Add(ctx, peers.AddOptions{Name: "selftest", Scopes: []peers.Scope{peers.ScopeRead}, Rate: 1000, Burst: 1000})
	if err != nil {
		return nil, fmt.Errorf("add client peer: %w", err)
	}
	if err := a.Start(ctx); err != nil {
		return nil, fmt.Errorf("start appliance: %w", err)
	}
	rep := &SelftestReport{Platform: runtime.GOOS + "/" + runtime.GOARCH + goarm(), TunnelAddr: a.TunnelAddr(), ClientAddr: c.Peer.Addr, UDPPort: a.Port()}
	cl, err := wgclient.New(wgclient.Config{PrivateKey: c.PrivateKey, PresharedKey: c.Peer.PresharedKey, Addr: c.Peer.Addr,
		ServerKey: a.server.PublicKey(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(rep.UDPPort)),
		ServerAddr: a.TunnelAddr(), MTU: a.MTU()})
	if err != nil {
		return nil, fmt.Errorf("client peer: %w", err)
	}
	defer cl.Close()

	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	r, err := cl.Do(rctx, "GET", "/v1/whoami", nil)
	if err != nil {
		return nil, fmt.Errorf("whoami through the tunnel failed (no WireGuard handshake or no TCP through the netstack): %w", err)
	}
	rep.Handshake = time.Since(start)
	if cl.LastHandshake().IsZero() {
		return nil, errors.New("the client answered but records no handshake")
	}
	var who struct {
		Name    string   `json:"name"`
		Address string   `json:"address"`
		Scopes  []string `json:"scopes"`
	}
	if r.Status != 200 || r.JSON(&who) != nil {
		return nil, fmt.Errorf("whoami: status %d, body %q", r.Status, r.Body)
	}
	if who.Name != "selftest" || who.Address != c.Peer.Addr.String() || !slices.Equal(who.Scopes, []string{"read"}) {
		return nil, fmt.Errorf("whoami identified the client as %+v, want selftest at %s with scope read", who, c.Peer.Addr)
	}
	r, err = cl.Do(rctx, "GET", "/v1/peers", nil)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/peers: %w", err)
	}
	if r.Status != 403 || !strings.Contains(string(r.Body), `"code":"forbidden"`) {
		return nil, fmt.Errorf("a peer without scope admin got %d %q from GET /v1/peers, want 403 forbidden", r.Status, r.Body)
	}
	rep.ForbiddenMsg = "403 forbidden"
	var lat []time.Duration
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		r, err := cl.Do(rctx, "GET", "/v1/whoami", nil)
		if err != nil || r.Status != 200 {
			return nil, fmt.Errorf("request %d: %v", i, err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rep.Requests, rep.LatencyP50, rep.LatencyMax = len(lat), lat[len(lat)/2], lat[len(lat)-1]
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapAlloc = ms.HeapAlloc
	rep.RSS = readRSS()
	return rep, nil
}

// readRSS returns VmRSS of this process in bytes, 0 when unknown.
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (c *cli) selftest(ctx context.Context, args []string) error {
	fs := c.flags("selftest", "", "Start a throwaway appliance in a temporary state dir on a loopback UDP port, bring up an\nin-process client peer, do a WireGuard handshake, call /v1/whoami through the tunnel, check\nthe identity and a 403 for a missing scope, and report. Touches no real state, no network but loopback.")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "waappliance selftest: %s\n", VersionLine())
	rep, err := Selftest(ctx)
	if err != nil {
		fmt.Fprintf(c.stdout, "FAIL: %v\n", err)
		return fmt.Errorf("selftest failed: %w", err)
	}
	fmt.Fprintf(c.stdout, "ok  handshake + first request  %v  (client %s -> appliance %s over 127.0.0.1:%d/udp)\n", rep.Handshake.Round(time.Microsecond), rep.ClientAddr, rep.TunnelAddr, rep.UDPPort)
	fmt.Fprintf(c.stdout, "ok  whoami identifies the peer by its key\n")
	fmt.Fprintf(c.stdout, "ok  missing scope refused       %s\n", rep.ForbiddenMsg)
	fmt.Fprintf(c.stdout, "ok  request latency            p50 %v, max %v over %d requests\n", rep.LatencyP50.Round(time.Microsecond), rep.LatencyMax.Round(time.Microsecond), rep.Requests)
	fmt.Fprintf(c.stdout, "ok  memory                     heap %s, RSS %s\n", mib(rep.HeapAlloc), mib(rep.RSS))
	fmt.Fprintf(c.stdout, "PASS %s\n", rep.Platform)
	return nil
}
