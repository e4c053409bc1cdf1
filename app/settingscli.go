package app

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"waappliance/peers"
	"waappliance/store"
	"waappliance/whatsapp"
)

// serverChange compares the settings given to up or set (want, with the
// flags named in set) with those of the state dir (have). It returns the
// change and one phrase per changed setting (none: nothing to do), or an
// error for the settings fixed at init.
func serverChange(dir string, have, want peers.Server, set map[string]bool) (peers.ServerChange, []string, error) {
	var ch peers.ServerChange
	if set["subnet"] && want.Subnet != have.Subnet {
		return ch, nil, fmt.Errorf("--subnet %s: %s was initialized with subnet %s, which is fixed at init (peer addresses depend on it); use another --state to start over", want.Subnet, dir, have.Subnet)
	}
	if set["mtu"] && want.MTU != have.MTU {
		return ch, nil, fmt.Errorf("--mtu %d: %s was initialized with MTU %d, which is fixed at init (every peer's config has it); use another --state to start over", want.MTU, dir, have.MTU)
	}
	var what []string
	if set["endpoint"] && want.Endpoint != have.Endpoint {
		ch.Endpoint = &want.Endpoint
		what = append(what, fmt.Sprintf("endpoint %s (was %s)", orNone(want.Endpoint), orNone(have.Endpoint)))
	}
	if set["listen-port"] && want.ListenPort != have.ListenPort {
		ch.ListenPort = &want.ListenPort
		what = append(what, fmt.Sprintf("listen port %d (was %d)", want.ListenPort, have.ListenPort))
	}
	if set["rate"] && want.DefaultRate != have.DefaultRate {
		ch.DefaultRate = &want.DefaultRate
		what = append(what, fmt.Sprintf("default rate %g (was %g)", want.DefaultRate, have.DefaultRate))
	}
	if set["burst"] && want.DefaultBurst != have.DefaultBurst {
		ch.DefaultBurst = &want.DefaultBurst
		what = append(what, fmt.Sprintf("default burst %d (was %d)", want.DefaultBurst, have.DefaultBurst))
	}
	if set["api-host"] && !slices.Equal(want.APIHosts, have.APIHosts) {
		hosts := want.APIHosts
		if hosts == nil {
			hosts = []string{} // "[]" clears; JSON null would mean "unchanged"
		}
		ch.APIHosts = &hosts
		what = append(what, fmt.Sprintf("API hosts %s (was %s)", joinOr(want.APIHosts, "none"), joinOr(have.APIHosts, "none")))
	}
	return ch, what, nil
}

// reportChange is the one line up and set print after changing settings.
func (c *cli) reportChange(dir string, what []string) {
	fmt.Fprintf(c.stderr, "updated %s: %s\n", dir, strings.Join(what, ", "))
}

// setSettings is set's change of the settings: through the serving
// appliance's control socket when one answers (PATCH /v1/settings: audited
// as local-cli, in force when it returns, a new listen port at the next
// start), else on the store.
func (c *cli) setSettings(ctx context.Context, dir string, dbc DatabaseChoice, want peers.Server, set map[string]bool) (bool, error) {
	cc := serving(dir)
	if cc == nil {
		return c.reconfigure(ctx, dir, dbc, want, set)
	}
	// What is stored, read as the direct path reads it: the serving
	// registry keeps the listen port it runs on, not a new one stored for
	// its next start.
	have, err := storedServer(ctx, dir, dbc)
	if err != nil {
		return false, err
	}
	ch, what, err := serverChange(dir, have, want, set)
	if err != nil || len(what) == 0 {
		return false, err
	}
	patch := struct {
		Endpoint     *string   `json:"endpoint,omitempty"`
		ListenPort   *int      `json:"listen_port,omitempty"`
		DefaultRate  *float64  `json:"default_rate,omitempty"`
		DefaultBurst *int      `json:"default_burst,omitempty"`
		APIHosts     *[]string `json:"api_hosts,omitempty"`
	}{ch.Endpoint, ch.ListenPort, ch.DefaultRate, ch.DefaultBurst, ch.APIHosts}
	if err := cc.call(ctx, "PATCH", "/v1/settings", patch, nil); err != nil {
		return false, err
	}
	c.reportChange(dir, what)
	return true, nil
}

// storedServer reads the settings stored in dir.
func storedServer(ctx context.Context, dir string, dbc DatabaseChoice) (peers.Server, error) {
	db, err := openStateDB(ctx, dir, dbc, nil)
	if err != nil {
		return peers.Server{}, err
	}
	defer db.Close()
	return peers.LoadServer(ctx, db)
}

// setStatusBroadcasts is set --status-broadcasts: through the serving
// appliance's control socket when one answers (PATCH /v1/settings, in
// force for the next status update), else on the store.
func (c *cli) setStatusBroadcasts(ctx context.Context, dir string, dbc DatabaseChoice, on bool) (bool, error) {
	word := map[bool]string{true: "on", false: "off"}
	if cc := serving(dir); cc != nil {
		var have struct {
			StatusBroadcasts *bool `json:"status_broadcasts"`
		}
		if err := cc.call(ctx, "GET", "/v1/settings", nil, &have); err != nil {
			return false, err
		}
		if have.StatusBroadcasts != nil && *have.StatusBroadcasts == on {
			return false, nil
		}
		if err := cc.call(ctx, "PATCH", "/v1/settings", map[string]bool{"status_broadcasts": on}, nil); err != nil {
			return false, err
		}
		c.reportChange(dir, []string{"status broadcasts " + word[on] + " (was " + word[!on] + ")"})
		return true, nil
	}
	db, err := openStateDB(ctx, dir, dbc, nil)
	if err != nil {
		return false, err
	}
	defer db.Close()
	v, _, err := db.Settings().Get(ctx, whatsapp.StatusBroadcastsSetting)
	if err != nil {
		return false, err
	}
	if have, _ := strconv.ParseBool(v); have == on {
		return false, nil
	}
	if err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return store.SettingsOf(tx).Set(ctx, whatsapp.StatusBroadcastsSetting, strconv.FormatBool(on))
	}); err != nil {
		return false, err
	}
	c.reportChange(dir, []string{"status broadcasts " + word[on] + " (was " + word[!on] + ")"})
	return true, nil
}
