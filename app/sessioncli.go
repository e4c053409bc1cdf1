package app

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"waappliance/peers"
)

func (c *cli) session(ctx context.Context, args []string) error {
	return c.dispatch(ctx, args, "Usage: waappliance session add|list|login|logout|remove [NAME] [flags]\n\nWhatsApp sessions of a running appliance (through its control socket in the state dir).\n",
		map[string]func(context.Context, []string) error{
			"add": c.sessionAdd, "list": c.sessionList, "login": c.sessionLogin, "logout": c.sessionLogout, "remove": c.sessionRemove,
		})
}

// dispatch runs the subcommand args[0] of subs; none, help or an unknown
// one prints usage and exits as the command line promises (2, or 0 for
// help).
func (c *cli) dispatch(ctx context.Context, args []string, usage string, subs map[string]func(context.Context, []string) error) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(c.stderr, usage)
		if len(args) == 0 {
			return usagef("missing subcommand")
		}
		return errHelp
	}
	run, ok := subs[args[0]]
	if !ok {
		return usagef("unknown subcommand %q", args[0])
	}
	return run(ctx, args[1:])
}

func (c *cli) controlFor(args []string, name, usage, summary string, wantName bool) (*controlClient, string, error) {
	fs := c.flags(name, usage, summary)
	state := stateFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, "", err
	}
	n := ""
	if wantName {
		if len(pos) != 1 {
			return nil, "", usagef("want exactly one session NAME")
		}
		n = pos[0]
	} else if len(pos) > 0 {
		return nil, "", usagef("unexpected argument %q", pos[0])
	}
	cc, err := dialControl(*state)
	return cc, n, err
}

func (c *cli) sessionAdd(ctx context.Context, args []string) error {
	cc, name, err := c.controlFor(args, "session add", "NAME", "Create a WhatsApp session.", true)
	if err != nil {
		return err
	}
	if !peers.ValidName(name) {
		return usagef("invalid session name: want [a-z0-9][a-z0-9-]{0,31}")
	}
	if err := cc.call(ctx, "POST", "/v1/sessions", map[string]string{"name": name}, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "session %s created; link it with 'waappliance session login %s'\n", name, name)
	return nil
}

type sessionView struct {
	Name            string     `json:"name"`
	State           string     `json:"state"`
	JID             string     `json:"jid"`
	PushName        string     `json:"push_name"`
	LastConnectedAt *time.Time `json:"last_connected_at"`
	LastError       string     `json:"last_error"`
}

func (c *cli) sessionList(ctx context.Context, args []string) error {
	cc, _, err := c.controlFor(args, "session list", "", "List WhatsApp sessions.", false)
	if err != nil {
		return err
	}
	var out struct{ Sessions []sessionView }
	if err := cc.call(ctx, "GET", "/v1/sessions", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tACCOUNT\tLAST CONNECTED\tLAST ERROR")
	for _, s := range out.Sessions {
		last := "-"
		if s.LastConnectedAt != nil {
			last = s.LastConnectedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, orDash(s.JID), last, orDash(s.LastError))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) sessionGet(ctx context.Context, cc *controlClient, name string) (sessionView, error) {
	var v sessionView
	err := cc.call(ctx, "GET", "/v1/sessions/"+name, nil, &v)
	return v, err
}

func (c *cli) sessionLogin(ctx context.Context, args []string) error {
	fs := c.flags("session login", "NAME [--phone +4915...]", "Link a session: prints the QR code in the terminal, refreshing until paired,\nor with --phone the 8-character code to type on that phone.")
	state := stateFlag(fs)
	phone := fs.String("phone", "", "link by phone number instead of QR (E.164, e.g. +4915123456789)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	name, err := oneName(fs, args)
	if err != nil {
		return err
	}
	cc, err := dialControl(*state)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *phone != "" {
		var pc struct{ Code string }
		if err := cc.call(ctx, "POST", "/v1/sessions/"+name+"/pair-code", map[string]string{"phone": *phone}, &pc); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "On the phone: WhatsApp > Linked devices > Link a device > Link with phone number instead, and enter:\n\n    %s\n\n", pc.Code)
	} else {
		if err := cc.call(ctx, "POST", "/v1/sessions/"+name+"/login", nil, nil); err != nil {
			return err
		}
	}
	lastCode := ""
	for {
		v, err := c.sessionGet(ctx, cc, name)
		if err != nil {
			return err
		}
		switch v.State {
		case "connected", "connecting":
			if v.JID != "" {
				fmt.Fprintf(c.stdout, "linked: session %s is %s as %s\n", name, v.State, v.JID)
				return nil
			}
		case "new", "logged_out":
			if lastCode != "" || *phone != "" {
				return fmt.Errorf("pairing ended: %s", orDash(v.LastError))
			}
		}
		if *phone == "" {
			var q struct{ Code string }
			if err := cc.call(ctx, "GET", "/v1/sessions/"+name+"/qr", nil, &q); err == nil {
				if q.Code != lastCode {
					lastCode = q.Code
					art, _ := peers.TerminalQR(q.Code)
					fmt.Fprintf(c.stdout, "\nScan with WhatsApp > Linked devices > Link a device:\n%s\n", art)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not paired within %v", *timeout)
		case <-time.After(time.Second):
		}
	}
}

func (c *cli) sessionLogout(ctx context.Context, args []string) error {
	cc, name, err := c.controlFor(args, "session logout", "NAME", "Unlink a session's device at WhatsApp (the session stays).", true)
	if err != nil {
		return err
	}
	if err := cc.call(ctx, "POST", "/v1/sessions/"+name+"/logout", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "session %s logged out\n", name)
	return nil
}

func (c *cli) sessionRemove(ctx context.Context, args []string) error {
	cc, name, err := c.controlFor(args, "session remove", "NAME", "Log out and delete a session with its data.", true)
	if err != nil {
		return err
	}
	if err := cc.call(ctx, "DELETE", "/v1/sessions/"+name, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "session %s removed\n", name)
	return nil
}
