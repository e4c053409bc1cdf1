package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/events"
)

// Connecting and reconnecting. whatsmeow's own auto-reconnect is off (it
// waits errors × 2 s, linear and without jitter, so sessions dropped
// together come back together): a linked session reconnects from
// reconnect, on the engine's one backoff (Config.Reconnect), after a
// failed connect, an events.Disconnected, or keepalives failing for
// whatsmeow.KeepAliveMaxFailTime. A session logged out, replaced or
// temporarily banned does not loop: whatsmeow expects those disconnects
// and sends no Disconnected, and reconnect checks the state before every
// try. A temporary ban gets one try when WhatsApp's expiry has passed.

// connectAttemptTimeout bounds one connection attempt (dial, TLS, Noise
// handshake); a blackholed server must not hold a login or a retry forever.
var connectAttemptTimeout = 20 * time.Second

// connect connects cli for the engine's lifetime; ctx (and
// connectAttemptTimeout) bound only the attempt.
func (s *session) connect(ctx context.Context, cli *whatsmeow.Client) error {
	s.e.waitWebVersion(ctx) // bounded by versionCheckTimeout
	ctx, cancelAttempt := context.WithTimeout(ctx, connectAttemptTimeout)
	defer cancelAttempt()
	// whatsmeow keeps the context it connects with for the connection's
	// loops: give it one that lives as long as the engine, and cancel it
	// only if the attempt is abandoned.
	life, cancel := context.WithCancel(s.ctx)
	stop := context.AfterFunc(ctx, cancel)
	err := cli.ConnectContext(life)
	if !stop() {
		// The attempt was abandoned (timeout, request gone, engine closing):
		// a connection made meanwhile runs on a cancelled context.
		if err == nil {
			cli.Disconnect()
		}
		return fmt.Errorf("connect: %w", context.Cause(ctx))
	}
	return err
}

// connectError turns a failed connection attempt into ErrTimeout or
// ErrUnreachable. The cause stays in front, redacted, for the log only:
// the client sees the sentinel's text.
func connectError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", Redact(err.Error()), ErrTimeout)
	}
	return fmt.Errorf("%s: %w", Redact(err.Error()), ErrUnreachable)
}

// startLinked connects a linked session at start-up, unless the API
// changed it meanwhile (logged out, deleted, taken over).
func (s *session) startLinked() {
	ctx := s.ctx
	info := s.committed()
	if info.State != StateConnecting || info.JID == "" {
		return
	}
	s.mu.Lock()
	busy := s.client != nil
	s.mu.Unlock()
	if busy {
		return // a login through the API got there first
	}
	if err := s.connectLinked(ctx, info.JID); err != nil && ctx.Err() == nil {
		s.log.Warn("session connect failed", "session", s.name, "err", err)
		s.setState(ctx, StateDisconnected, err.Error())
	}
}

// connectLinked connects a session that is already paired. When the first
// attempt fails it keeps retrying in the background (reconnect). ctx
// bounds the first attempt.
func (s *session) connectLinked(ctx context.Context, jid string) error {
	j, err := types.ParseJID(jid)
	if err != nil {
		return fmt.Errorf("stored jid %q: %w", jid, err)
	}
	cli, err := s.newClient(&j)
	if err != nil {
		return err
	}
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return ErrClosed
	default:
	}
	old := s.client
	s.client, s.qr, s.banUntil = cli, "", time.Time{}
	s.mu.Unlock()
	if old != nil {
		old.Disconnect()
	}
	s.setState(ctx, StateConnecting, "")
	if err := s.connect(ctx, cli); err != nil {
		if s.ctx.Err() != nil {
			return nil
		}
		s.log.Warn("session connect failed; retrying", "session", s.name, "err", err)
		if s.current(cli) {
			s.setState(s.ctx, StateDisconnected, connectProblem(err)+"; retrying")
		}
		go s.reconnect(cli)
		return nil
	}
	if !s.current(cli) {
		cli.Disconnect() // closed or replaced by a login while connecting
	}
	return nil
}

// connectProblem says what stopped a connection attempt, for a session's
// last_error: without addresses or dial internals (the log has those).
func connectProblem(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		return "WhatsApp did not answer in time"
	}
	return "cannot reach WhatsApp"
}

