package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"waappliance/audit"
	"waappliance/peers"
	"waappliance/store"
	"waappliance/whatsapp"
)

// cli carries the output streams of one command-line run.
type cli struct {
	stdout, stderr io.Writer
}

type command struct {
	name    string
	args    string
	summary string
	run     func(c *cli, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"up", "[init flags] [serve flags]", "init if needed, create the first admin peer and print its config and QR, then serve", (*cli).up},
		{"init", "[--endpoint HOST:PORT] [--listen-port 51820] [--subnet 10.77.0.0/24] [--mtu 1420]", "create the server key and config in the state dir", (*cli).init},
		{"serve", "[--memory-limit SIZE] [--log-level info] [--event-retention 168h] [--audit-retention 2160h] [--media-max-bytes 1GiB]", "run the appliance", (*cli).serve},
		{"set", "[--endpoint HOST:PORT] [--listen-port N] [--rate R] [--burst B] [--api-host NAME,...]", "change the settings of an initialized state", (*cli).set},
		{"peer", "add|list|show|set|remove|disable|enable|rotate|config ...", "manage peers", (*cli).peer},
		{"session", "add|list|login|logout|remove ...", "manage WhatsApp sessions of a running appliance", (*cli).session},
		{"webhook", "add|list|show|remove|enable|disable|rotate-secret|test|rewind ...", "manage webhooks of a running appliance", (*cli).webhook},
		{"audit", "[--peer NAME] [--after ID] [--limit N] [--json]", "show the audit log", (*cli).auditCmd},
		{"migrate", "--to postgres://…|sqlite", "move the stopped appliance's state to another database, keeping every session", (*cli).migrate},
		{"selftest", "", "prove this binary works: a throwaway appliance and client over loopback", (*cli).selftest},
		{"doctor", "[--event-retention 168h]", "check a configured box and print what to fix", (*cli).doctor},
		{"version", "", "print version, commit, Go version and platform", (*cli).version},
	}
}

// Main runs the command line with args (without the program name) and
// returns the process exit code: 0 ok, 1 error, 2 wrong usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "waappliance: missing command (see 'waappliance help')")
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		c.usage(stdout)
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name != args[0] {
			continue
		}
		err := cmd.run(c, ctx, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "waappliance %s: %s (see 'waappliance %s --help')\n", cmd.name, ue.msg, cmd.name)
			return 2
		default:
			fmt.Fprintf(stderr, "waappliance %s: %s\n", cmd.name, describe(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "waappliance: unknown command %q (see 'waappliance help')\n", args[0])
	return 2
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "waappliance — a WhatsApp HTTP API reachable only through its own WireGuard tunnel\n\nUsage: waappliance COMMAND [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cmd := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", cmd.name, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEvery command takes --state DIR (env WAAPPLIANCE_STATE; default %s).\nRun 'waappliance COMMAND --help' for its flags.\n", defaultStateDir())
}

func (c *cli) flags(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: waappliance %s %s\n\n%s\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

func (c *cli) version(ctx context.Context, args []string) error {
	fs := c.flags("version", "", "Print version, commit, Go version and platform.")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, VersionLine())
	return nil
}

// initFlags are shared by init and up.
type initFlags struct {
	endpoint   *string
	listenPort *int
	subnet     *string
	mtu        *int
	rate       *float64
	burst      *int
	apiHost    *string
}

func addInitFlags(fs *flag.FlagSet) initFlags {
	return initFlags{
		endpoint:   fs.String("endpoint", "", "HOST:PORT that clients dial (the server's public address and UDP port);\nwith up or set on an initialized state it replaces the stored one"),
		listenPort: fs.Int("listen-port", peers.DefaultListenPort, "WireGuard UDP port on the host, 1-65535"),
		subnet:     fs.String("subnet", peers.DefaultSubnet.String(), "tunnel subnet, /8 to /30; the appliance takes its first host address (fixed at init)"),
		mtu:        fs.Int("mtu", peers.DefaultMTU, "tunnel MTU, 1280-9000 (fixed at init)"),
		rate:       fs.Float64("rate", peers.DefaultRate, fmt.Sprintf("default per-peer request rate, %g-%.0f requests/second", peers.MinRate, peers.MaxRate)),
		burst:      fs.Int("burst", peers.DefaultBurst, fmt.Sprintf("default per-peer burst, 1-%d", peers.MaxBurst)),
		apiHost:    fs.String("api-host", "", "NAME[,NAME...]: host names or IP addresses, besides the tunnel address, under which\nthe API answers (the Host a request names; no ports); \"\" clears them"),
	}
}

