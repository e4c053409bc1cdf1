package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/events"
	"waappliance/internal/backoff"
)

// session is one account's live state: its whatsmeow client, the current
// QR code while pairing, and its sender goroutine.
type session struct {
	e    *Engine
	name string

	mu        sync.Mutex
	client    *whatsmeow.Client
	qr        string
	qrExpires time.Time
	pairing   bool
	firstQR   chan struct{}    // closed at the first QR code of a pairing
	retrying  bool             // a reconnect loop runs
	bo        *backoff.Backoff // reconnect failures since the last login
	banUntil  time.Time        // the expiry of a temporary ban, while banned

	nudge      chan struct{}
	stop       chan struct{}
	senderDone chan struct{}
	stopOnce   sync.Once

	// hmu guards hclosed; hwg counts the event handlers running. whatsmeow
	// does not wait for its handlers on Disconnect, so close waits for them
	// itself, and a handler that starts after close began is refused (not
	// acked: WhatsApp redelivers it to the next run).
	hmu     sync.Mutex
	hclosed bool
	hwg     sync.WaitGroup
}

func newSession(e *Engine, name string) *session {
	return &session{e: e, name: name, nudge: make(chan struct{}, 1), stop: make(chan struct{}), bo: backoff.New(e.cfg.Reconnect)}
}

// newClient makes a whatsmeow client for dev with our handlers.
func (s *session) newClient(devJID *types.JID) (*whatsmeow.Client, error) {
	ctx := s.e.ctx
	dev := s.e.container.NewDevice()
	if devJID != nil {
		d, err := s.e.container.GetDevice(ctx, *devJID)
		if err != nil {
			return nil, fmt.Errorf("load device: %w", err)
		}
		if d == nil {
			return nil, fmt.Errorf("the device keys of %s are gone from the store; log in again", devJID)
		}
		dev = d
	}
	skipUnchangedIdentities(dev)
	cli := whatsmeow.NewClient(dev, newWALogger(s.e.log, "client").Sub(s.name))
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	// Reconnects are ours (connect.go): one backoff with jitter.
	cli.EnableAutoReconnect = false
	// A message that cannot be decrypted is asked for again from our own
	// phone too, not only from the sender (the lost first message).
	cli.AutomaticMessageRerequestFromPhone = true
	cli.GetMessageForRetry = func(requester, _ types.JID, id types.MessageID) *waE2E.Message {
		return s.messageForRetry(cli, requester, id)
	}
	if s.e.cfg.Prepare != nil {
		s.e.cfg.Prepare(cli)
	}
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		s.hmu.Lock()
		if s.hclosed {
			s.hmu.Unlock()
			return false
		}
		s.hwg.Add(1)
		s.hmu.Unlock()
		defer s.hwg.Done()
		return s.handle(cli, evt)
	})
	return cli, nil
}

// login starts QR pairing: a fresh device, the QR channel, then Connect.
// On a replaced session it takes the connection back instead: the device
// is still linked, so no pairing is needed.
func (s *session) login(ctx context.Context) error {
	info, err := s.e.info(ctx, s.name)
	if err != nil {
		return err
	}
	if info.JID != "" && info.State == StateReplaced {
		s.e.log.Info("taking a replaced session back", "session", s.name)
		return s.connectLinked(ctx, info.JID)
	}
	if info.JID != "" && info.State != StateLoggedOut {
		return ErrAlreadyPaired
	}
	s.mu.Lock()
	if s.pairing {
		s.mu.Unlock()
		return nil // already waiting for a scan
	}
	cli, err := s.newClient(nil)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	qrCh, err := cli.GetQRChannel(s.e.ctx)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("qr channel: %w", err)
	}
	if s.client != nil {
		s.client.Disconnect()
	}
	s.client, s.pairing, s.qr, s.firstQR = cli, true, "", make(chan struct{})
	first := s.firstQR
	s.mu.Unlock()
	s.setState(ctx, StatePairing, "")
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
				s.qr, s.qrExpires = item.Code, s.e.cfg.Now().Add(item.Timeout)
			}
			s.mu.Unlock()
			once.Do(func() { close(first) })
		case "success":
			s.mu.Lock()
			s.pairing, s.qr = false, ""
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

func (s *session) endPairing(cli *whatsmeow.Client, state, lastErr string) {
	s.mu.Lock()
	if s.client != cli {
		s.mu.Unlock()
		return
	}
	s.pairing, s.qr = false, ""
	s.client = nil
	s.mu.Unlock()
	cli.Disconnect()
	s.setState(context.Background(), state, lastErr)
}

// currentQR returns the QR code while pairing.
func (s *session) currentQR() (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pairing || s.qr == "" {
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
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, s.e.cfg.DisplayName)
	if err != nil {
		return "", pairPhoneError(err)
	}
	return code, nil
}

// pairRefsTimeout is how long pairCode waits for WhatsApp's pairing refs.
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

// logout unlinks at WhatsApp (best effort when offline) and drops the device.
func (s *session) logout(ctx context.Context, deleting bool) {
	s.mu.Lock()
	cli := s.client
	s.client, s.pairing, s.qr = nil, false, ""
	s.mu.Unlock()
	if cli != nil {
		if cli.Store.ID != nil && cli.IsConnected() {
			if err := cli.Logout(ctx); err != nil {
				s.e.log.Warn("logout at WhatsApp failed; removing the device locally", "session", s.name, "err", err)
				cli.Store.Delete(ctx)
			}
		} else if cli.Store.ID != nil {
			cli.Store.Delete(ctx)
		}
		cli.Disconnect()
	} else if info, err := s.e.info(ctx, s.name); err == nil && info.JID != "" {
		if j, err := types.ParseJID(info.JID); err == nil {
			if d, err := s.e.container.GetDevice(ctx, j); err == nil && d != nil {
				d.Delete(ctx)
			}
		}
	}
	if !deleting {
		s.setState(ctx, StateLoggedOut, "logged out through the API")
		s.e.cfg.Events.Append(ctx, s.name, events.TypeLoggedOut, map[string]string{"reason": "api"})
		s.e.failPending(ctx, s.name, "session logged out")
	}
}

