package app

import (
	"context"
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

func (s *sandbox) ContactSend(ctx context.Context, phone, session, text, replyTo string) (string, error) {
	num, err := whatsapp.NormalizePhone(phone)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(text) == "" {
		return "", whatsapp.ErrEmptyText
	}
	si, err := s.wa.Get(ctx, session)
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
	id, err := s.be.ContactSend(ctx, num, to.ToNonAD(), text, replyTo)
	return id, notFound(err, "+"+num)
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
	out := make([]api.SandboxInboxMessage, len(in))
	for i, m := range in {
		out[i] = api.SandboxInboxMessage{ID: m.ID, From: m.From, Text: m.Text, ReplyTo: m.ReplyTo, ReplyFrom: m.ReplyFrom, At: m.At.UTC().Format(time.RFC3339Nano)}
	}
	return out, nil
}
