package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"waappliance/peers"
)

func (c *cli) peer(ctx context.Context, args []string) error {
	subs := map[string]func(context.Context, []string) error{
		"add": c.peerAdd, "list": c.peerList, "show": c.peerShow, "remove": c.peerRemove,
		"disable": c.peerDisable, "enable": c.peerEnable, "rotate": c.peerRotate, "config": c.peerConfig,
		"set": c.peerSet,
	}
	if len(args) == 0 {
		return usagef("missing subcommand: add, list, show, set, remove, disable, enable, rotate or config")
	}
	if args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintf(c.stderr, "Usage: waappliance peer add|list|show|set|remove|disable|enable|rotate|config [NAME] [flags]\n")
		return flag.ErrHelp
	}
	run, ok := subs[args[0]]
	if !ok {
		return usagef("unknown subcommand %q", args[0])
	}
	return run(ctx, args[1:])
}

// oneName parses flags and exactly one NAME argument.
func oneName(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("want exactly one peer NAME, got %d arguments", len(pos))
	}
	return pos[0], nil
}

func (c *cli) peerAdd(ctx context.Context, args []string) error {
	fs := c.flags("peer add", "NAME [flags]", "Add a peer and print its wg-quick config on stdout. Without --public-key the keypair is generated\nand the private key is printed this one time, never stored.")
	state := stateFlag(fs)
	scopes := fs.String("scopes", "", "comma separated: admin, sessions, send, read")
	pub := fs.String("public-key", "", "the client's own public key (base64); the config gets a PrivateKey placeholder")
	rate := fs.Float64("rate", 0, fmt.Sprintf("requests per second, %g-%.0f (default: the appliance's, set with init, set or up --rate)", peers.MinRate, peers.MaxRate))
	burst := fs.Int("burst", 0, fmt.Sprintf("burst size, 1-%d (default: the appliance's, set with init, set or up --burst)", peers.MaxBurst))
	sendPM := fs.Int("send-per-minute", 0, fmt.Sprintf("WhatsApp messages this peer may send per minute, 1-1000000 (default %d)", peers.DefaultSendPerMinute))
	caps := addCapFlags(fs)
	expires := fs.Duration("expires", 0, "stop working after this long, e.g. 720h; at most until "+peers.MaxExpiry.Format("2006-01-02")+" (default: never)")
	sessions := fs.String("sessions", "", "comma separated WhatsApp sessions this peer may use (default: all)")
	qr := fs.Bool("qr", false, "also print the config as a terminal QR code (on stderr)")
	external := fs.Bool("webhooks-external", false, "allow this peer webhooks outside the tunnel (https:// to public addresses only)")
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	if !peers.ValidName(name) {
		return usagef("%v", peers.ErrBadName)
	}
	sc, err := peers.ParseScopes(*scopes)
	if err != nil {
		return usagef("--scopes: %v", err)
	}
	// Flags given are checked here, with the registry's own rules, so a bad
	// value is a usage error (exit 2); flags left out mean the defaults.
	set := setFlags(fs)
	if set["rate"] {
		if err := peers.ValidateRate(*rate); err != nil {
			return usagef("--rate: %v", err)
		}
	}
	if set["burst"] {
		if err := peers.ValidateBurst(*burst); err != nil {
			return usagef("--burst: %v", err)
		}
	}
	if set["send-per-minute"] {
		if err := peers.ValidateSendPerMinute(*sendPM); err != nil {
			return usagef("--send-per-minute: %v", err)
		}
	}
	if err := caps.check(set); err != nil {
		return err
	}
	var expiresAt time.Time
	if set["expires"] {
		now := time.Now()
		expiresAt = now.Add(*expires).UTC()
		if err := peers.ValidateExpiry(expiresAt, now); *expires <= 0 || err != nil {
			return usagef("--expires %s: want a positive duration such as 720h, ending before %s", *expires, peers.MaxExpiry.Format("2006-01-02"))
		}
	}
	o := peers.AddOptions{Name: name, Scopes: sc, Rate: *rate, Burst: *burst, SendPerMinute: *sendPM,
		MaxConns: *caps.conns, MaxStreams: *caps.streams, Sessions: splitList(*sessions), ExpiresAt: expiresAt, WebhooksExternal: *external}
	if *pub != "" {
		if o.PublicKey, err = peers.ParseKey(*pub); err != nil {
			return usagef("--public-key: %v", err)
		}
	}
	var cfg string
	if cc := serving(*state); cc != nil {
		if cfg, err = c.addVia(ctx, cc, o); err != nil {
			return peerFailed(name, err)
		}
	} else {
		a, err := openState(ctx, *state)
		if err != nil {
			return err
		}
		defer a.Close()
		cr, err := a.reg.Add(ctx, o)
		if err != nil {
			return err
		}
		cfg = c.printConfig(a.server, cr)
	}
	if *qr {
		q, err := peers.TerminalQR(cfg)
		if err != nil {
			return err
		}
		fmt.Fprint(c.stderr, q)
	}
	return nil
}

