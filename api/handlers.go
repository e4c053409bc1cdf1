package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"waappliance/peers"
)

// connectedWindow is how recent a handshake must be for a peer to count as
// connected (WireGuard rekeys every 2 minutes while traffic flows).
const connectedWindow = 3 * time.Minute

func (s *server) health(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{"status": "ok", "version": s.version, "sandbox": s.sandbox}
	if p := PeerFrom(r.Context()); s.wa != nil && p != nil && p.Has(peers.ScopeAdmin) {
		// Admins see which WhatsApp web client version the sessions announce.
		out["whatsapp_web_version"] = s.wa.WebVersion()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// peerJSON is a peer as the API shows it: the shared view plus, in
// listings and lookups, what the device knows.
type peerJSON struct {
	peers.View
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
	RxBytes       *int64     `json:"rx_bytes,omitempty"`
	TxBytes       *int64     `json:"tx_bytes,omitempty"`
	Connected     *bool      `json:"connected,omitempty"`
}

func toPeerJSON(p *peers.Peer, now time.Time) peerJSON { return peerJSON{View: p.View(now)} }

func (s *server) withStats(j *peerJSON, p *peers.Peer, st map[peers.Key]PeerStats, now time.Time) {
	ps := st[p.PublicKey]
	connected := !ps.LastHandshake.IsZero() && now.Sub(ps.LastHandshake) < connectedWindow && p.Active(now)
	j.RxBytes, j.TxBytes, j.Connected = &ps.RxBytes, &ps.TxBytes, &connected
	if !ps.LastHandshake.IsZero() {
		t := ps.LastHandshake
		j.LastHandshake = &t
	}
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	p := PeerFrom(r.Context())
	writeJSON(w, http.StatusOK, struct {
		peerJSON
		Sandbox bool `json:"sandbox"`
	}{toPeerJSON(p, s.reg.Now()), s.sandbox})
	return nil
}

func (s *server) listPeers(w http.ResponseWriter, r *http.Request) error {
	now := s.reg.Now()
	st := s.stats()
	list := s.reg.List()
	out := make([]peerJSON, len(list))
	for i := range list {
		out[i] = toPeerJSON(&list[i], now)
		s.withStats(&out[i], &list[i], st, now)
	}
	writeJSON(w, http.StatusOK, map[string]any{"peers": out})
	return nil
}

func (s *server) getPeer(w http.ResponseWriter, r *http.Request) error {
	p, err := s.reg.Get(pathVar(r, "name"))
	if err != nil {
		return err
	}
	now := s.reg.Now()
	j := toPeerJSON(&p, now)
	s.withStats(&j, &p, s.stats(), now)
	writeJSON(w, http.StatusOK, j)
	return nil
}

// createPeerRequest is the body of POST /v1/peers.
type createPeerRequest struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	PublicKey string     `json:"public_key"`
	Rate      float64    `json:"rate"`
	Burst     int        `json:"burst"`
	SendPM    int        `json:"send_per_minute"`
	MaxConns  int        `json:"max_conns"`
	MaxStream int        `json:"max_streams"`
	ExpiresIn string     `json:"expires_in"`
	ExpiresAt *time.Time `json:"expires_at"`
	Sessions  []string   `json:"sessions"`
	// WebhooksExternal allows webhooks outside the tunnel (https only).
	WebhooksExternal bool `json:"webhooks_external"`
}

type createdJSON struct {
	Peer       peerJSON `json:"peer"`
	Config     string   `json:"config"`
	PrivateKey string   `json:"private_key,omitempty"`
	Warning    string   `json:"warning,omitempty"`
}

func parseScopeList(ss []string) ([]peers.Scope, error) {
	return peers.ParseScopes(strings.Join(ss, ","))
}

func badArg(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "invalid_argument", format, args...)
}

func (s *server) expiry(in string, at *time.Time) (time.Time, error) {
	switch {
	case in != "" && at != nil:
		return time.Time{}, badArg("give expires_in or expires_at, not both")
	case in != "":
		d, err := time.ParseDuration(in)
		if err != nil || d <= 0 {
			return time.Time{}, badArg("expires_in %q: want a positive duration such as \"720h\"", in)
		}
		return s.reg.Now().Add(d).UTC(), nil
	case at != nil:
		return at.UTC(), nil
	}
	return time.Time{}, nil
}

func (s *server) createPeer(w http.ResponseWriter, r *http.Request) error {
	var req createPeerRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	scopes, err := parseScopeList(req.Scopes)
	if err != nil {
		return err
	}
	o := peers.AddOptions{Name: req.Name, Scopes: scopes, Rate: req.Rate, Burst: req.Burst, SendPerMinute: req.SendPM,
		MaxConns: req.MaxConns, MaxStreams: req.MaxStream, Sessions: req.Sessions, WebhooksExternal: req.WebhooksExternal}
	if req.PublicKey != "" {
		if o.PublicKey, err = peers.ParseKey(req.PublicKey); err != nil {
			return badArg("public_key: %v", err)
		}
	}
	if o.ExpiresAt, err = s.expiry(req.ExpiresIn, req.ExpiresAt); err != nil {
		return err
	}
	if req.Rate < 0 || req.Burst < 0 || req.SendPM < 0 {
		return peers.ErrBadLimit
	}
	c, err := s.reg.Add(r.Context(), o)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusCreated, s.created(c))
	return nil
}

