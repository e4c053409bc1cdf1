package app_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"waappliance/app"
)

func TestSelftestPasses(t *testing.T) {
	var o, e bytes.Buffer
	if code := app.Main(context.Background(), []string{"selftest"}, &o, &e); code != 0 {
		t.Fatalf("selftest exit %d:\n%s%s", code, o.String(), e.String())
	}
	for _, want := range []string{"handshake", "whoami identifies", "403 forbidden", "p50", "RSS", "PASS"} {
		if !strings.Contains(o.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, o.String())
		}
	}
}

func TestDoctor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	// Hold the configured UDP port so doctor must name its holder.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	mustCLI(t, dir, "init", "--listen-port", itoa(port))
	os.Chmod(dir, 0o755)
	var o, e bytes.Buffer
	code := app.Main(context.Background(), []string{"doctor", "--state", dir}, &o, &e)
	out := o.String()
	if code != 1 {
		t.Fatalf("doctor exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"FIX  state dir", "chmod 700", "FIX  endpoint", "FIX  peers", "held by", "ok   clock", "ok   disk"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	code = app.Main(context.Background(), []string{"doctor", "--state", filepath.Join(dir, "nope")}, &o, &e)
	if code != 1 || !strings.Contains(o.String(), "does not exist") {
		t.Errorf("doctor on a missing dir: exit %d\n%s", code, o.String())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
