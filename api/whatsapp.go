package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"waappliance/events"
	"waappliance/peers"
	"waappliance/whatsapp"
)

// Engine is the subset of *whatsapp.Engine the API uses; an interface so
// the routes can be served without WhatsApp in tunnel-only tests.
type Engine interface {
	Create(ctx context.Context, name string) (whatsapp.SessionInfo, error)
	List(ctx context.Context) ([]whatsapp.SessionInfo, error)
	Get(ctx context.Context, name string) (whatsapp.SessionInfo, error)
	Login(ctx context.Context, name string) error
	QR(name string) (string, time.Time, error)
	PairCode(ctx context.Context, name, phone string) (string, error)
	Logout(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
	Send(ctx context.Context, session string, req whatsapp.SendRequest) (whatsapp.Message, bool, error)
	Replay(ctx context.Context, session string, req whatsapp.SendRequest) (whatsapp.Message, bool, error)
	Message(ctx context.Context, session, id string) (whatsapp.Message, error)
	MarkRead(ctx context.Context, session, chat string, ids []string) error
	ChatPresence(ctx context.Context, session, chat, state string) error
	WebVersion() whatsapp.WebVersion
}

// EventLog is the subset of *events.Log the API uses.
type EventLog interface {
	List(ctx context.Context, f events.Filter) ([]events.Event, error)
	Changed() <-chan struct{}
	// Newer is false when no event after the cursor was appended, so a
	// woken stream can skip its query.
	Newer(after int64) bool
}

var errNoEngine = errorf(http.StatusServiceUnavailable, "unavailable", "WhatsApp is not running on this appliance")

// sessionFor returns the {session} path variable after checking the peer's
// allow-list: a session outside it is reported exactly like a missing one.
func (s *server) sessionFor(r *http.Request) (string, error) {
	name := pathVar(r, "session")
	if !PeerFrom(r.Context()).AllowsSession(name) {
		return "", fmt.Errorf("%w: %q", whatsapp.ErrSessionNotFound, name)
	}
	return name, nil
}

func (s *server) createSession(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !PeerFrom(r.Context()).AllowsSession(req.Name) {
		return errorf(http.StatusForbidden, "forbidden", "session %q is outside this peer's session allow-list", req.Name)
	}
	si, err := s.wa.Create(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, si)
	return nil
}

func (s *server) listSessions(w http.ResponseWriter, r *http.Request) error {
	all, err := s.wa.List(r.Context())
	if err != nil {
		return err
	}
	p := PeerFrom(r.Context())
	out := []whatsapp.SessionInfo{}
	for _, si := range all {
		if p.AllowsSession(si.Name) {
			out = append(out, si)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// sessionAction runs act on the allowed {session} (nil: none) and answers
// with the session's state.
func (s *server) sessionAction(status int, act func(ctx context.Context, name string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, err := s.sessionFor(r)
		if err != nil {
			return err
		}
		if act != nil {
			if err := act(r.Context(), name); err != nil {
				return err
			}
		}
		si, err := s.wa.Get(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, status, si)
		return nil
	}
}

func (s *server) getSession(w http.ResponseWriter, r *http.Request) error {
	return s.sessionAction(http.StatusOK, nil)(w, r)
}

func (s *server) loginSession(w http.ResponseWriter, r *http.Request) error {
	return s.sessionAction(http.StatusAccepted, s.wa.Login)(w, r)
}

// sessionQR returns the current code as JSON, or as a PNG with Accept: image/png.
func (s *server) sessionQR(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	if _, err := s.wa.Get(r.Context(), name); err != nil {
		return err
	}
	code, exp, err := s.wa.QR(name)
	if err != nil {
		return err
	}
	if strings.Contains(r.Header.Get("Accept"), "image/png") {
		png, err := peers.PNGQR(code, 512)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": code, "expires_at": exp.UTC()})
	return nil
}

func (s *server) pairCode(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	var req struct {
		Phone string `json:"phone"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if _, err := whatsapp.NormalizePhone(req.Phone); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 40*time.Second)
	defer cancel()
	code, err := s.wa.PairCode(ctx, name, req.Phone)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"code": code, "session": name})
	return nil
}

func (s *server) logoutSession(w http.ResponseWriter, r *http.Request) error {
	return s.sessionAction(http.StatusOK, s.wa.Logout)(w, r)
}

func (s *server) deleteSession(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	if err := s.wa.Delete(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sendRequest is the JSON of a send: to, reply_to and exactly one
// content field (the kinds, in whatsapp.Kinds order).
type sendRequest struct {
	To          string                    `json:"to"`
	ReplyTo     string                    `json:"reply_to"`
	Text        *string                   `json:"text"`
	Mentions    []string                  `json:"mentions"`
	LinkPreview *bool                     `json:"link_preview"`
	Image       *whatsapp.ImageContent    `json:"image"`
	Video       *whatsapp.VideoContent    `json:"video"`
	Audio       *whatsapp.AudioContent    `json:"audio"`
	Document    *whatsapp.DocumentContent `json:"document"`
	Sticker     *whatsapp.StickerContent  `json:"sticker"`
	Location    *whatsapp.LocationContent `json:"location"`
	Contacts    *whatsapp.ContactsContent `json:"contacts"`
	Poll        *whatsapp.PollContent     `json:"poll"`
	Reaction    *whatsapp.ReactionContent `json:"reaction"`
	Edit        *whatsapp.EditContent     `json:"edit"`
	Delete      *whatsapp.DeleteContent   `json:"delete"`
}

// content is the one content field of req as a whatsapp.Content; none or
// more than one is a 400 naming what came.
func (req *sendRequest) content() (whatsapp.Content, error) {
	c := whatsapp.Content{Image: req.Image, Video: req.Video, Audio: req.Audio, Document: req.Document, Sticker: req.Sticker,
		Location: req.Location, Contacts: req.Contacts, Poll: req.Poll, Reaction: req.Reaction, Edit: req.Edit, Delete: req.Delete}
	if req.Text != nil {
		c.Text = &whatsapp.TextContent{Body: *req.Text, Mentions: req.Mentions}
	}
	present := map[string]bool{
		whatsapp.KindText: c.Text != nil, whatsapp.KindImage: c.Image != nil, whatsapp.KindVideo: c.Video != nil,
		whatsapp.KindAudio: c.Audio != nil, whatsapp.KindDocument: c.Document != nil, whatsapp.KindSticker: c.Sticker != nil,
		whatsapp.KindLocation: c.Location != nil, whatsapp.KindContacts: c.Contacts != nil, whatsapp.KindPoll: c.Poll != nil,
		whatsapp.KindReaction: c.Reaction != nil, whatsapp.KindEdit: c.Edit != nil, whatsapp.KindDelete: c.Delete != nil,
	}
	var got []string
	for _, k := range whatsapp.Kinds {
		if present[k] {
			got = append(got, k)
		}
	}
	if len(got) != 1 {
		seen := "none"
		if len(got) > 0 {
			seen = strings.Join(got, ", ")
		}
		return c, badArg("exactly one of %s; got %s", strings.Join(whatsapp.Kinds, ", "), seen)
	}
	c.Kind = got[0]
	if req.Mentions != nil && c.Kind != whatsapp.KindText {
		return c, badArg("mentions: only with text")
	}
	if req.LinkPreview != nil && *req.LinkPreview {
		return c, badArg("link_preview: not supported (whatsmeow builds no link previews, and the appliance does not fetch URLs); leave it out or false")
	}
	if req.ReplyTo != "" {
		c.ReplyTo = &whatsapp.MessageRef{ID: req.ReplyTo}
	}
	return c, nil
}

// sendMessage commits the message to the outbox and answers 202 only then.
func (s *server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	var req sendRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	content, err := req.content()
	if err != nil {
		return err
	}
	p := PeerFrom(r.Context())
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 200 {
		return badArg("Idempotency-Key: at most 200 characters")
	}
	if err := cleanNames("Idempotency-Key", key, "to", req.To, "reply_to", req.ReplyTo, "message", targetID(content), "media", content.MediaID()); err != nil {
		return err
	}
	sr := whatsapp.SendRequest{To: req.To, Content: content, Peer: p.Name, IdempotencyKey: key}
	// A replay is answered first, with the original message, whatever the
	// session's state and without spending the message budget.
	if m, ok, err := s.wa.Replay(r.Context(), name, sr); err != nil {
		return err
	} else if ok {
		writeReplay(w, m)
		return nil
	}
	if d := s.sendLimits.allow(p, s.reg); !d.OK {
		return &apiError{Status: http.StatusTooManyRequests, Code: "send_rate_limited",
			Message: fmt.Sprintf("message limit of %d per minute exceeded; retry later", p.SendPerMinute),
			Header:  http.Header{"Retry-After": {strconv.Itoa(max(1, ceilSeconds(d.RetryAfter)))}}}
	}
	m, created, err := s.wa.Send(r.Context(), name, sr)
	if err != nil {
		return err
	}
	if !created {
		writeReplay(w, m) // a concurrent request with the same key won
		return nil
	}
	writeJSON(w, http.StatusAccepted, m)
	return nil
}

// targetID is the message id a reaction, edit or delete names ("" else).
func targetID(c whatsapp.Content) string {
	switch {
	case c.Reaction != nil:
		return c.Reaction.Message
	case c.Edit != nil:
		return c.Edit.Message
	case c.Delete != nil:
		return c.Delete.Message
	}
	return ""
}

func writeReplay(w http.ResponseWriter, m whatsapp.Message) {
	w.Header().Set("Idempotent-Replayed", "true")
	writeJSON(w, http.StatusOK, m)
}

// sendBudget is the per-peer messages-per-minute limit. Whenever the
// registry changed, it drops the buckets of keys no peer has any more
// (peers removed, keys rotated), so buckets do not pile up.
type sendBudget struct {
	lim *peers.Limiters

	mu  sync.Mutex
	gen int64 // registry generation of the last sweep
}

func newSendBudget(now func() time.Time) *sendBudget {
	return &sendBudget{lim: peers.NewLimiters(now), gen: -1}
}

func (b *sendBudget) allow(p *peers.Peer, reg *peers.Registry) peers.Decision {
	b.sweep(reg)
	return b.lim.Allow(p.PublicKey, float64(p.SendPerMinute)/60, p.SendPerMinute)
}

// sweep walks the peers only when the registry's generation moved.
func (b *sendBudget) sweep(reg *peers.Registry) {
	if reg == nil {
		return
	}
	gen := reg.Generation()
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen == b.gen {
		return
	}
	b.gen = gen
	live := map[peers.Key]bool{}
	for _, p := range reg.List() {
		live[p.PublicKey] = true
	}
	b.lim.Retain(func(k peers.Key) bool { return live[k] })
}

func (s *server) getMessage(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	m, err := s.wa.Message(r.Context(), name, pathVar(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// eventFilter builds the filter from ?session=, ?after=, ?limit= and the
// peer's allow-list.
func (s *server) eventFilter(r *http.Request, after string) (events.Filter, error) {
	q := r.URL.Query()
	p := PeerFrom(r.Context())
	f := events.Filter{Limit: 100, SessionsOnly: !p.Has(peers.ScopeAdmin)}
	if len(p.Sessions) > 0 {
		f.Sessions = slices.Clone(p.Sessions)
	}
	if sess := q.Get("session"); sess != "" {
		if !p.AllowsSession(sess) {
			return f, fmt.Errorf("%w: %q", whatsapp.ErrSessionNotFound, sess)
		}
		f.Sessions = []string{sess}
	}
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return f, badArg("after: want a non-negative event id")
		}
		f.After, f.HasAfter = n, true
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > events.MaxLimit {
			return f, badArg("limit: want an integer from 1 to %d", events.MaxLimit)
		}
		f.Limit = n
	}
	return f, nil
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := s.eventFilter(r, r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	es, err := s.ev.List(r.Context(), f)
	if err != nil {
		return err
	}
	next := f.After
	if len(es) > 0 {
		next = es[len(es)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": es, "next_after": next})
	return nil
}

// heartbeat keeps SSE streams alive through NAT and proxies.
var heartbeat = 15 * time.Second

// streamEvents is a Server-Sent Events stream with id: lines; it resumes
// from Last-Event-ID (or ?after=) and sends a comment line as heartbeat.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request) error {
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	f, err := s.eventFilter(r, after)
	if err != nil {
		return err
	}
	f.Limit = 500
	release, err := s.streams.acquire(PeerFrom(r.Context()))
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	fl, err := events.Follow(ctx, s.ev, f) // validates the cursor before the stream starts
	if err != nil {
		return err
	}
	// Registered before the client sees a byte: a Shutdown that begins
	// after the client saw the stream start then always ends it.
	closing := s.shutdowns.of(r)
	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream") // Cache-Control: no-store, as on every answer (guard.go)
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": waappliance event stream\nretry: 2000\n\n")
	if flusher != nil {
		flusher.Flush()
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case batch, ok := <-fl.C:
			if !ok {
				return nil // a read failed: the client resumes from its Last-Event-ID
			}
			for _, e := range batch {
				b, _ := json.Marshal(e)
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b); err != nil {
					return nil
				}
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-ctx.Done():
			return nil
		case <-closing:
			return nil // the client resumes from its Last-Event-ID
		case <-tick.C:
			if _, err := fmt.Fprintf(w, ": ping\n\n"); err != nil {
				return nil
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// cursorExpired turns events' 410 into the API error with the oldest id.
func cursorExpired(err error) (*apiError, bool) {
	var ce *events.CursorExpiredError
	if !errors.As(err, &ce) {
		return nil, false
	}
	return &apiError{Status: http.StatusGone, Code: "cursor_expired", Message: ce.Error(), Err: err,
		Header: http.Header{"X-Oldest-Event-Id": {strconv.FormatInt(ce.Oldest, 10)}}}, true
}