// server checks the flags (wrong values are usage errors, exit 2; an
// explicit 0 is refused rather than read as "the default") and returns the
// settings they describe.
func (f initFlags) server() (peers.Server, error) {
	sub, err := netip.ParsePrefix(*f.subnet)
	if err != nil {
		return peers.Server{}, usagef("--subnet %q: want a prefix such as 10.77.0.0/24", *f.subnet)
	}
	if err := peers.ValidateListenPort(*f.listenPort); err != nil {
		return peers.Server{}, usagef("--listen-port %d: %v", *f.listenPort, err)
	}
	if *f.mtu < 1280 || *f.mtu > 9000 {
		return peers.Server{}, usagef("--mtu %d: want 1280-9000", *f.mtu)
	}
	if err := peers.ValidateRate(*f.rate); err != nil {
		return peers.Server{}, usagef("--rate: %v", err)
	}
	if err := peers.ValidateBurst(*f.burst); err != nil {
		return peers.Server{}, usagef("--burst: %v", err)
	}
	hosts, err := peers.ParseAPIHosts(*f.apiHost)
	if err != nil {
		return peers.Server{}, usagef("--api-host: %v", err)
	}
	s := peers.Server{ListenPort: *f.listenPort, Subnet: sub, MTU: *f.mtu, Endpoint: *f.endpoint, DefaultRate: *f.rate, DefaultBurst: *f.burst, APIHosts: hosts}
	if err := s.Validate(); err != nil {
		return s, usagef("%v", err)
	}
	return s, nil
}

// parse parses args into fs (no positional arguments allowed) and returns
// the settings the init flags describe.
func (f initFlags) parse(fs *flag.FlagSet, args []string) (peers.Server, error) {
	if err := noArgs(fs, args); err != nil {
		return peers.Server{}, err
	}
	return f.server()
}

// setFlags names the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// reconfigure applies the flags given to up or set to an initialized state.
// The endpoint, the listen port and the default rate and burst may change
// (one line on stderr says what changed); the subnet and the MTU are fixed
// at init, because every peer's address and config depend on them.
func (c *cli) reconfigure(ctx context.Context, dir string, dbc DatabaseChoice, want peers.Server, set map[string]bool) (changed bool, err error) {
	db, err := openStateDB(ctx, dir, dbc, nil)
	if err != nil {
		return false, err
	}
	defer db.Close()
	have, err := peers.LoadServer(ctx, db)
	if err != nil {
		return false, err
	}
	ch, what, err := serverChange(dir, have, want, set)
	if err != nil || len(what) == 0 {
		return false, err
	}
	if _, err := peers.UpdateServer(ctx, db, ch); err != nil {
		return false, err
	}
	c.reportChange(dir, what)
	return true, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// initialize creates the state, in the database dbc names for a new one;
// exists reports an already initialized one. A new state's PostgreSQL
// database must hold no state yet (one database, one appliance); its
// link is stored in dir once the state is made.
func initialize(ctx context.Context, dir string, s peers.Server, dbc DatabaseChoice) (exists bool, err error) {
	fresh := !store.HasState(dir)
	var db *store.DB
	if fresh {
		db, err = createStateDB(ctx, dir, dbc.link())
	} else {
		db, err = openStateDB(ctx, dir, dbc, nil)
	}
	if err != nil {
		return false, err
	}
	defer db.Close()
	if _, err := peers.InitServer(ctx, db, s); err != nil {
		if errors.Is(err, peers.ErrAlreadyInitialized) {
			if fresh && dbc.URL != "" {
				return false, fmt.Errorf("database %s already holds a waappliance state; one database serves one appliance: give a new state an empty database (or copy the state dir of the appliance that uses it)", dbc.link())
			}
			return true, nil
		}
		return false, err
	}
	if fresh && dbc.URL != "" {
		if err := store.WriteLink(dir, dbc.link()); err != nil {
			return false, err
		}
	}
	return false, nil
}

func (c *cli) init(ctx context.Context, args []string) error {
	fs := c.flags("init", "[flags]", "Create the server key and config in the state directory. Refuses an initialized state,\nand a non-empty directory that holds no waappliance state.")
	state := stateFlag(fs)
	f := addInitFlags(fs)
	dbf := addDBFlags(fs)
	s, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	exists, err := initialize(ctx, *state, s, dbf.choice())
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("%s is already initialized; refusing to overwrite it (use another --state, or remove the directory to start over)", *state)
	}
	fmt.Fprintf(c.stderr, "initialized %s: tunnel %s, appliance %s, UDP port %d, database %s\n", *state, s.Subnet, s.TunnelAddr(), s.ListenPort, dbf.choice().link())
	if s.Endpoint == "" {
		fmt.Fprintf(c.stderr, "warning: no --endpoint given; peer configs will say Endpoint = %s until you set it with 'waappliance set --endpoint HOST:PORT'\n", peers.EndpointPlaceholder(s.ListenPort))
	}
	fmt.Fprintf(c.stderr, "next: waappliance peer add NAME --scopes admin --state %s\n", *state)
	return nil
}

