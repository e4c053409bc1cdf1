package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"waappliance/internal/backoff"
)

// giveUpAfter fails a message that could not be sent for this long.
const giveUpAfter = 24 * time.Hour

// startSender runs the session's outbox sender until close.
func (s *session) startSender() {
	if s.senderDone != nil {
		return
	}
	s.senderDone = make(chan struct{})
	s.e.wg.Add(1)
	go func() {
		defer s.e.wg.Done()
		defer close(s.senderDone)
		s.senderLoop()
	}()
}

// senderLoop delivers the session's queued messages in order whenever the
// client is connected. A transient failure stops the batch (so no later
// message overtakes an earlier one) and schedules a retry with backoff.
func (s *session) senderLoop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.nudge:
		case <-timer.C:
		}
		wait := s.sendDue()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// sendDue sends what is due and returns how long to sleep before looking again.
func (s *session) sendDue() time.Duration {
	const idle = 5 * time.Second
	cli, ok := s.connected()
	if !ok {
		return idle
	}
	ctx := s.e.ctx
	e := s.e
	for {
		select {
		case <-s.stop:
			return idle
		default:
		}
		row := e.cfg.DB.QueryRowContext(ctx, `SELECT `+msgCols+`, next_attempt_at FROM outbox WHERE session = $1 AND status = $2 ORDER BY seq LIMIT 1`, s.name, StatusQueued)
		m, next, err := scanPending(row)
		if err != nil {
			return idle // no queued message (or the database is closing)
		}
		if wait := time.Until(time.Unix(0, next)); wait > 0 {
			return wait
		}
		if err := s.sendOne(ctx, cli, m); err != nil {
			// Failing is allowed only from queued, checked where it is
			// written: a receipt that overtook a lost ack wins.
			var perm *permanentError
			if errors.As(err, &perm) {
				if err := e.setStatus(ctx, m.ID, StatusFailed, perm.Error(), time.Time{}); err != nil {
					return idle
				}
				continue
			}
			if time.Since(m.CreatedAt) > giveUpAfter || (e.cfg.MaxAttempts > 0 && m.Attempts+1 >= e.cfg.MaxAttempts) {
				if err := e.setStatus(ctx, m.ID, StatusFailed, "gave up: "+Redact(err.Error()), time.Time{}); err != nil {
					return idle
				}
				continue
			}
			backoff := backoff.Policy{Min: e.cfg.MinBackoff, Max: e.cfg.MaxBackoff}.Delay(m.Attempts)
			retryAt, reason := time.Now().Add(backoff).UnixNano(), Redact(err.Error())
			e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $1, error = $2 WHERE id = $3 AND status = $4`, retryAt, reason, m.ID, StatusQueued)
				return err
			})
			e.log.Info("send failed; will retry", "session", s.name, "id", m.ID, "attempt", m.Attempts+1, "backoff", backoff, "err", err)
			return backoff
		}
	}
}

func scanPending(r scanner) (Message, int64, error) {
	var m Message
	var next int64
	var ts *int64
	var created, updated int64
	err := r.Scan(&m.seq, &m.ID, &m.Session, &m.Peer, &m.To, &m.Text, &m.ReplyTo, &m.Status, &m.Attempts, &m.Error, &ts, &created, &updated, &next)
	m.CreatedAt = time.Unix(0, created)
	return m, next, err
}

// permanentError is a send failure that retrying cannot fix.
type permanentError struct{ msg string }

func (p *permanentError) Error() string { return p.msg }

// sendOne records the attempt (committed before the network call, so a
// crash mid-send is retried with the same message id), sends, and records
// the server's ack.
func (s *session) sendOne(ctx context.Context, cli *whatsmeow.Client, m Message) error {
	e := s.e
	now := e.cfg.Now().UnixNano()
	if err := e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, updated_at = $1 WHERE id = $2`, now, m.ID)
		return err
	}); err != nil {
		return err
	}
	to, err := types.ParseJID(m.To)
	if err != nil {
		return &permanentError{"stored recipient is invalid: " + err.Error()}
	}
	if to.Server == types.DefaultUserServer && m.Attempts == 0 {
		res, err := cli.IsOnWhatsApp(ctx, []string{"+" + to.User})
		if err != nil {
			return fmt.Errorf("checking the recipient: %w", err)
		}
		if len(res) == 0 || !res[0].IsIn {
			return &permanentError{"recipient " + maskPhone(to.User) + " is not on WhatsApp"}
		}
	}
	msg := &waE2E.Message{Conversation: proto.String(m.Text)}
	if m.ReplyTo != "" {
		msg = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String(m.Text),
			ContextInfo: &waE2E.ContextInfo{
				StanzaID:    proto.String(m.ReplyTo),
				Participant: proto.String(to.String()),
			},
		}}
	}
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	resp, err := cli.SendMessage(sctx, to, msg, whatsmeow.SendRequestExtra{ID: types.MessageID(m.ID), Timeout: 30 * time.Second})
	if err != nil {
		return classify(err)
	}
	return e.setStatus(ctx, m.ID, StatusSent, "", resp.Timestamp)
}

// classify marks server errors that retrying cannot fix as permanent.
func classify(err error) error {
	if errors.Is(err, whatsmeow.ErrServerReturnedError) {
		msg := err.Error()
		if i := strings.LastIndex(msg, " "); i >= 0 {
			if code, convErr := strconv.Atoi(msg[i+1:]); convErr == nil && code >= 400 && code < 500 && code != 408 && code != 429 {
				return &permanentError{fmt.Sprintf("WhatsApp refused the message (error %d)", code)}
			}
		}
	}
	if errors.Is(err, whatsmeow.ErrRecipientADJID) || errors.Is(err, whatsmeow.ErrUnknownServer) || errors.Is(err, whatsmeow.ErrBroadcastListUnsupported) {
		return &permanentError{err.Error()}
	}
	return err
}

// maskPhone keeps the country code and last two digits for logs and errors.
func maskPhone(d string) string {
	if len(d) < 6 {
		return "***"
	}
	return "+" + d[:2] + strings.Repeat("*", len(d)-4) + d[len(d)-2:]
}
