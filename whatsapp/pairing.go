package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
)

// Pairing: a QR code (login, watchQR) or a phone code (pairCode) links a
// fresh device to the account. While pairing, the session's client is the
// fresh device's and its QR code is kept in memory only: a pairing
// interrupted by a restart cannot resume (Engine.Start resets it).

// Login starts QR pairing for the session.
func (e *Engine) Login(ctx context.Context, name string) error {
	s, err := e.session(name)
	if err != nil {
		return err
	}
	return s.login(ctx)
}

// QR returns the current QR code of a pairing session.
func (e *Engine) QR(name string) (string, time.Time, error) {
	s, err := e.session(name)
	if err != nil {
		return "", time.Time{}, err
	}
	return s.currentQR()
}

// PairCode links the session by phone number and returns the 8-character
// code the user types on the phone.
func (e *Engine) PairCode(ctx context.Context, name, phone string) (string, error) {
	s, err := e.session(name)
	if err != nil {
		return "", err
	}
	num, err := NormalizePhone(phone)
	if err != nil {
		return "", err
	}
	return s.pairCode(ctx, num)
}

// login starts QR pairing: a fresh device, the QR channel, then Connect.
// On a replaced session it takes the connection back instead: the device
// is still linked, so no pairing is needed.
func (s *session) login(ctx context.Context) error {
	// stMu from the decision to the pairing state: a second login waits,
	// then sees the pairing.
	s.stMu.Lock()
	info := s.committed()
	if info.JID != "" && info.State == StateReplaced {
		s.stMu.Unlock()
		s.log.Info("taking a replaced session back", "session", s.name)
		return s.connectLinked(ctx, info.JID)
	}
	if info.JID != "" && info.State != StateLoggedOut {
		s.stMu.Unlock()
		return ErrAlreadyPaired
	}
	if info.State == StatePairing {
		s.stMu.Unlock()
		return nil // already waiting for a scan
	}
	s.mu.Lock()
	cli, err := s.newClient(nil)
	if err != nil {
		s.mu.Unlock()
		s.stMu.Unlock()
		return err
	}
	qrCh, err := cli.GetQRChannel(s.ctx)
	if err != nil {
		s.mu.Unlock()
		s.stMu.Unlock()
		return fmt.Errorf("qr channel: %w", err)
	}
	if s.client != nil {
		s.client.Disconnect()
	}
	s.client, s.qr, s.firstQR = cli, "", make(chan struct{})
	first := s.firstQR
	s.mu.Unlock()
	s.setStateLocked(ctx, StatePairing, "")
	s.stMu.Unlock()
	go s.watchQR(cli, qrCh, first)
	if err := s.connect(ctx, cli); err != nil {
		s.endPairing(cli, StateNew, connectProblem(err)+"; start the login again")
		return fmt.Errorf("login %q: %w", s.name, connectError(err))
	}
	return nil
}

func (s *session) watchQR(cli *whatsmeow.Client, ch <-chan whatsmeow.QRChannelItem, first chan struct{}) {
	var once sync.Once
	defer once.Do(func() { close(first) })
	for item := range ch {
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			s.mu.Lock()
			if s.client == cli {
				s.qr, s.qrExpires = item.Code, s.cfg.Now().Add(item.Timeout)
			}
			s.mu.Unlock()
			once.Do(func() { close(first) })
		case "success":
			s.mu.Lock()
			s.qr = ""
			s.mu.Unlock()
		case "timeout":
			s.endPairing(cli, StateNew, "QR pairing timed out; start the login again")
		default:
			msg := item.Event
			if item.Error != nil {
				msg = item.Error.Error()
			}
			s.endPairing(cli, StateNew, "pairing failed: "+msg)
		}
	}
}

// endPairing ends the pairing of cli (unless another client took over)
// in state; under stMu, so a login meanwhile waits and then starts anew.
func (s *session) endPairing(cli *whatsmeow.Client, state, lastErr string) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	s.mu.Lock()
	if s.client != cli {
		s.mu.Unlock()
		return
	}
	s.qr = ""
	s.client = nil
	s.mu.Unlock()
	cli.Disconnect()
	s.setStateLocked(context.Background(), state, lastErr)
}

// currentQR returns the QR code while pairing.
func (s *session) currentQR() (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State != StatePairing || s.qr == "" {
		return "", time.Time{}, ErrNotPairing
	}
	return s.qr, s.qrExpires, nil
}

// pairCode starts pairing if needed and asks WhatsApp for a phone code.
func (s *session) pairCode(ctx context.Context, phone string) (string, error) {
	if err := s.login(ctx); err != nil {
		return "", err
	}
	s.mu.Lock()
	cli, first := s.client, s.firstQR
	s.mu.Unlock()
	if cli == nil || first == nil {
		return "", ErrNotPairing
	}
	select {
	case <-first:
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for pairing refs: %v: %w", context.Cause(ctx), ErrTimeout)
	case <-time.After(pairRefsTimeout):
		return "", fmt.Errorf("no pairing refs from WhatsApp within %v: %w", pairRefsTimeout, ErrTimeout)
	}
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, s.cfg.DisplayName)
	if err != nil {
		return "", pairPhoneError(err)
	}
	return code, nil
}

// pairRefsTimeout is how long pairCode waits for WhatsApp's pairing refs
// (real time: a wait for the network, like connectAttemptTimeout).
var pairRefsTimeout = 30 * time.Second

// pairPhoneError maps PairPhone's timeouts and lost connections to the
// sentinels the API answers 504 and 502 for.
func pairPhoneError(err error) error {
	msg := "pair by phone code: " + Redact(err.Error())
	var dis *whatsmeow.DisconnectedError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, whatsmeow.ErrIQTimedOut):
		return fmt.Errorf("%s: %w", msg, ErrTimeout)
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.As(err, &dis):
		return fmt.Errorf("%s: %w", msg, ErrUnreachable)
	}
	return fmt.Errorf("%s: %w", msg, err)
}
