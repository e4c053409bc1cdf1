package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"waappliance/webhooks"
)

func (c *cli) webhook(ctx context.Context, args []string) error {
	return c.dispatch(ctx, args, "Usage: waappliance webhook add|list|show|remove|enable|disable|rotate-secret|test|rewind ...\n\nWebhooks of a running appliance (through its control socket in the state dir).\n",
		map[string]func(context.Context, []string) error{
			"add": c.webhookAdd, "list": c.webhookList, "show": c.webhookShow, "remove": c.webhookID("remove", "DELETE", ""),
			"enable": c.webhookID("enable", "POST", "/enable"), "disable": c.webhookID("disable", "POST", "/disable"),
			"rotate-secret": c.webhookID("rotate-secret", "POST", "/rotate-secret"), "test": c.webhookID("test", "POST", "/test"),
			"rewind": c.webhookRewind,
		})
}

func (c *cli) webhookAdd(ctx context.Context, args []string) error {
	fs := c.flags("webhook add", "PEER URL [--events a,b] [--sessions a,b]", "Subscribe PEER to events at URL, http://<PEER's tunnel address>[:port]/path.\nThe secret is printed once.")
	state := stateFlag(fs)
	evs := fs.String("events", "*", "event types, comma separated, or * for all")
	sess := fs.String("sessions", "", "sessions, comma separated (default: all the peer may read)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want PEER and URL")
	}
	cc, err := dialControl(*state)
	if err != nil {
		return err
	}
	var out webhooks.Created
	body := map[string]any{"peer": pos[0], "url": pos[1], "events": splitList(*evs), "sessions": splitList(*sess)}
	if err := cc.call(ctx, "POST", "/v1/webhooks", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "webhook %d for %s -> %s\nsecret: %s\n", out.ID, out.Peer, out.URL, out.Secret)
	fmt.Fprintf(c.stderr, "the secret is shown only now; verify deliveries with it (Standard Webhooks)\n")
	return nil
}

func (c *cli) webhookList(ctx context.Context, args []string) error {
	cc, _, err := c.controlFor(args, "webhook list", "", "List webhooks.", false)
	if err != nil {
		return err
	}
	var out struct{ Webhooks []webhooks.Subscription }
	if err := cc.call(ctx, "GET", "/v1/webhooks", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPEER\tSTATE\tURL\tCURSOR\tATTEMPTS\tLAST ERROR")
	for _, s := range out.Webhooks {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", s.ID, s.Peer, s.State, s.URL, s.Cursor, s.Attempts, orDash(s.LastError))
	}
	return tw.Flush()
}

func (c *cli) webhookIDArgs(args []string, name, usage, summary string) (*controlClient, string, []string, error) {
	fs := c.flags("webhook "+name, usage, summary)
	state := stateFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, "", nil, err
	}
	if len(pos) < 1 {
		return nil, "", nil, usagef("want a webhook ID")
	}
	if n, err := strconv.ParseInt(pos[0], 10, 64); err != nil || n < 1 {
		return nil, "", nil, usagef("invalid webhook ID %q", pos[0])
	}
	cc, err := dialControl(*state)
	return cc, pos[0], pos[1:], err
}

func (c *cli) webhookShow(ctx context.Context, args []string) error {
	cc, id, rest, err := c.webhookIDArgs(args, "show", "ID", "Show a webhook: state, lag, last success and error, next attempt.")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	var out json.RawMessage
	if err := cc.call(ctx, "GET", "/v1/webhooks/"+id, nil, &out); err != nil {
		return err
	}
	return printJSON(c, out)
}

func printJSON(c *cli, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(c.stdout, "%s\n", b)
	return nil
}

// webhookID is a subcommand that takes one ID and calls method on the
// webhook's path + suffix, printing the answer.
func (c *cli) webhookID(name, method, suffix string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		cc, id, rest, err := c.webhookIDArgs(args, name, "ID", "Webhook "+name+".")
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usagef("unexpected argument %q", rest[0])
		}
		var out json.RawMessage
		if err := cc.call(ctx, method, "/v1/webhooks/"+id+suffix, nil, &out); err != nil {
			return err
		}
		if method == "DELETE" {
			fmt.Fprintf(c.stderr, "webhook %s removed\n", id)
			return nil
		}
		return printJSON(c, out)
	}
}

func (c *cli) webhookRewind(ctx context.Context, args []string) error {
	cc, id, rest, err := c.webhookIDArgs(args, "rewind", "ID AFTER", "Replay every event after the event id AFTER.")
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("want ID and AFTER")
	}
	after, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || after < 0 {
		return usagef("invalid AFTER %q: want an event id", rest[0])
	}
	var out json.RawMessage
	if err := cc.call(ctx, "POST", "/v1/webhooks/"+id+"/rewind", map[string]int64{"after": after}, &out); err != nil {
		return err
	}
	return printJSON(c, out)
}