// current reports whether cli is the session's client.
func (s *session) current(cli *whatsmeow.Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client == cli
}

// mayReconnect reports whether a reconnect of cli is wanted: it is still
// the session's client, not connected, and the session is not in a state
// that must not loop (logged out, replaced, temporarily banned).
func (s *session) mayReconnect(cli *whatsmeow.Client) bool {
	if !s.current(cli) || cli.IsConnected() || s.ctx.Err() != nil {
		return false
	}
	switch s.committed().State {
	case StateLoggedOut, StateReplaced, StateTemporarilyBanned, StateNew, StatePairing:
		return false
	}
	return true
}

// reconnect connects cli again on the session's backoff until it is
// connected, no longer wanted (mayReconnect), or the session stops. One
// loop runs per session at a time; the failure count lives on the session
// and is reset only by a login that succeeded (events.Connected), so a
// server that accepts and drops at once still backs off.
func (s *session) reconnect(cli *whatsmeow.Client) {
	s.mu.Lock()
	if s.retrying || s.client != cli {
		s.mu.Unlock()
		return
	}
	s.retrying = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.retrying = false
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		s.mu.Lock()
		d := s.bo.Next()
		s.mu.Unlock()
		s.log.Info("session reconnecting", "session", s.name, "in", d)
		if err := s.e.sleep(ctx, d); err != nil {
			return
		}
		if !s.mayReconnect(cli) {
			return
		}
		err := s.connect(ctx, cli)
		if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			if !s.current(cli) {
				cli.Disconnect()
			}
			return
		}
		if ctx.Err() != nil || !s.current(cli) {
			return
		}
		s.log.Info("session connect failed; retrying", "session", s.name, "err", err)
		s.setState(ctx, StateDisconnected, connectProblem(err)+"; retrying")
	}
}

// sleep waits d on the reconnect policy's clock.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	after := e.cfg.Reconnect.After
	if after == nil {
		after = time.After
	}
	select {
	case <-after(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TemporaryBan is the data of a session.temporarily_banned event.
type TemporaryBan struct {
	// Code is WhatsApp's reason code; Reason its name in whatsmeow.
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	// ExpiresAt is when WhatsApp said the ban ends; absent when it did not say.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// temporarilyBanned records a temporary ban (its own state and event) and
// waits for its expiry before one more try; a ban without an expiry waits
// for a login or a restart.
func (s *session) temporarilyBanned(ctx context.Context, cli *whatsmeow.Client, v *waEvents.TemporaryBan) {
	ban := TemporaryBan{Code: int(v.Code), Reason: v.Code.String()}
	var until time.Time
	if v.Expire > 0 {
		until = s.cfg.Now().Add(v.Expire).UTC()
		ban.ExpiresAt = &until
	}
	s.mu.Lock()
	s.banUntil = until
	s.mu.Unlock()
	msg := "temporarily banned by WhatsApp (" + ban.Reason + ")"
	if !until.IsZero() {
		msg += "; one more try after " + until.Format(time.RFC3339)
	} else {
		msg += "; WhatsApp gave no end: log in again later"
	}
	// The state and its event in one commit, as every other state's.
	s.setState(ctx, StateTemporarilyBanned, msg, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.cfg.Events.AppendTx(ctx, tx, s.name, events.TypeTemporarilyBanned, ban)
		return err
	})
	s.log.Warn("session temporarily banned", "session", s.name, "code", ban.Code, "expire", v.Expire)
	if until.IsZero() {
		return
	}
	// Not in e.wg: an event handler may run while Close waits; the wait
	// ends with the engine's context or the session's stop.
	go func() {
		sctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-sctx.Done():
			}
		}()
		if s.e.sleep(sctx, v.Expire) != nil {
			return
		}
		s.mu.Lock()
		still := s.client == cli && s.banUntil.Equal(until)
		s.mu.Unlock()
		if !still {
			return // logged in again, out, or banned anew meanwhile
		}
		s.setState(s.ctx, StateConnecting, "temporary ban over; trying again")
		if err := s.connect(sctx, cli); err != nil && !errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			if sctx.Err() != nil || !s.current(cli) {
				return
			}
			s.setState(s.ctx, StateDisconnected, connectProblem(err)+"; retrying")
			s.reconnect(cli) // the ban is over: a network failure is retried as usual
		}
	}()
}
