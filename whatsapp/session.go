package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/events"
	"waappliance/internal/backoff"
)

// Session states, and who moves a session between them (setState is the
// one place that does):
//
//	new, logged_out -> pairing     login (pairing.go)
//	pairing -> new (logged_out)    QR timeout or failure, a failed connect, a restart
//	pairing -> connecting          PairSuccess
//	-> connected                   Connected (a login, connect or reconnect succeeded)
//	-> disconnected                connection lost or stalled, a connect failure, a 405
//	-> connecting                  start-up, a replaced session's login, a ban's expiry
//	-> logged_out                  WhatsApp's LoggedOut, or Logout through the API
//	-> replaced                    StreamReplaced
//	-> temporarily_banned          TemporaryBan
const (
	StateNew          = "new"
	StatePairing      = "pairing"
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
	StateLoggedOut    = "logged_out"
	// StateReplaced: another client took over the account's connection;
	// whatsmeow does not reconnect on its own, and neither do we.
	StateReplaced = "replaced"
	// StateTemporarilyBanned: WhatsApp banned the account for a while; the
	// session tries once more when the ban's expiry has passed, not before.
	StateTemporarilyBanned = "temporarily_banned"
)

// session is one account: its state machine (setState, the one place its
// state changes), its whatsmeow client, the current QR code while pairing,
// and its sender goroutine.
type session struct {
	e    *Engine
	name string
	// Given by the engine at creation: the lifetime of a session's work
	// (the engine's context), its logger and its settings (read only).
	ctx context.Context
	log *slog.Logger
	cfg *Config

	// stMu makes state changes one at a time: the row, its event and
	// st move together (setState, setJID).
	stMu sync.Mutex

	mu        sync.Mutex
	st        committed // the row's state and JID as last committed
	client    *whatsmeow.Client
	qr        string
	qrExpires time.Time
	firstQR   chan struct{}    // closed at the first QR code of a pairing
	retrying  bool             // a reconnect loop runs
	bo        *backoff.Backoff // reconnect failures since the last login
	banUntil  time.Time        // the expiry of a temporary ban, while banned

	nudge      chan struct{}
	fresh      freshQueue // the messages Send handed the sender (sender.go)
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

func newSession(e *Engine, name string, st committed) *session {
	return &session{e: e, name: name, ctx: e.ctx, log: e.log, cfg: &e.cfg, st: st,
		nudge: make(chan struct{}, 1), stop: make(chan struct{}), bo: backoff.New(e.cfg.Reconnect)}
}

// committed is what a session decides by: its row's state and JID as last
// committed. Only the engine writes the row (Create, setState, setJID,
// Delete), so the copy is the row.
type committed struct{ State, JID string }

// committed returns the session's state and JID as last committed.
func (s *session) committed() committed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// info reads the session's row: what the API shows of it.
func (s *session) info(ctx context.Context) (SessionInfo, error) {
	si, err := scanSession(s.cfg.DB.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE name = $1`, s.name))
	if errors.Is(err, sql.ErrNoRows) {
		return si, fmt.Errorf("%w: %q", ErrSessionNotFound, s.name)
	}
	return si, err
}

// setState is the one place a session's state changes: recorded in its
// row with a session.state event when it changed, in one commit with also
// (each, whether the state changed or not: the event of a state that has
// its own), then in s.st.
func (s *session) setState(ctx context.Context, state, lastErr string, also ...func(context.Context, *sql.Tx) error) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	s.setStateLocked(ctx, state, lastErr, also...)
}

// setStateLocked is setState with s.stMu held.
func (s *session) setStateLocked(ctx context.Context, state, lastErr string, also ...func(context.Context, *sql.Tx) error) {
	now := s.cfg.Now()
	var changed bool
	err := s.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var old string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM sessions WHERE name = $1`, s.name).Scan(&old); err != nil {
			return err
		}
		q := `UPDATE sessions SET state = $1, last_error = $2, updated_at = $3`
		args := []any{state, lastErr, now.UnixNano()}
		if state == StateConnected {
			q += `, last_connected_at = $4`
			args = append(args, now.UnixNano())
		}
		args = append(args, s.name)
		if _, err := tx.ExecContext(ctx, q+fmt.Sprintf(` WHERE name = $%d`, len(args)), args...); err != nil {
			return err
		}
		for _, fn := range also {
			if err := fn(ctx, tx); err != nil {
				return err
			}
			changed = true
		}
		if old == state {
			return nil
		}
		changed = true
		data := map[string]string{"state": state, "previous": old}
		if lastErr != "" {
			data["error"] = lastErr
		}
		_, err := s.cfg.Events.AppendTx(ctx, tx, s.name, events.TypeSessionState, data)
		return err
	})
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			s.log.Error("recording session state failed", "session", s.name, "state", state, "err", err)
		}
		return
	}
	s.mu.Lock()
	s.st.State = state
	s.mu.Unlock()
	if changed {
		s.cfg.Events.Notify()
		s.log.Info("session state", "session", s.name, "state", state, "error", lastErr)
	}
}

