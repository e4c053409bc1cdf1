package peers

import "time"

// View is the JSON shape of a peer, shared by the API and the CLI's --json.
type View struct {
	Name          string   `json:"name"`
	PublicKey     string   `json:"public_key"`
	Address       string   `json:"address"`
	Scopes        []string `json:"scopes"`
	Sessions      []string `json:"sessions"`
	Rate          float64  `json:"rate"`
	Burst         int      `json:"burst"`
	SendPerMinute int      `json:"send_per_minute"`
	// MaxConns and MaxStreams are null when the peer has the appliance's
	// default.
	MaxConns   *int       `json:"max_conns"`
	MaxStreams *int       `json:"max_streams"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Disabled   bool       `json:"disabled"`
	// WebhooksExternal: webhooks outside the tunnel are allowed.
	WebhooksExternal bool      `json:"webhooks_external"`
	State            string    `json:"state"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// View returns p's JSON shape at now. Sessions is [] (all) rather than null.
func (p *Peer) View(now time.Time) View {
	v := View{Name: p.Name, PublicKey: p.PublicKey.String(), Address: p.Addr.String(), Scopes: p.ScopeStrings(),
		Sessions: p.Sessions, Rate: p.Rate, Burst: p.Burst, SendPerMinute: p.SendPerMinute, Disabled: p.Disabled, WebhooksExternal: p.WebhooksExternal,
		State: p.State(now), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if n := p.MaxConns; n > 0 {
		v.MaxConns = &n
	}
	if n := p.MaxStreams; n > 0 {
		v.MaxStreams = &n
	}
	if v.Sessions == nil {
		v.Sessions = []string{}
	}
	if !p.ExpiresAt.IsZero() {
		t := p.ExpiresAt
		v.ExpiresAt = &t
	}
	return v
}
