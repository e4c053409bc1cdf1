package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"waappliance/api"
	"waappliance/internal/wasim"
	"waappliance/whatsapp"
)

// SandboxDB is the built-in simulator's state in the state dir, so sandbox
// accounts and contacts survive a restart of the appliance.
const SandboxDB = "sandbox-wasim.db"

// sandbox connects the appliance's WhatsApp sessions to wasim (built in, or
// standalone through its control API) and plays the other side for the
// /v1/sandbox routes.
type sandbox struct {
	be      wasim.Backend
	local   *wasim.Server // nil with a standalone wasim
	prepare func(*whatsmeow.Client)
	wa      *whatsapp.Engine
}

func startSandbox(ctx context.Context, stateDir, where string, log *slog.Logger) (*sandbox, error) {
	if where != SandboxInProcess {
		r, err := wasim.Dial(ctx, where)
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		return &sandbox{be: r, prepare: r.Prepare}, nil
	}
	// In memory: the host keeps seeing one UDP port and nothing else; the
	// clients that Prepare hands out are the only way in.
	srv, err := wasim.New(ctx, wasim.Options{Logger: log, DBPath: filepath.Join(stateDir, SandboxDB), InMemory: true})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return &sandbox{be: srv, local: srv, prepare: srv.Prepare}, nil
}

func (s *sandbox) withEngine(wa *whatsapp.Engine) api.Sandbox {
	s.wa = wa
	return s
}

func (s *sandbox) close() { s.be.Close() }

func (s *sandbox) Scan(ctx context.Context, session, phone string) error {
	num, err := whatsapp.NormalizePhone(phone)
	if err != nil {
		return err
	}
	code, _, err := s.wa.QR(session)
	if err != nil {
		return err
	}
	return s.be.Scan(ctx, num, code)
}

func (s *sandbox) AddContact(ctx context.Context, c api.SandboxContact) (api.SandboxContact, error) {
	num, err := whatsapp.NormalizePhone(c.Phone)
	if err != nil {
		return c, err
	}
	readAfter := time.Second
	switch c.ReadAfter {
	case "":
		c.ReadAfter = "1s"
	case "never":
		readAfter = -1
	default:
		d, err := time.ParseDuration(c.ReadAfter)
		if err != nil || d < 0 || d > time.Hour {
			return c, fmt.Errorf("%w: read_after %q: want a duration such as 2s, or never", api.ErrSandboxBadRequest, c.ReadAfter)
		}
		readAfter = d
	}
	if err := s.be.AddContact(ctx, num, c.Name, readAfter); err != nil {
		return c, err
	}
	c.Phone = "+" + num
	return c, nil
}

func notFound(err error, phone string) error {
	if errors.Is(err, wasim.ErrNotFound) {
		return fmt.Errorf("%w: no sandbox contact %s (create it with POST /v1/sandbox/contacts)", api.ErrSandboxNotFound, phone)
	}
	return err
}

// ContactSend makes a contact send m (checked by the API: one content
// field, media within api.SandboxMaxMedia) to the session's account.
func (s *sandbox) ContactSend(ctx context.Context, phone string, m api.SandboxMessage) (string, error) {
	num, err := whatsapp.NormalizePhone(phone)
	if err != nil {
		return "", err
	}
	if m.Text != nil && strings.TrimSpace(*m.Text) == "" {
		return "", whatsapp.ErrEmptyText
	}
	o, err := outgoing(m)
	if err != nil {
		return "", err
	}
	si, err := s.wa.Get(ctx, m.Session)
	if err != nil {
		return "", err
	}
	if si.JID == "" {
		return "", whatsapp.ErrNotPaired
	}
	to, err := types.ParseJID(si.JID)
	if err != nil {
		return "", err
	}
	id, err := s.be.ContactSendKind(ctx, num, to.ToNonAD(), o)
	switch {
	case errors.Is(err, wasim.ErrInvalid):
		return "", fmt.Errorf("%w: %s", api.ErrSandboxBadRequest, strings.TrimPrefix(err.Error(), wasim.ErrInvalid.Error()+": "))
	case errors.Is(err, wasim.ErrUnknownMessage):
		return "", fmt.Errorf("%w: %s", api.ErrSandboxNotFound, strings.TrimPrefix(err.Error(), wasim.ErrUnknownMessage.Error()+": "))
	}
	return id, notFound(err, "+"+num)
}