// serveFlags are shared by serve and up.
type serveFlags struct {
	memLimit       *string
	logLevel       *string
	retention      *time.Duration
	auditRetention *time.Duration
	mediaMax       *string
	sandbox        *sandboxFlag
	limits         limitFlags
	db             dbFlags
}

// sandboxFlag is --sandbox (in-process wasim) or --sandbox=HOST:PORT (a
// standalone wasim).
type sandboxFlag struct{ v string }

func (f *sandboxFlag) String() string   { return f.v }
func (f *sandboxFlag) IsBoolFlag() bool { return true }
func (f *sandboxFlag) Set(s string) error {
	switch s {
	case "true":
		f.v = SandboxInProcess
	case "false", "":
		f.v = ""
	default:
		if _, err := peers.ParseEndpoint(s); err != nil {
			return fmt.Errorf("want --sandbox or --sandbox=HOST:PORT of a standalone wasim: %v", err)
		}
		f.v = s
	}
	return nil
}

func addServeFlags(fs *flag.FlagSet) serveFlags {
	sf := serveFlags{
		memLimit:  fs.String("memory-limit", "", "soft memory limit such as 64MiB (sets the Go runtime's GOMEMLIMIT)"),
		logLevel:  fs.String("log-level", "info", "log level: debug, info, warn, error"),
		retention: fs.Duration("event-retention", 7*24*time.Hour, "how long events are kept"),
		auditRetention: fs.Duration("audit-retention", audit.DefaultRetention,
			"how long audit rows are kept (pruned hourly); refusals are one row per peer, route and status a minute"),
		mediaMax: fs.String("media-max-bytes", "1GiB", "quota of the media store (uploads and downloaded media); the oldest media no queued message needs\nis evicted to make room, and media ages out with --event-retention"),
		sandbox:  &sandboxFlag{},
	}
	sf.limits = addLimitFlags(fs)
	sf.db = addDBFlags(fs)
	fs.Var(sf.sandbox, "sandbox", "sandbox mode: WhatsApp sessions talk to the built-in simulator (wasim), or with =HOST:PORT to a standalone one;\na state dir is bound to its mode the first time it serves")
	return sf
}

func (f serveFlags) apply(stderr io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*f.logLevel)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", *f.logLevel)
	}
	if *f.retention <= 0 {
		return nil, usagef("--event-retention must be positive")
	}
	if *f.auditRetention <= 0 {
		return nil, usagef("--audit-retention must be positive")
	}
	if _, err := parseSize(*f.mediaMax); err != nil {
		return nil, usagef("--media-max-bytes: %v", err)
	}
	if *f.memLimit != "" {
		n, err := parseSize(*f.memLimit)
		if err != nil {
			return nil, usagef("--memory-limit: %v", err)
		}
		debug.SetMemoryLimit(n)
	}
	if _, err := f.limits.parse(); err != nil { // before up initializes anything
		return nil, err
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})), nil
}