// replacedMessage is the last_error of a replaced session: what happened
// and the one thing that works.
const replacedMessage = "another client connected as this device and took over its connection; " +
	"not reconnecting on its own, not even after a restart (the two would take turns). " +
	"Take it back with POST /v1/sessions/%s/login (no new pairing); messages queued before are kept and sent then, " +
	"new sends are refused with 409 session_replaced until then"

// handle receives every whatsmeow event of cli, a client of this session.
// Returning false keeps whatsmeow from acking the node to WhatsApp (it is
// redelivered). State changes are taken only from the session's current
// client: a late event of a client it replaced must not undo a login.
func (s *session) handle(cli *whatsmeow.Client, evt any) bool {
	ctx := s.e.ctx
	switch evt.(type) {
	case *waEvents.Connected, *waEvents.Disconnected, *waEvents.StreamReplaced, *waEvents.TemporaryBan, *waEvents.ConnectFailure, *waEvents.PairSuccess,
		*waEvents.KeepAliveTimeout, *waEvents.ClientOutdated:
		if !s.current(cli) {
			return true
		}
	}
	switch v := evt.(type) {
	case *waEvents.PairSuccess:
		s.e.setJID(ctx, s.name, v.ID, v.BusinessName)
		s.setState(ctx, StateConnecting, "")
	case *waEvents.Connected:
		s.mu.Lock()
		s.pairing, s.qr, s.banUntil = false, "", time.Time{}
		s.bo.Reset()
		s.mu.Unlock()
		if cli.Store.ID != nil {
			s.e.setJID(ctx, s.name, *cli.Store.ID, cli.Store.PushName)
		}
		s.setState(ctx, StateConnected, "")
		s.poke()
		s.e.resumeDownloads(s.name)
	case *waEvents.Disconnected:
		if info, err := s.e.info(ctx, s.name); err == nil && (info.State == StateConnected || info.State == StateConnecting) {
			s.setState(ctx, StateDisconnected, "connection lost; reconnecting")
		}
		go s.reconnect(cli)
	case *waEvents.KeepAliveTimeout:
		// whatsmeow forces a reconnect here only with its auto-reconnect on.
		if !v.LastSuccess.IsZero() && time.Since(v.LastSuccess) > whatsmeow.KeepAliveMaxFailTime && s.current(cli) {
			s.e.log.Warn("keepalives failing; reconnecting", "session", s.name, "errors", v.ErrorCount)
			cli.Disconnect()
			s.setState(ctx, StateDisconnected, "connection stalled; reconnecting")
			go s.reconnect(cli)
		}
	case *waEvents.LoggedOut:
		s.mu.Lock()
		s.client = nil
		s.mu.Unlock()
		s.setState(ctx, StateLoggedOut, "logged out at WhatsApp: "+v.Reason.String())
		s.e.cfg.Events.Append(ctx, s.name, events.TypeLoggedOut, map[string]any{"reason": v.Reason.String(), "on_connect": v.OnConnect})
		s.e.failPending(ctx, s.name, "session logged out at WhatsApp")
	case *waEvents.StreamReplaced:
		s.setState(ctx, StateReplaced, fmt.Sprintf(replacedMessage, s.name))
		cli.Disconnect() // whatsmeow expects it and will not reconnect; nor will we
	case *waEvents.TemporaryBan:
		s.temporarilyBanned(ctx, cli, v)
	case *waEvents.ClientOutdated:
		// 405: no retry helps until the announced version changes.
		s.setState(ctx, StateDisconnected, "WhatsApp refused this web client version as outdated ("+
			s.e.WebVersion().InUse+"); restart the appliance online (it asks WhatsApp for the current version) or update it")
	case *waEvents.ConnectFailure:
		s.setState(ctx, StateDisconnected, fmt.Sprintf("connect failure %d: %s", v.Reason, v.Message))
	case *waEvents.Message:
		fillPhoneNumbers(ctx, cli, &v.Info)
		return s.e.recordInbound(ctx, cli, s.name, v)
	case *waEvents.UndecryptableMessage:
		fillPhoneNumbers(ctx, cli, &v.Info)
		return s.e.recordUndecryptable(ctx, s.name, v)
	case *waEvents.Receipt:
		return s.e.recordReceipt(ctx, s.name, v)
	case *waEvents.MediaRetry:
		s.e.mediaRetry(s.name, v)
	}
	return true
}

func (s *session) connected() (*whatsmeow.Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || !s.client.IsConnected() || !s.client.IsLoggedIn() {
		return nil, false
	}
	return s.client, true
}

func (s *session) poke() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

func (s *session) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.hmu.Lock()
	s.hclosed = true
	s.hmu.Unlock()
	s.mu.Lock()
	cli := s.client
	s.client = nil
	s.mu.Unlock()
	if cli != nil {
		cli.Disconnect()
	}
	// No write of this session's after close returns (a receipt's status
	// committed after a restart reset the row, say).
	s.hwg.Wait()
	if s.senderDone != nil {
		<-s.senderDone
	}
}

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

// setState is how a session changes its own state: recorded in its row
// with a session.state event when it changed (Engine.setState).
func (s *session) setState(ctx context.Context, state, lastErr string, also ...func(context.Context, *sql.Tx) error) {
	s.e.setState(ctx, s.name, state, lastErr, also...)
}