// createdAnswer is the part of the API's answer to POST /v1/peers and
// rotate that the command line prints.
type createdAnswer struct {
	Config  string `json:"config"`
	Warning string `json:"warning"`
}

// addVia adds the peer through the serving appliance and prints its config
// as the direct path does: the API renders it with the generated private
// key, returned this once, or the placeholder for --public-key.
func (c *cli) addVia(ctx context.Context, cc *controlClient, o peers.AddOptions) (string, error) {
	req := map[string]any{"name": o.Name, "scopes": (&peers.Peer{Scopes: o.Scopes}).ScopeStrings(), "rate": o.Rate, "burst": o.Burst,
		"send_per_minute": o.SendPerMinute, "max_conns": o.MaxConns, "max_streams": o.MaxStreams, "sessions": o.Sessions, "webhooks_external": o.WebhooksExternal}
	if !o.PublicKey.IsZero() {
		req["public_key"] = o.PublicKey.String()
	}
	if !o.ExpiresAt.IsZero() {
		req["expires_at"] = o.ExpiresAt
	}
	var cr createdAnswer
	if err := cc.call(ctx, "POST", "/v1/peers", req, &cr); err != nil {
		return "", err
	}
	return c.printRendered(cr.Config, cr.Warning != ""), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *cli) peerList(ctx context.Context, args []string) error {
	fs := c.flags("peer list", "[--json]", "List peers.")
	state := stateFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	a, err := openState(ctx, *state)
	if err != nil {
		return err
	}
	defer a.Close()
	now := time.Now()
	list := a.reg.List()
	if *asJSON {
		out := make([]peers.View, len(list))
		for i, p := range list {
			out[i] = p.View(now)
		}
		return json.NewEncoder(c.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tSCOPES\tSESSIONS\tRATE/BURST\tEXPIRES")
	for _, p := range list {
		exp := "never"
		if !p.ExpiresAt.IsZero() {
			exp = p.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%g/%d\t%s\n", p.Name, p.Addr, p.State(now), joinOr(p.ScopeStrings(), "-"), joinOr(p.Sessions, "all"), p.Rate, p.Burst, exp)
	}
	return tw.Flush()
}

func (c *cli) peerShow(ctx context.Context, args []string) error {
	return c.withPeer(ctx, args, c.flags("peer show", "NAME", "Show one peer as JSON."), func(a *Appliance, p peers.Peer) error {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p.View(time.Now()))
	})
}

// withPeer parses fs (plus --state) and one NAME, opens the state and runs
// fn with that peer.
func (c *cli) withPeer(ctx context.Context, args []string, fs *flag.FlagSet, fn func(*Appliance, peers.Peer) error) error {
	state := stateFlag(fs)
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	a, err := openState(ctx, *state)
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := a.reg.Get(name)
	if err != nil {
		return err
	}
	return fn(a, p)
}

// peerChange runs a one-name mutating command: through the serving
// appliance's control socket when one answers (viaAPI: audited as
// local-cli and in force when it returns), else on the store (direct).
// Errors read the same either way (peerFailed); done (nil: nothing) runs
// after either succeeded.
func (c *cli) peerChange(ctx context.Context, args []string, name, summary string, viaAPI func(*controlClient, string) error, direct func(*Appliance, string) error, done func(string)) error {
	fs := c.flags(name, "NAME", summary)
	state := stateFlag(fs)
	n, err := oneName(fs, args)
	if err != nil {
		return err
	}
	if err := c.onPeer(ctx, *state, n, viaAPI, direct); err != nil {
		return err
	}
	if done != nil {
		done(n)
	}
	return nil
}

// onPeer runs viaAPI with the appliance serving dir, or direct on the
// opened state when none does.
func (c *cli) onPeer(ctx context.Context, dir, n string, viaAPI func(*controlClient, string) error, direct func(*Appliance, string) error) error {
	if cc := serving(dir); cc != nil {
		if !peers.ValidName(n) { // no peer has it; and it never goes into a path
			return &peers.PeerError{Op: "control", Name: n, Err: peers.ErrNotFound}
		}
		return peerFailed(n, viaAPI(cc, n))
	}
	a, err := openState(ctx, dir)
	if err != nil {
		return err
	}
	defer a.Close()
	return direct(a, n)
}

func (c *cli) peerRemove(ctx context.Context, args []string) error {
	return c.peerChange(ctx, args, "peer remove", "Remove a peer; its key stops working at once on a running appliance.",
		func(cc *controlClient, n string) error { return cc.call(ctx, "DELETE", "/v1/peers/"+n, nil, nil) },
		func(a *Appliance, n string) error { return a.reg.Remove(ctx, n) },
		func(n string) { fmt.Fprintf(c.stderr, "removed peer %s\n", n) })
}

func (c *cli) peerDisable(ctx context.Context, args []string) error {
	return c.setDisabled(ctx, args, "peer disable", "Disable a peer; its key stops working until enabled again.", true)
}

func (c *cli) peerEnable(ctx context.Context, args []string) error {
	return c.setDisabled(ctx, args, "peer enable", "Enable a disabled peer.", false)
}

func (c *cli) setDisabled(ctx context.Context, args []string, name, summary string, disabled bool) error {
	return c.peerChange(ctx, args, name, summary,
		func(cc *controlClient, n string) error {
			return cc.call(ctx, "PATCH", "/v1/peers/"+n, map[string]bool{"disabled": disabled}, nil)
		},
		func(a *Appliance, n string) error {
			_, err := a.reg.SetDisabled(ctx, n, disabled)
			return err
		},
		func(n string) { fmt.Fprintf(c.stderr, "%sd peer %s\n", strings.TrimPrefix(name, "peer "), n) })
}

func (c *cli) peerRotate(ctx context.Context, args []string) error {
	return c.peerChange(ctx, args, "peer rotate", "Give a peer a new generated key (printed once in its new config); the old key stops working.",
		func(cc *controlClient, n string) error {
			var cr createdAnswer
			if err := cc.call(ctx, "POST", "/v1/peers/"+n+"/rotate", nil, &cr); err != nil {
				return err
			}
			c.printRendered(cr.Config, cr.Warning != "")
			return nil
		},
		func(a *Appliance, n string) error {
			cr, err := a.reg.Rotate(ctx, n)
			if err != nil {
				return err
			}
			c.printConfig(a.server, cr)
			return nil
		}, nil)
}

func (c *cli) peerConfig(ctx context.Context, args []string) error {
	fs := c.flags("peer config", "NAME [--qr]", "Print a peer's config again, with a placeholder instead of the private key.")
	qr := fs.Bool("qr", false, "also print a terminal QR code (on stderr)")
	return c.withPeer(ctx, args, fs, func(a *Appliance, p peers.Peer) error {
		cfg := c.printConfig(a.server, peers.Created{Peer: p})
		if !*qr {
			return nil
		}
		q, err := peers.TerminalQR(cfg)
		if err != nil {
			return err
		}
		fmt.Fprint(c.stderr, q)
		return nil
	})
}

// capFlags are --max-conns and --max-streams, shared by peer add and set.
type capFlags struct{ conns, streams *int }

func addCapFlags(fs *flag.FlagSet) capFlags {
	return capFlags{
		conns:   fs.Int("max-conns", 0, fmt.Sprintf("concurrent TCP connections this peer may hold to the API, 1-%d; 0: the appliance default (serve --peer-max-conns)", peers.MaxPeerConns)),
		streams: fs.Int("max-streams", 0, fmt.Sprintf("concurrent event streams this peer may hold, 1-%d; 0: the appliance default (serve --peer-max-streams)", peers.MaxPeerStreams)),
	}
}

// check validates the cap flags given, with the registry's own rules.
func (f capFlags) check(set map[string]bool) error {
	if set["max-conns"] {
		if err := peers.ValidateMaxConns(*f.conns); err != nil {
			return usagef("--max-conns: %v", err)
		}
	}
	if set["max-streams"] {
		if err := peers.ValidateMaxStreams(*f.streams); err != nil {
			return usagef("--max-streams: %v", err)
		}
	}
	return nil
}

// peerSet changes a peer's limits; through a running appliance they apply
// at once (connection and stream caps count from the next connection or
// stream: nothing already open is cut).
func (c *cli) peerSet(ctx context.Context, args []string) error {
	fs := c.flags("peer set", "NAME [--rate R] [--burst B] [--send-per-minute N] [--max-conns N] [--max-streams N] [--webhooks-external=true|false]",
		"Change a peer's limits; flags left out stay as they are. --max-conns 0 and --max-streams 0 return to the appliance default.")
	state := stateFlag(fs)
	rate := fs.Float64("rate", 0, fmt.Sprintf("requests per second, %g-%.0f", peers.MinRate, peers.MaxRate))
	burst := fs.Int("burst", 0, fmt.Sprintf("burst size, 1-%d", peers.MaxBurst))
	sendPM := fs.Int("send-per-minute", 0, "WhatsApp messages this peer may send per minute, 1-1000000")
	caps := addCapFlags(fs)
	external := fs.Bool("webhooks-external", false, "allow (true) or forbid (false) this peer webhooks outside the tunnel (https:// to public addresses only)")
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	set := setFlags(fs)
	var o peers.UpdateOptions
	if set["webhooks-external"] {
		o.WebhooksExternal = external
	}
	if set["rate"] {
		if err := peers.ValidateRate(*rate); err != nil {
			return usagef("--rate: %v", err)
		}
		o.Rate = rate
	}
	if set["burst"] {
		if err := peers.ValidateBurst(*burst); err != nil {
			return usagef("--burst: %v", err)
		}
		o.Burst = burst
	}
	if set["send-per-minute"] {
		if err := peers.ValidateSendPerMinute(*sendPM); err != nil {
			return usagef("--send-per-minute: %v", err)
		}
		o.SendPerMinute = sendPM
	}
	if err := caps.check(set); err != nil {
		return err
	}
	if set["max-conns"] {
		o.MaxConns = caps.conns
	}
	if set["max-streams"] {
		o.MaxStreams = caps.streams
	}
	if o == (peers.UpdateOptions{}) {
		return usagef("nothing to set: give --rate, --burst, --send-per-minute, --max-conns, --max-streams or --webhooks-external")
	}
	err = c.onPeer(ctx, *state, name,
		func(cc *controlClient, n string) error {
			body := struct {
				Rate          *float64 `json:"rate,omitempty"`
				Burst         *int     `json:"burst,omitempty"`
				SendPerMinute *int     `json:"send_per_minute,omitempty"`
				MaxConns      *int     `json:"max_conns,omitempty"`
				MaxStreams    *int     `json:"max_streams,omitempty"`
				External      *bool    `json:"webhooks_external,omitempty"`
			}{o.Rate, o.Burst, o.SendPerMinute, o.MaxConns, o.MaxStreams, o.WebhooksExternal}
			return cc.call(ctx, "PATCH", "/v1/peers/"+n, body, nil)
		},
		func(a *Appliance, n string) error {
			_, err := a.reg.Update(ctx, n, o)
			return err
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "updated peer %s\n", name)
	return nil
}