func (c *cli) serve(ctx context.Context, args []string) error {
	fs := c.flags("serve", "[flags]", "Run the appliance from an initialized state until SIGINT or SIGTERM.")
	state := stateFlag(fs)
	sf := addServeFlags(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	log, err := sf.apply(c.stderr)
	if err != nil {
		return err
	}
	// First thing: a second serve on this state stops before it touches
	// anything.
	lock, err := store.LockState(*state, false)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return runServe(ctx, *state, log, sf)
}

// runServe serves dir until ctx ends; the caller holds the state's lock.
// A state that group or others may read is refused (the chmod to run is in
// the message).
// noWebVersionCheckEnv, set to 1, keeps serve from asking web.whatsapp.com
// for the current web client version (the test binary sets it: tests never
// reach the internet).
const noWebVersionCheckEnv = "WAAPPLIANCE_NO_WEB_VERSION_CHECK"

func runServe(ctx context.Context, dir string, log *slog.Logger, sf serveFlags) error {
	if err := store.CheckPrivate(dir); err != nil {
		return err
	}
	lim, err := sf.limits.parse()
	if err != nil {
		return err
	}
	mediaMax, _ := parseSize(*sf.mediaMax) // checked by apply
	o := Options{StateDir: dir, Logger: log, Retention: *sf.retention, AuditRetention: *sf.auditRetention, Sandbox: sf.sandbox.v, Limits: lim, Database: sf.db.choice(),
		MediaMaxBytes: mediaMax}
	if o.Sandbox == "" && os.Getenv(noWebVersionCheckEnv) != "1" {
		// Real WhatsApp: ask it for the current web client version (in
		// the background, bounded; offline keeps the built-in one).
		o.LatestWebVersion = whatsapp.LatestWebVersion
	}
	a, err := Open(ctx, o)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return a.Close()
}

// set changes the stored settings of an initialized state, also while serve
// runs: then through its control socket, so the endpoint, the default
// limits and the API hosts apply at once (peer configs rendered from then
// on carry the new endpoint); a new listen port takes effect at its next
// start.
func (c *cli) set(ctx context.Context, args []string) error {
	fs := c.flags("set", "[flags]", "Change the settings of an initialized state: --endpoint, --listen-port, --rate, --burst, --api-host and --status-broadcasts\n(through a running serve the endpoint, limits, API hosts and status broadcasts apply at once; a new listen port at its next start).\n--subnet and --mtu are fixed at init.")
	state := stateFlag(fs)
	f := addInitFlags(fs)
	dbf := addDBFlags(fs)
	statusBroadcasts := fs.String("status-broadcasts", "", "on or off: record status updates (status@broadcast) as message.received events (off by default)")
	s, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	given := setFlags(fs)
	delete(given, "state")
	delete(given, "database")
	delete(given, "database-insecure")
	if len(given) == 0 {
		return usagef("nothing to set: give --endpoint, --listen-port, --rate, --burst, --api-host or --status-broadcasts")
	}
	changed := false
	if given["status-broadcasts"] {
		delete(given, "status-broadcasts")
		var on bool
		switch *statusBroadcasts {
		case "on":
			on = true
		case "off":
		default:
			return usagef("--status-broadcasts %q: want on or off", *statusBroadcasts)
		}
		if changed, err = c.setStatusBroadcasts(ctx, *state, dbf.choice(), on); err != nil {
			return err
		}
	}
	if len(given) > 0 {
		ch, err := c.setSettings(ctx, *state, dbf.choice(), s, given)
		if err != nil {
			return err
		}
		changed = changed || ch
	}
	if !changed {
		fmt.Fprintf(c.stderr, "%s already has these settings\n", *state)
	}
	return nil
}

func (c *cli) up(ctx context.Context, args []string) error {
	fs := c.flags("up", "[flags]", "Initialize the state if needed, create a first peer 'admin' (scope admin) if there is none,\nprint its wg-quick config on stdout and its QR code on stderr, then serve.\nOn an initialized state, --endpoint, --listen-port, --rate, --burst and --api-host replace the stored settings\n(a one-line notice says so); --subnet and --mtu are fixed at init.")
	state := stateFlag(fs)
	f := addInitFlags(fs)
	sf := addServeFlags(fs)
	s, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	log, err := sf.apply(c.stderr)
	if err != nil {
		return err
	}
	// The lock comes first (a missing dir is created 0700 for it); an
	// existing state with loose modes is refused before anything tightens
	// or writes it, while a new or empty dir is made private as before.
	existed := store.HasState(*state)
	lock, err := store.LockState(*state, true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if existed {
		if err := store.CheckPrivate(*state); err != nil {
			return err
		}
	}
	exists, err := initialize(ctx, *state, s, sf.db.choice())
	if err != nil {
		return err
	}
	if !exists {
		fmt.Fprintf(c.stderr, "initialized %s (database %s)\n", *state, sf.db.choice().link())
	} else if _, err := c.reconfigure(ctx, *state, sf.db.choice(), s, setFlags(fs)); err != nil {
		return err
	}
	if err := c.firstAdmin(ctx, *state, sf.db.choice()); err != nil {
		return err
	}
	return runServe(ctx, *state, log, sf)
}

func (c *cli) firstAdmin(ctx context.Context, dir string, dbc DatabaseChoice) error {
	a, err := Open(ctx, Options{StateDir: dir, Database: dbc})
	if err != nil {
		return err
	}
	defer a.Close()
	if len(a.reg.List()) > 0 {
		fmt.Fprintf(c.stderr, "peers exist; not creating an admin peer (see 'waappliance peer list')\n")
		return nil
	}
	cr, err := a.reg.Add(ctx, peers.AddOptions{Name: "admin", Scopes: []peers.Scope{peers.ScopeAdmin}})
	if err != nil {
		return err
	}
	cfg := c.printConfig(a.server, cr)
	qr, err := peers.TerminalQR(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "\nPeer 'admin' created. Its private key is shown only this once.\nScan with the WireGuard app, or save the config above and run 'wg-quick up ./waa.conf':\n\n%s\n", qr)
	fmt.Fprintf(c.stderr, "then: curl http://%s/v1/whoami\n\n", a.server.TunnelAddr())
	return nil
}

// printConfig writes a peer's config on stdout (and the endpoint warning on
// stderr) and returns it.
func (c *cli) printConfig(s peers.Server, cr peers.Created) string {
	return c.printRendered(peers.RenderConfig(s, cr.Peer, cr.PrivateKey))
}

// printRendered is printConfig for a config already rendered (by the
// serving appliance); placeholder says its endpoint is one.
func (c *cli) printRendered(cfg string, placeholder bool) string {
	fmt.Fprint(c.stdout, cfg)
	if placeholder {
		fmt.Fprintf(c.stderr, "warning: no endpoint configured: edit the Endpoint line before use, or set it for every config with 'waappliance set --endpoint HOST:PORT'\n")
	}
	return cfg
}

func (c *cli) auditCmd(ctx context.Context, args []string) error {
	fs := c.flags("audit", "[flags]", "Show the audit log of mutating API requests, oldest first.")
	state := stateFlag(fs)
	peer := fs.String("peer", "", "only this peer's requests")
	after := fs.Int64("after", 0, "only entries with id greater than this")
	limit := fs.Int("limit", 100, "at most this many entries (1-1000)")
	asJSON := fs.Bool("json", false, "print JSON")
	dbf := addDBFlags(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > audit.MaxLimit {
		return usagef("--limit must be 1-%d", audit.MaxLimit)
	}
	db, err := openStateDB(ctx, *state, dbf.choice(), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	es, err := audit.New(db, audit.Options{}).List(ctx, *peer, *after, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(c.stdout).Encode(es)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tPEER\tMETHOD\tROUTE\tTARGET\tSTATUS\tCOUNT")
	for _, e := range es {
		at := e.At.Format(time.RFC3339)
		if e.LastAt != nil { // an aggregated row: the span of its requests
			at += ".." + e.LastAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", e.ID, at, e.Peer, e.Method, e.Route, e.Target, e.Status, e.Count)
	}
	return tw.Flush()
}

// openState opens the appliance state for a CLI command; a missing or
// uninitialized state is store.ErrNotInitialized, and nothing's mode is
// changed.
func openState(ctx context.Context, dir string) (*Appliance, error) {
	return Open(ctx, Options{StateDir: dir, Database: envChoice()})
}

func joinOr(ss []string, empty string) string {
	if len(ss) == 0 {
		return empty
	}
	return strings.Join(ss, ",")
}