// outgoing is the sandbox message as wasim's contact sends it.
func outgoing(m api.SandboxMessage) (wasim.Outgoing, error) {
	o := wasim.Outgoing{ReplyTo: m.ReplyTo, Text: m.Text}
	for kind, md := range map[string]*api.SandboxMedia{wasim.KindImage: m.Image, wasim.KindVideo: m.Video, wasim.KindAudio: m.Audio,
		wasim.KindDocument: m.Document, wasim.KindSticker: m.Sticker} {
		if md != nil {
			o.Media = &wasim.Media{Kind: kind, Data: md.Data, Mimetype: md.Mimetype, Caption: md.Caption, Filename: md.Filename,
				Voice: md.Voice && kind == wasim.KindAudio, VideoNote: md.VideoNote && kind == wasim.KindVideo}
		}
	}
	if l := m.Location; l != nil {
		o.Location = &wasim.Location{Latitude: *l.Latitude, Longitude: *l.Longitude, Name: l.Name, Address: l.Address}
	}
	for _, c := range m.Contacts {
		card, err := vcardOf(c)
		if err != nil {
			return o, err
		}
		o.Contacts = append(o.Contacts, card)
	}
	if p := m.Poll; p != nil {
		o.Poll = &wasim.Poll{Question: p.Question, Options: p.Options, Selectable: p.Selectable}
	}
	if r := m.Reaction; r != nil {
		o.Reaction = &wasim.Reaction{Message: r.Message, Emoji: *r.Emoji}
	}
	if e := m.Edit; e != nil {
		o.Edit = &wasim.Change{Message: e.Message, Text: e.Text}
	}
	if d := m.Delete; d != nil {
		o.Delete = &wasim.Change{Message: d.Message}
	}
	if v := m.Vote; v != nil {
		o.Vote = &wasim.Vote{Message: v.Message, Options: append([]string{}, v.Options...)}
	}
	return o, nil
}

// vcardOf is a sandbox contact card as WhatsApp carries it: the vCard as
// given (its display name from FN when no name is), or one built from the
// name and phone numbers (TEL with waid, as WhatsApp's own cards have).
func vcardOf(c api.SandboxCard) (wasim.Card, error) {
	if c.VCard != "" {
		name := c.Name
		for _, line := range strings.Split(strings.ReplaceAll(c.VCard, "\r\n", "\n"), "\n") {
			if v, ok := strings.CutPrefix(line, "FN:"); ok && name == "" {
				name = v
			}
		}
		return wasim.Card{Name: name, VCard: c.VCard}, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BEGIN:VCARD\nVERSION:3.0\nFN:%s\n", c.Name)
	for _, p := range c.Phones {
		num, err := whatsapp.NormalizePhone(p)
		if err != nil {
			return wasim.Card{}, fmt.Errorf("%w: contacts: phone %q: %v", api.ErrSandboxBadRequest, p, err)
		}
		fmt.Fprintf(&b, "TEL;type=CELL;waid=%s:+%s\n", num, num)
	}
	b.WriteString("END:VCARD")
	return wasim.Card{Name: c.Name, VCard: b.String()}, nil
}

func (s *sandbox) Inbox(ctx context.Context, phone string) ([]api.SandboxInboxMessage, error) {
	num, err := whatsapp.NormalizePhone(phone)
	if err != nil {
		return nil, err
	}
	in, err := s.be.InboxOf(ctx, num)
	if err != nil {
		return nil, notFound(err, "+"+num)
	}
	// wasim's inbox entry and the API's message have the same JSON shape
	// by design (api cannot import wasim); the API's fields are the
	// contract, and what it lacks (deliveries, resends) stays out.
	for i := range in {
		in[i].At = in[i].At.UTC()
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var out []api.SandboxInboxMessage
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
