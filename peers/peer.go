// Package peers owns the appliance's peers: the model, the durable registry,
// unique tunnel addresses, scopes, per-peer rate limiters, and the wg-quick
// configs (and QR codes) handed to clients.
package peers

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Scope is a capability granted to a peer.
type Scope string

// The fixed set of scopes. ScopeAdmin implies every other scope.
const (
	ScopeAdmin    Scope = "admin"
	ScopeSessions Scope = "sessions"
	ScopeSend     Scope = "send"
	ScopeRead     Scope = "read"
)

// AllScopes lists every scope in a stable order.
var AllScopes = []Scope{ScopeAdmin, ScopeSessions, ScopeSend, ScopeRead}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ValidName reports whether s is a valid peer (or session) name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ParseScopes parses a comma separated scope list such as "send,read".
// Duplicates are removed; the empty string is an empty list.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		sc := Scope(f)
		if !slices.Contains(AllScopes, sc) {
			return nil, fmt.Errorf("%w %q (known: admin, sessions, send, read)", ErrBadScope, f)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// Peer is one WireGuard key allowed to reach the API.
type Peer struct {
	Name         string
	PublicKey    Key
	PresharedKey Key
	Addr         netip.Addr
	Scopes       []Scope
	// Sessions is the WhatsApp session allow-list; empty means all sessions.
	Sessions []string
	// Rate is the sustained request rate (requests per second); Burst the bucket size.
	Rate  float64
	Burst int
	// SendPerMinute is the separate budget for WhatsApp messages sent.
	SendPerMinute int
	// MaxConns caps the peer's concurrent TCP connections to the API and
	// MaxStreams its concurrent event streams; 0 means the appliance's
	// default.
	MaxConns   int
	MaxStreams int
	// ExpiresAt is when the peer stops working; zero means never.
	ExpiresAt time.Time
	Disabled  bool
	// WebhooksExternal: the peer may subscribe webhooks to https:// URLs
	// outside the tunnel (an admin's decision; false by default).
	WebhooksExternal bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Has reports whether the peer holds scope s (admin holds every scope).
func (p *Peer) Has(s Scope) bool {
	return slices.Contains(p.Scopes, ScopeAdmin) || slices.Contains(p.Scopes, s)
}

// Active reports whether the peer may connect at now: enabled and not expired.
func (p *Peer) Active(now time.Time) bool {
	return !p.Disabled && (p.ExpiresAt.IsZero() || now.Before(p.ExpiresAt))
}

// AllowsSession reports whether the peer may use the WhatsApp session name.
func (p *Peer) AllowsSession(name string) bool {
	return len(p.Sessions) == 0 || slices.Contains(p.Sessions, name)
}

// ScopeStrings returns the scopes as plain strings.
func (p *Peer) ScopeStrings() []string {
	out := make([]string, len(p.Scopes))
	for i, s := range p.Scopes {
		out[i] = string(s)
	}
	return out
}

// State is a human word for the peer's state at now.
func (p *Peer) State(now time.Time) string {
	switch {
	case p.Disabled:
		return "disabled"
	case !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt):
		return "expired"
	}
	return "enabled"
}
