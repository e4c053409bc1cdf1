package api

import (
	"net/http"

	"waappliance/peers"
)

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
	writeJSON(w, http.StatusOK, toSettingsJSON(s.reg.Server()))
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
	if ch == (peers.ServerChange{}) {
		return s.getSettings(w, r)
	}
	srv, err := s.reg.UpdateServer(r.Context(), ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSettingsJSON(srv))
	return nil
}