func (s *server) created(c peers.Created) createdJSON {
	cfg, placeholder := peers.RenderConfig(s.reg.Server(), c.Peer, c.PrivateKey)
	out := createdJSON{Peer: toPeerJSON(&c.Peer, s.reg.Now()), Config: cfg}
	if !c.PrivateKey.IsZero() {
		out.PrivateKey = c.PrivateKey.String()
	}
	if placeholder {
		out.Warning = "the appliance has no endpoint configured; edit Endpoint in the config"
	}
	return out
}

// updatePeerRequest is the body of PATCH /v1/peers/{name}; absent fields
// stay as they are, "expires_at": null clears the expiry.
type updatePeerRequest struct {
	Scopes    *[]string       `json:"scopes"`
	Sessions  *[]string       `json:"sessions"`
	Rate      *float64        `json:"rate"`
	Burst     *int            `json:"burst"`
	SendPM    *int            `json:"send_per_minute"`
	MaxConns  *int            `json:"max_conns"`
	MaxStream *int            `json:"max_streams"`
	ExpiresIn *string         `json:"expires_in"`
	ExpiresAt json.RawMessage `json:"expires_at"`
	Disabled  *bool           `json:"disabled"`
	// WebhooksExternal allows or forbids webhooks outside the tunnel.
	WebhooksExternal *bool `json:"webhooks_external"`
}

func (s *server) updatePeer(w http.ResponseWriter, r *http.Request) error {
	var req updatePeerRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	var o peers.UpdateOptions
	if req.Scopes != nil {
		sc, err := parseScopeList(*req.Scopes)
		if err != nil {
			return err
		}
		o.Scopes = &sc
	}
	o.Sessions, o.Rate, o.Burst, o.SendPerMinute, o.Disabled = req.Sessions, req.Rate, req.Burst, req.SendPM, req.Disabled
	o.MaxConns, o.MaxStreams = req.MaxConns, req.MaxStream
	o.WebhooksExternal = req.WebhooksExternal
	switch {
	case req.ExpiresIn != nil && req.ExpiresAt != nil:
		return badArg("give expires_in or expires_at, not both")
	case req.ExpiresIn != nil:
		t, err := s.expiry(*req.ExpiresIn, nil)
		if err != nil {
			return err
		}
		o.ExpiresAt = &t
	case string(req.ExpiresAt) == "null":
		o.ExpiresAt = &time.Time{}
	case req.ExpiresAt != nil:
		var t time.Time
		if err := json.Unmarshal(req.ExpiresAt, &t); err != nil {
			return badArg("expires_at: want an RFC 3339 time or null")
		}
		t = t.UTC()
		o.ExpiresAt = &t
	}
	p, err := s.reg.Update(r.Context(), pathVar(r, "name"), o)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusOK, toPeerJSON(&p, s.reg.Now()))
	return nil
}

func (s *server) deletePeer(w http.ResponseWriter, r *http.Request) error {
	if err := s.reg.Remove(r.Context(), pathVar(r, "name")); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) rotatePeer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.reg.Rotate(r.Context(), pathVar(r, "name"))
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusOK, s.created(c))
	return nil
}

// peerConfig returns the peer's config with the private key placeholder: as
// JSON, as text with Accept: text/plain, or as a QR PNG with Accept: image/png.
func (s *server) peerConfig(w http.ResponseWriter, r *http.Request) error {
	p, err := s.reg.Get(pathVar(r, "name"))
	if err != nil {
		return err
	}
	cfg, _ := peers.RenderConfig(s.reg.Server(), p, peers.Key{})
	switch accept := r.Header.Get("Accept"); {
	case strings.Contains(accept, "image/png"):
		png, err := peers.PNGQR(cfg, 512)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	case strings.Contains(accept, "text/plain"):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(cfg))
	default:
		writeJSON(w, http.StatusOK, map[string]string{"name": p.Name, "config": cfg})
	}
	return nil
}

func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var after int64
	limit := 100
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return badArg("after: want a non-negative integer")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return badArg("limit: want an integer from 1 to 1000")
		}
	}
	if s.audit == nil {
		writeJSON(w, http.StatusOK, map[string]any{"entries": []any{}})
		return nil
	}
	es, err := s.audit.List(r.Context(), q.Get("peer"), after, limit)
	if err != nil {
		return err
	}
	next := after
	if len(es) > 0 {
		next = es[len(es)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": es, "next_after": next})
	return nil
}
