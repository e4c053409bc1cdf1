package whatsapp

import (
	"context"
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
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool { return s.handle(cli, evt) })
	return cli, nil
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
	s.mu.Lock()
	cli := s.client
	s.client = nil
	s.mu.Unlock()
	if cli != nil {
		cli.Disconnect()
	}
	if s.senderDone != nil {
		<-s.senderDone
	}
}

// setState is how a session changes its own state: recorded in its row
// with a session.state event when it changed (Engine.setState).
func (s *session) setState(ctx context.Context, state, lastErr string) {
	s.e.setState(ctx, s.name, state, lastErr)
}
