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
// stay as they are.
type updateSettingsRequest struct {
	// APIHosts replaces the names besides the tunnel address under which
	// the API answers; [] clears them.
	APIHosts *[]string `json:"api_hosts"`
}

func (s *server) updateSettings(w http.ResponseWriter, r *http.Request) error {
	var req updateSettingsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.APIHosts == nil {
		return s.getSettings(w, r)
	}
	srv, err := s.reg.UpdateServer(r.Context(), peers.ServerChange{APIHosts: req.APIHosts})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSettingsJSON(srv))
	return nil
}