// setJID records the account a session is linked to, in its row and s.st.
func (s *session) setJID(ctx context.Context, jid types.JID, pushName string) error {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	now := s.cfg.Now().UnixNano()
	err := s.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET jid = $1, push_name = $2, updated_at = $3 WHERE name = $4`,
			jid.String(), pushName, now, s.name)
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.st.JID = jid.String()
		s.mu.Unlock()
	}
	return err
}

// newClient makes a whatsmeow client for dev with our handlers.
func (s *session) newClient(devJID *types.JID) (*whatsmeow.Client, error) {
	ctx := s.ctx
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
	cli := whatsmeow.NewClient(dev, newWALogger(s.log, "client").Sub(s.name))
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
	if s.cfg.Prepare != nil {
		s.cfg.Prepare(cli)
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

// logout unlinks at WhatsApp (best effort when offline) and drops the device.
func (s *session) logout(ctx context.Context, deleting bool) {
	s.mu.Lock()
	cli := s.client
	s.client, s.qr = nil, ""
	s.mu.Unlock()
	if cli != nil {
		if cli.Store.ID != nil && cli.IsConnected() {
			if err := cli.Logout(ctx); err != nil {
				s.log.Warn("logout at WhatsApp failed; removing the device locally", "session", s.name, "err", err)
				cli.Store.Delete(ctx)
			}
		} else if cli.Store.ID != nil {
			cli.Store.Delete(ctx)
		}
		cli.Disconnect()
	} else if jid := s.committed().JID; jid != "" {
		if j, err := types.ParseJID(jid); err == nil {
			if d, err := s.e.container.GetDevice(ctx, j); err == nil && d != nil {
				d.Delete(ctx)
			}
		}
	}
	if !deleting {
		s.setState(ctx, StateLoggedOut, "logged out through the API")
		s.cfg.Events.Append(ctx, s.name, events.TypeLoggedOut, map[string]string{"reason": "api"})
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
	ctx := s.ctx
	switch evt.(type) {
	case *waEvents.Connected, *waEvents.Disconnected, *waEvents.StreamReplaced, *waEvents.TemporaryBan, *waEvents.ConnectFailure, *waEvents.PairSuccess,
		*waEvents.KeepAliveTimeout, *waEvents.ClientOutdated:
		if !s.current(cli) {
			return true
		}
	}
	switch v := evt.(type) {
	case *waEvents.PairSuccess:
		s.setJID(ctx, v.ID, v.BusinessName)
		s.setState(ctx, StateConnecting, "")
	case *waEvents.Connected:
		s.mu.Lock()
		s.qr, s.banUntil = "", time.Time{}
		s.bo.Reset()
		s.mu.Unlock()
		if cli.Store.ID != nil {
			s.setJID(ctx, *cli.Store.ID, cli.Store.PushName)
		}
		s.setState(ctx, StateConnected, "")
		s.poke()
		s.e.resumeDownloads(s.name)
	case *waEvents.Disconnected:
		if st := s.committed().State; st == StateConnected || st == StateConnecting {
			s.setState(ctx, StateDisconnected, "connection lost; reconnecting")
		}
		go s.reconnect(cli)
	case *waEvents.KeepAliveTimeout:
		// whatsmeow forces a reconnect here only with its auto-reconnect on.
		// LastSuccess is whatsmeow's wall clock, so is the comparison.
		if !v.LastSuccess.IsZero() && time.Since(v.LastSuccess) > whatsmeow.KeepAliveMaxFailTime && s.current(cli) {
			s.log.Warn("keepalives failing; reconnecting", "session", s.name, "errors", v.ErrorCount)
			cli.Disconnect()
			s.setState(ctx, StateDisconnected, "connection stalled; reconnecting")
			go s.reconnect(cli)
		}
	case *waEvents.LoggedOut:
		s.mu.Lock()
		s.client = nil
		s.mu.Unlock()
		s.setState(ctx, StateLoggedOut, "logged out at WhatsApp: "+v.Reason.String())
		s.cfg.Events.Append(ctx, s.name, events.TypeLoggedOut, map[string]any{"reason": v.Reason.String(), "on_connect": v.OnConnect})
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
