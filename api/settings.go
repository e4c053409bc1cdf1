package api

import (
	"context"
	"net/http"

	"waappliance/peers"
)

// statusSetting is the WhatsApp engine's switch for status updates
// (status@broadcast): left out of the event log unless it is on.
type statusSetting interface {
	StatusBroadcasts(ctx context.Context) (bool, error)
	SetStatusBroadcasts(ctx context.Context, on bool) error
}

// settingsJSON is the appliance's settings as GET and PATCH /v1/settings
// show them; never the private key.
type settingsJSON struct {
	PublicKey    string   `json:"public_key"`
	TunnelAddr   string   `json:"tunnel_address"`
	Subnet       string   `json:"subnet"`
	ListenPort   int      `json:"listen_port"`
	MTU          int      `json:"mtu"`
	Endpoint     string   `json:"endpoint"`
	DefaultRate  float64  `json:"default_rate"`
	DefaultBurst int      `json:"default_burst"`
	APIHosts     []string `json:"api_hosts"`
	// StatusBroadcasts: status updates are recorded as message.received
	// (absent without WhatsApp).
	StatusBroadcasts *bool `json:"status_broadcasts,omitempty"`
}

// withEngine adds the settings the WhatsApp engine keeps to j.
func (s *server) withEngine(ctx context.Context, j settingsJSON) (settingsJSON, error) {
	ss, ok := s.wa.(statusSetting)
	if !ok || s.wa == nil {
		return j, nil
	}
	on, err := ss.StatusBroadcasts(ctx)
	if err != nil {
		return j, err
	}
	j.StatusBroadcasts = &on
	return j, nil
}

func toSettingsJSON(s peers.Server) settingsJSON {
	hosts := s.APIHosts
	if hosts == nil {
		hosts = []string{}
	}
	return settingsJSON{PublicKey: s.PublicKey().String(), TunnelAddr: s.TunnelAddr().String(), Subnet: s.Subnet.String(),
		ListenPort: s.ListenPort, MTU: s.MTU, Endpoint: s.Endpoint, DefaultRate: s.DefaultRate, DefaultBurst: s.DefaultBurst,
		APIHosts: hosts}
}

func (s *server) getSettings(w http.ResponseWriter, r *http.Request) error {
	j, err := s.withEngine(r.Context(), toSettingsJSON(s.reg.Server()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// updateSettingsRequest is the body of PATCH /v1/settings; absent fields
// stay as they are. The subnet and the MTU are fixed at init (every peer's
// address and config depend on them): naming them is an unknown field.
type updateSettingsRequest struct {
	// Endpoint is the HOST:PORT clients dial, put into peer configs
	// rendered from now on; "" clears it (configs get a placeholder).
	Endpoint *string `json:"endpoint"`
	// ListenPort is the WireGuard UDP port, used from the next start.
	ListenPort *int `json:"listen_port"`
	// DefaultRate and DefaultBurst apply to peers added from now on
	// without their own.
	DefaultRate  *float64 `json:"default_rate"`
	DefaultBurst *int     `json:"default_burst"`
	// APIHosts replaces the names besides the tunnel address under which
	// the API answers; [] clears them.
	APIHosts *[]string `json:"api_hosts"`
	// StatusBroadcasts turns the recording of status updates on or off.
	StatusBroadcasts *bool `json:"status_broadcasts"`
}

// change checks the request with the rules the command line uses (set)
// and returns it as a registry change.
func (req updateSettingsRequest) change() (peers.ServerChange, error) {
	if req.Endpoint != nil && *req.Endpoint != "" {
		if _, err := peers.ParseEndpoint(*req.Endpoint); err != nil {
			return peers.ServerChange{}, badArg("%v", err)
		}
	}
	if req.ListenPort != nil {
		if err := peers.ValidateListenPort(*req.ListenPort); err != nil {
			return peers.ServerChange{}, badArg("listen_port %d: %v", *req.ListenPort, err)
		}
	}
	if req.DefaultRate != nil {
		if err := peers.ValidateRate(*req.DefaultRate); err != nil {
			return peers.ServerChange{}, err
		}
	}
	if req.DefaultBurst != nil {
		if err := peers.ValidateBurst(*req.DefaultBurst); err != nil {
			return peers.ServerChange{}, err
		}
	}
	return peers.ServerChange{Endpoint: req.Endpoint, ListenPort: req.ListenPort, DefaultRate: req.DefaultRate,
		DefaultBurst: req.DefaultBurst, APIHosts: req.APIHosts}, nil
}

// updateSettings applies a change at once: the registry reloads the
// settings, so the next rendered config, added peer and Host check use
// them (a new listen port waits for the next start).
func (s *server) updateSettings(w http.ResponseWriter, r *http.Request) error {
	var req updateSettingsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch, err := req.change()
	if err != nil {
		return err
	}
	if req.StatusBroadcasts != nil {
		ss, ok := s.wa.(statusSetting)
		if !ok || s.wa == nil {
			return errNoEngine
		}
		if err := ss.SetStatusBroadcasts(r.Context(), *req.StatusBroadcasts); err != nil {
			return err
		}
	}
	if ch == (peers.ServerChange{}) {
		return s.getSettings(w, r)
	}
	srv, err := s.reg.UpdateServer(r.Context(), ch)
	if err != nil {
		return err
	}
	j, err := s.withEngine(r.Context(), toSettingsJSON(srv))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}
