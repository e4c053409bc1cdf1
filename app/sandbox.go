package app

import (
	"context"
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

// sandbox connects the appliance's WhatsApp sessions to wasim and plays the
// other side for the /v1/sandbox routes.
type sandbox struct {
	srv     *wasim.Server
	prepare func(*whatsmeow.Client)
	wa      *whatsapp.Engine
}

// SandboxDB is the built-in simulator's state in the state dir, so sandbox
// accounts and contacts survive a restart of the appliance.
const SandboxDB = "sandbox-wasim.db"

func startSandbox(ctx context.Context, stateDir, where string, log *slog.Logger) (*sandbox, error) {
	if where != SandboxInProcess {
		return nil, fmt.Errorf("--sandbox=%s: a standalone wasim is not supported yet; use --sandbox for the built-in simulator", where)
	}
	srv, err := wasim.New(ctx, wasim.Options{Logger: log, DBPath: filepath.Join(stateDir, SandboxDB)})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return &sandbox{srv: srv, prepare: srv.Prepare}, nil
}

func (s *sandbox) withEngine(wa *whatsapp.Engine) api.Sandbox {
	s.wa = wa
	return s
}

func (s *sandbox) close() { s.srv.Close() }

func (s *sandbox) Scan(ctx context.Context, session, phone string) error {
	num, err := whatsapp.NormalizePhone(phone)
	if err != nil {
		return err
	}
	code, _, err := s.wa.QR(session)
	if err != nil {
		return err
	}
	return s.srv.Phone(num).ScanQR(code)
}

func (s *sandbox) AddContact(ctx context.Context, c api.SandboxContact) (api.SandboxContact, error) {
	num, err := whatsapp.NormalizePhone(c.Phone)
	if err != nil {
		return c, err
	}
	policy := wasim.ReceiptPolicy{ReadAfter: time.Second}
	switch c.ReadAfter {
	case "":
		c.ReadAfter = "1s"
	case "never":
		policy.ReadAfter = -1
	default:
		d, err := time.ParseDuration(c.ReadAfter)
		if err != nil || d < 0 || d > time.Hour {
			return c, fmt.Errorf("%w: read_after %q: want a duration such as 2s, or never", api.ErrSandboxBadRequest, c.ReadAfter)
		}
		policy.ReadAfter = d
	}
	ct, err := s.srv.Contact(num)
	if err != nil {
		return c, err
	}
	if c.Name != "" {
		ct.SetName(c.Name)
	}
	ct.SetReceipts(policy)
	c.Phone = "+" + num
	return c, nil
}

func (s *sandbox) contact(phone string) (*wasim.Contact, error) {
	num, err := whatsapp.NormalizePhone(phone)
	if err != nil {
		return nil, err
	}
	if !s.srv.HasContact(num) {
		return nil, fmt.Errorf("%w: no sandbox contact %s (create it with POST /v1/sandbox/contacts)", api.ErrSandboxNotFound, "+"+num)
	}
	return s.srv.Contact(num)
}

func (s *sandbox) ContactSend(ctx context.Context, phone, session, text, replyTo string) (string, error) {
	ct, err := s.contact(phone)
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
	if replyTo != "" {
		return ct.Reply(ctx, to.ToNonAD(), replyTo, text)
	}
	return ct.Send(ctx, to.ToNonAD(), text)
}

func (s *sandbox) Inbox(ctx context.Context, phone string) ([]api.SandboxInboxMessage, error) {
	ct, err := s.contact(phone)
	if err != nil {
		return nil, err
	}
	var out []api.SandboxInboxMessage
	for _, r := range ct.Inbox() {
		m := api.SandboxInboxMessage{ID: r.ID, From: r.From.ToNonAD().String(), Text: r.Text(), At: r.At.UTC().Format(time.RFC3339Nano)}
		m.ReplyTo = r.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID()
		out = append(out, m)
	}
	return out, nil
}
