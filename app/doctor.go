package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	waStore "go.mau.fi/whatsmeow/store"

	"waappliance/peers"
	"waappliance/store"
	"waappliance/whatsapp"
)

// check is one doctor finding; Fix is empty when all is well.
type check struct {
	Name, Detail, Fix string
}

// Doctor inspects a configured state directory and the host around it.
func Doctor(ctx context.Context, dir string) []check {
	var out []check
	add := func(name, detail, fix string) { out = append(out, check{name, detail, fix}) }

	// The same check as serve's refusal (store.LooseModes): no group or
	// world bit on the dir or any file in it.
	if _, err := os.Stat(dir); err != nil {
		add("state dir", dir, fmt.Sprintf("it does not exist: run 'waappliance init --endpoint HOST:PORT --state %s'", dir))
		return out
	}
	loose, err := store.LooseModes(dir)
	if err != nil {
		add("state dir", err.Error(), "check that this user may read the state dir")
		return out
	}
	var looseDir, looseFiles []store.LoosePath
	var names []string
	for _, l := range loose {
		if l.Dir {
			looseDir = append(looseDir, l)
		} else {
			looseFiles = append(looseFiles, l)
			names = append(names, fmt.Sprintf("%s (%04o)", filepath.Base(l.Path), l.Mode))
		}
	}
	if len(looseDir) > 0 {
		add("state dir", fmt.Sprintf("%s has mode %04o", dir, looseDir[0].Mode), store.ChmodFix(looseDir))
	} else {
		add("state dir", dir+" (private)", "")
	}
	if len(looseFiles) > 0 {
		add("file modes", strings.Join(names, ", ")+" readable by group or others", store.ChmodFix(looseFiles))
	} else {
		add("file modes", "no file readable by group or others", "")
	}

	db, err := store.Open(ctx, dir, false)
	if err != nil {
		add("database", err.Error(), "run 'waappliance init' for this state dir")
		return out
	}
	defer db.Close()
	srv, err := peers.LoadServer(ctx, db)
	if err != nil {
		add("config", err.Error(), fmt.Sprintf("run 'waappliance init --endpoint HOST:PORT --state %s'", dir))
		return out
	}
	add("database", filepath.Join(dir, store.FileName), "")

	if srv.Endpoint == "" {
		add("endpoint", "not set; configs say "+peers.EndpointPlaceholder(srv.ListenPort),
			fmt.Sprintf("set it with 'waappliance set --endpoint YOUR.PUBLIC.IP:%d --state %s', or edit Endpoint in each client config", srv.ListenPort, dir))
	} else {
		add("endpoint", srv.Endpoint, "")
	}

	add(udpPortCheck(srv.ListenPort))
	add(webVersionCheck(ctx, db))

	reg, err := peers.NewRegistry(ctx, db, srv, nil)
	if err == nil {
		now := time.Now()
		var admins, active int
		var newest time.Time
		for _, p := range reg.List() {
			if p.Active(now) {
				active++
				if p.Has(peers.ScopeAdmin) {
					admins++
				}
			}
			if p.UpdatedAt.After(newest) {
				newest = p.UpdatedAt
			}
		}
		if admins == 0 {
			add("peers", fmt.Sprintf("%d active, none with scope admin", active), "add one: 'waappliance peer add admin --scopes admin'")
		} else {
			add("peers", fmt.Sprintf("%d active, %d admin", active, admins), "")
		}
		switch {
		case now.Year() < 2025:
			add("clock", now.Format(time.RFC3339), "the system clock is wrong; enable NTP (timedatectl set-ntp true) — expiries and handshakes depend on it")
		case newest.After(now.Add(time.Minute)):
			add("clock", fmt.Sprintf("now %s but a peer was changed at %s", now.Format(time.RFC3339), newest.Format(time.RFC3339)),
				"the clock went backwards; enable NTP (timedatectl set-ntp true)")
		default:
			add("clock", now.UTC().Format(time.RFC3339), "")
		}
	}

	var fsst syscall.Statfs_t
	if err := syscall.Statfs(dir, &fsst); err == nil {
		free := fsst.Bavail * uint64(fsst.Bsize)
		if free < 100<<20 {
			add("disk", mib(free)+" free", "free some disk space: the database, the outbox and the event log need room")
		} else {
			add("disk", mib(free)+" free", "")
		}
	}
	return out
}

// udpPortCheck reports whether the WireGuard port is free, or who holds it.
func udpPortCheck(port int) (string, string, string) {
	name := "udp port"
	c, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
	if err == nil {
		c.Close()
		return name, fmt.Sprintf("%d is free (the appliance is not running)", port), ""
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return name, fmt.Sprintf("%d: %v", port, err), "check that this user may bind the port (ports below 1024 need CAP_NET_BIND_SERVICE)"
	}
	pid, comm := udpOwner(port)
	switch {
	case comm == "waappliance":
		return name, fmt.Sprintf("%d held by waappliance (pid %d): the appliance is running", port, pid), ""
	case pid > 0:
		return name, fmt.Sprintf("%d held by %s (pid %d)", port, comm, pid), "stop that program, or move the appliance with 'waappliance set --listen-port N' and restart it"
	}
	return name, fmt.Sprintf("%d is in use by a process this user cannot see", port), "if it is not waappliance, stop it, or move the appliance with 'waappliance set --listen-port N' and restart it"
}

// udpOwner finds the process holding a UDP port through /proc.
func udpOwner(port int) (int, string) {
	inodes := map[string]bool{}
	hexPort := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && strings.HasSuffix(fs[1], hexPort) {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err == nil && inodes[l] {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return pid, strings.TrimSpace(string(comm))
			}
		}
	}
	return 0, ""
}

func (c *cli) doctor(ctx context.Context, args []string) error {
	fs := c.flags("doctor", "", "Check a configured box: state dir permissions, the UDP port, the endpoint, the clock, free disk.\nPrints what to fix; exit 1 when something needs fixing.")
	state := stateFlag(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	problems := 0
	for _, ch := range Doctor(ctx, *state) {
		if ch.Fix == "" {
			fmt.Fprintf(c.stdout, "ok   %-10s %s\n", ch.Name, ch.Detail)
			continue
		}
		problems++
		fmt.Fprintf(c.stdout, "FIX  %-10s %s\n     -> %s\n", ch.Name, ch.Detail, ch.Fix)
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) to fix", problems)
	}
	fmt.Fprintln(c.stdout, "all checks passed")
	return nil
}

// webVersionCheck shows the WhatsApp web client version the appliance
// announced at its last start (recorded by the engine), beside whatsmeow's
// built-in one.
func webVersionCheck(ctx context.Context, db *store.DB) (string, string, string) {
	name := "web client"
	builtIn := waStore.GetWAVersion().String()
	raw, ok, err := db.Settings().Get(ctx, whatsapp.WebVersionSetting)
	var v whatsapp.WebVersion
	if err != nil || !ok || json.Unmarshal([]byte(raw), &v) != nil || v.InUse == "" {
		return name, "built-in " + builtIn + " (WhatsApp has not been started on this state yet)", ""
	}
	detail := v.InUse + " (" + v.Source
	if v.Source != "built-in" {
		detail += "; built-in " + v.BuiltIn
	}
	if v.CheckedAt != nil {
		detail += "; asked WhatsApp at " + v.CheckedAt.Format(time.RFC3339)
	}
	if v.Error != "" {
		detail += "; asking failed: " + v.Error
	}
	return name, detail + ")", ""
}
