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

	"waappliance/events"
	"waappliance/peers"
	"waappliance/store"
	"waappliance/webhooks"
	"waappliance/whatsapp"
)

// check is one doctor finding; Fix is empty when all is well.
type check struct {
	Name, Detail, Fix string
}

// Doctor inspects a configured state directory, its database and the host
// around it; dbc is what --database asked for (the zero value: the stored
// database).
// retention is serve's --event-retention (0: events.DefaultRetention),
// against which webhook cursors are checked (webhookChecks).
func Doctor(ctx context.Context, dir string, dbc DatabaseChoice, retention time.Duration) []check {
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

	link, err := stateLink(dir, dbc)
	if err != nil {
		add("database", err.Error(), "give no --database (the state's own is stored in it), or move the state with 'waappliance migrate'")
		return out
	}
	db, err := doctorOpen(ctx, dir, link)
	if err != nil {
		fix := "run 'waappliance init' for this state dir"
		if link.URL != "" {
			fix = fmt.Sprintf("check that the database server runs and that %s (the URL in %s) may reach it", link, filepath.Join(dir, store.DatabaseFile))
		}
		add("database", err.Error(), fix)
		return out
	}
	defer db.Close()
	if !dbChecks(ctx, db, link, add) {
		return out
	}
	srv, err := peers.LoadServer(ctx, db)
	if err != nil {
		add("config", err.Error(), fmt.Sprintf("run 'waappliance init --endpoint HOST:PORT --state %s'", dir))
		return out
	}

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
		webhookChecks(ctx, db, reg, retention, now, add)
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

// doctorOpen opens the state's database as it is: PostgreSQL without
// applying migrations (doctor reports them), SQLite as every command opens
// it.
func doctorOpen(ctx context.Context, dir string, link store.Link) (*store.DB, error) {
	if link.URL == "" {
		return store.Open(ctx, dir, false)
	}
	db, err := store.OpenDSN(ctx, link.URL, store.Options{Dir: dir, Insecure: link.Insecure, NoMigrate: true})
	if err != nil {
		return nil, fmt.Errorf("%s is unreachable: %w", link, err)
	}
	return db, nil
}

// MaxClockSkew is how far the database's clock may be from the host's.
const MaxClockSkew = 2 * time.Second

// dbChecks checks the database: reachable, the link's TLS as the rule
// wants it, the migrations current, and on PostgreSQL the clock and the
// durability setting. It reports false when the state cannot be read on.
func dbChecks(ctx context.Context, db *store.DB, link store.Link, add func(name, detail, fix string)) bool {
	if link.URL == "" {
		add("database", db.Path+" (SQLite)", "")
	} else {
		add("database", link.String()+" (reachable)", "")
	}
	applied, embedded, err := db.Migrations(ctx)
	switch {
	case err != nil:
		add("migrations", err.Error(), "this database holds no waappliance state: check the URL, or run 'waappliance init'")
		return false
	case applied < embedded:
		add("migrations", fmt.Sprintf("schema at version %d, this binary's is %d", applied, embedded), "start the appliance ('waappliance serve' migrates the database), or run any command that opens the state")
	case applied > embedded:
		add("migrations", fmt.Sprintf("schema at version %d, newer than this binary's %d", applied, embedded), "a newer waappliance migrated this database: run that version")
	default:
		add("migrations", fmt.Sprintf("current (version %d)", applied), "")
	}
	if db.Dialect != store.Postgres {
		return true
	}
	var ssl bool
	if err := db.QueryRowContext(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil {
		add("db tls", err.Error(), "check that the database role may read pg_stat_ssl")
	} else {
		insecure := errors.Is(store.CheckLink(link.URL), store.ErrInsecureLink)
		switch {
		case insecure && ssl:
			add("db tls", "TLS, but the server's certificate is not verified, to a host that is not loopback (--database-insecure)", "set sslmode=verify-full and sslrootcert=CA in the URL")
		case insecure:
			add("db tls", "NOT ENCRYPTED, to a host that is not loopback (--database-insecure)", "enable ssl on the server and set sslmode=verify-full and sslrootcert=CA in the URL")
		case ssl:
			add("db tls", "TLS, the server verified (or a local link)", "")
		default:
			add("db tls", "not encrypted: a Unix socket or loopback link, which stays on this machine", "")
		}
	}
	var epoch float64
	before := time.Now()
	if err := db.QueryRowContext(ctx, `SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8`).Scan(&epoch); err != nil {
		add("db clock", err.Error(), "")
	} else {
		after := time.Now()
		host := before.Add(after.Sub(before) / 2)
		skew := time.Duration((epoch - float64(host.UnixNano())/1e9) * float64(time.Second))
		if skew.Abs() > MaxClockSkew {
			add("db clock", fmt.Sprintf("the database's clock is %s from this host's", skew.Round(time.Millisecond)), "enable NTP on both machines (timedatectl set-ntp true): expiries, retention and event times depend on it")
		} else {
			add("db clock", fmt.Sprintf("within %s of this host's", skew.Abs().Round(time.Millisecond)), "")
		}
	}
	var sc string
	if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&sc); err != nil {
		add("db commit", err.Error(), "")
	} else if sc == "off" {
		add("db commit", "synchronous_commit is off: a commit the appliance acknowledged (a 202) can be lost in a crash of the server", "set it on: ALTER DATABASE … SET synchronous_commit = on (or in postgresql.conf)")
	} else {
		add("db commit", "synchronous_commit is "+sc, "")
	}
	return true
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
	fs := c.flags("doctor", "", "Check a configured box: state dir permissions, the database (reachable, TLS, migrations, clock, synchronous_commit),\nthe UDP port, the endpoint, the clock, webhook cursors near the end of the event retention, free disk.\nPrints what to fix; exit 1 when something needs fixing.")
	state := stateFlag(fs)
	dbf := addDBFlags(fs)
	retention := fs.Duration("event-retention", events.DefaultRetention, "serve's --event-retention, against which webhook cursors are checked")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *retention <= 0 {
		return usagef("--event-retention must be positive")
	}
	problems := 0
	for _, ch := range Doctor(ctx, *state, dbf.choice(), *retention) {
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

// WebhookLagShare is the share of the event retention past which doctor
// warns of a webhook subscription's oldest undelivered event: at 80% of
// 168 h that leaves about 34 h (past the retry schedule's 27.6 h) before
// the event is pruned and the subscription is disabled ("cursor expired").
const WebhookLagShare = 0.8

// webhookChecks warns of each enabled webhook subscription whose cursor
// fell out of the event retention, or whose oldest undelivered event is
// older than WebhookLagShare of it; one ok line when none is.
func webhookChecks(ctx context.Context, db *store.DB, reg *peers.Registry, retention time.Duration, now time.Time, add func(name, detail, fix string)) {
	if retention <= 0 {
		retention = events.DefaultRetention
	}
	subs, err := webhooks.Backlogs(ctx, db, reg, now)
	if err != nil {
		add("webhooks", err.Error(), "check that the database is readable")
		return
	}
	limit := time.Duration(float64(retention) * WebhookLagShare)
	log := events.New(db, events.Options{Retention: retention, Now: func() time.Time { return now }})
	bad := 0
	for _, s := range subs {
		id := strconv.FormatInt(s.ID, 10)
		_, err := log.List(ctx, events.Filter{After: s.Cursor, HasAfter: true, Limit: 1})
		var exp *events.CursorExpiredError
		if errors.As(err, &exp) {
			bad++
			add("webhooks", fmt.Sprintf("subscription %s of peer %s: its cursor %d fell out of the event retention (oldest event kept: %d); events were lost to it", id, s.Peer, s.Cursor, exp.Oldest),
				fmt.Sprintf("replay what is still kept: 'waappliance webhook rewind %s %d' on the running appliance", id, exp.Oldest-1))
			continue
		}
		if err != nil {
			add("webhooks", err.Error(), "check that the database is readable")
			return
		}
		if s.Lag == nil || s.Lag.OldestAt == nil {
			continue
		}
		age := now.Sub(*s.Lag.OldestAt)
		if age <= limit {
			continue
		}
		bad++
		left := max(0, retention-age)
		why := ""
		if s.LastError != "" {
			why = "; last error: " + s.LastError
		}
		add("webhooks", fmt.Sprintf("subscription %s of peer %s is %d event(s) behind; the oldest undelivered is %s old, over %.0f%% of the event retention %s: it is pruned in %s%s",
			id, s.Peer, s.Lag.Events, age.Round(time.Second), WebhookLagShare*100, retention, left.Round(time.Second), why),
			fmt.Sprintf("bring its receiver up (see 'waappliance webhook show %s'), or start serve with a longer --event-retention", id))
	}
	if bad == 0 {
		add("webhooks", fmt.Sprintf("%d enabled, none behind by more than %.0f%% of the event retention %s", len(subs), WebhookLagShare*100, retention), "")
	}
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
