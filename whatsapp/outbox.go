package whatsapp

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"waappliance/events"
)

// Message statuses, in the order a message moves through them.
const (
	StatusQueued    = "queued"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

var statusRank = map[string]int{StatusQueued: 0, StatusSent: 1, StatusDelivered: 2, StatusRead: 3}

// MaxTextBytes caps a text message (WhatsApp's own limit is about 65,536 characters).
const MaxTextBytes = 16 << 10

// SendRequest is one message to enqueue.
type SendRequest struct {
	To      string
	Text    string
	ReplyTo string
	// Peer is the name of the API peer that asked; IdempotencyKey, when set,
	// makes a repeated request from the same peer return the original message.
	Peer           string
	IdempotencyKey string
}

// Message is an outbox entry with its history.
type Message struct {
	ID        string     `json:"id"`
	Session   string     `json:"session"`
	To        string     `json:"to"`
	Text      string     `json:"text,omitempty"`
	ReplyTo   string     `json:"reply_to,omitempty"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	Error     string     `json:"error,omitempty"`
	ServerTS  *time.Time `json:"server_timestamp,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	History   []StatusAt `json:"history,omitempty"`
	Peer      string     `json:"-"`
	seq       int64
}

// StatusAt is one step of a message's history.
type StatusAt struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// newMessageID makes an id in the format WhatsApp Web uses (3EB0 + hex).
func newMessageID() string {
	var b [9]byte
	rand.Read(b[:])
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// Send validates req and commits it to the outbox; the message is durable
// when Send returns. created is false when an Idempotency-Key matched an
// earlier message, which is returned instead.
func (e *Engine) Send(ctx context.Context, session string, req SendRequest) (msg Message, created bool, err error) {
	s, err := e.session(session)
	if err != nil {
		return Message{}, false, err
	}
	if strings.TrimSpace(req.Text) == "" {
		return Message{}, false, ErrEmptyText
	}
	if len(req.Text) > MaxTextBytes {
		return Message{}, false, fmt.Errorf("%w: %d bytes, at most %d", ErrTextTooLong, len(req.Text), MaxTextBytes)
	}
	to, err := ParseRecipient(req.To)
	if err != nil {
		return Message{}, false, err
	}
	info, err := e.info(ctx, session)
	if err != nil {
		return Message{}, false, err
	}
	switch {
	case info.State == StateLoggedOut:
		return Message{}, false, ErrLoggedOut
	case info.JID == "":
		return Message{}, false, ErrNotPaired
	}
	now := e.cfg.Now()
	id := newMessageID()
	var idem any
	if req.IdempotencyKey != "" {
		idem = req.IdempotencyKey
	}
	err = e.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		if req.IdempotencyKey != "" {
			var existing, exTo, exText, exSession string
			err := tx.QueryRowContext(ctx, `SELECT id, to_jid, text, session FROM outbox WHERE peer = ? AND idem_key = ?`, req.Peer, req.IdempotencyKey).Scan(&existing, &exTo, &exText, &exSession)
			if err == nil {
				if exTo != to.String() || exText != req.Text || exSession != session {
					return ErrIdempotencyConflict
				}
				id = existing
				return errReplay
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox(id, session, peer, idem_key, to_jid, text, reply_to, status, next_attempt_at, created_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?,?,?,?)`, id, session, req.Peer, idem, to.String(), req.Text, req.ReplyTo, StatusQueued, now.UnixNano(), now.UnixNano(), now.UnixNano()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox_history(message_id, at, status) VALUES (?,?,?)`, id, now.UnixNano(), StatusQueued)
		return err
	})
	switch {
	case errors.Is(err, errReplay):
		m, err := e.Message(ctx, session, id)
		return m, false, err
	case err != nil:
		return Message{}, false, err
	}
	// Read back what was committed before waking the sender, so the answer
	// is the accepted message ("queued"), not a race with its delivery.
	m, err := e.Message(ctx, session, id)
	s.poke()
	return m, true, err
}

var errReplay = errors.New("idempotent replay")

const msgCols = `seq, id, session, peer, to_jid, text, reply_to, status, attempts, error, server_ts, created_at, updated_at`

func scanMessage(r scanner) (Message, error) {
	var m Message
	var ts sql.NullInt64
	var created, updated int64
	if err := r.Scan(&m.seq, &m.ID, &m.Session, &m.Peer, &m.To, &m.Text, &m.ReplyTo, &m.Status, &m.Attempts, &m.Error, &ts, &created, &updated); err != nil {
		return m, err
	}
	if ts.Valid {
		t := time.Unix(ts.Int64, 0).UTC()
		m.ServerTS = &t
	}
	m.CreatedAt, m.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return m, nil
}

// Message returns one outbox message of session with its history.
func (e *Engine) Message(ctx context.Context, session, id string) (Message, error) {
	m, err := scanMessage(e.cfg.DB.QueryRowContext(ctx, `SELECT `+msgCols+` FROM outbox WHERE id = ? AND session = ?`, id, session))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: %q", ErrMessageNotFound, id)
	}
	if err != nil {
		return m, err
	}
	rows, err := e.cfg.DB.QueryContext(ctx, `SELECT at, status, detail FROM outbox_history WHERE message_id = ? ORDER BY id`, id)
	if err != nil {
		return m, err
	}
	defer rows.Close()
	for rows.Next() {
		var h StatusAt
		var at int64
		if err := rows.Scan(&at, &h.Status, &h.Detail); err != nil {
			return m, err
		}
		h.At = time.Unix(0, at).UTC()
		m.History = append(m.History, h)
	}
	return m, rows.Err()
}

// setStatus moves a message to status (only forwards, except to failed) and
// records history and a message.status event, in one transaction.
func (e *Engine) setStatus(ctx context.Context, id, status, detail string, serverTS time.Time) error {
	now := e.cfg.Now()
	var session string
	var changed bool
	err := e.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		var old string
		if err := tx.QueryRowContext(ctx, `SELECT status, session FROM outbox WHERE id = ?`, id).Scan(&old, &session); err != nil {
			return err
		}
		if old == status || old == StatusFailed || (status != StatusFailed && statusRank[status] < statusRank[old]) {
			if status == StatusSent && !serverTS.IsZero() {
				// The ack came after a receipt: keep its server timestamp.
				_, err := tx.ExecContext(ctx, `UPDATE outbox SET server_ts = ? WHERE id = ? AND server_ts IS NULL`, serverTS.Unix(), id)
				return err
			}
			return nil
		}
		if old == StatusQueued && (status == StatusDelivered || status == StatusRead) {
			// A receipt overtook the server's ack: the message was sent.
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_history(message_id, at, status, detail) VALUES (?,?,?,?)`, id, now.UnixNano(), StatusSent, "implied by a receipt that arrived before the server ack"); err != nil {
				return err
			}
		}
		q := `UPDATE outbox SET status = ?, error = ?, updated_at = ?`
		args := []any{status, detail, now.UnixNano()}
		if !serverTS.IsZero() {
			q += `, server_ts = ?`
			args = append(args, serverTS.Unix())
		}
		if _, err := tx.ExecContext(ctx, q+` WHERE id = ?`, append(args, id)...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_history(message_id, at, status, detail) VALUES (?,?,?,?)`, id, now.UnixNano(), status, detail); err != nil {
			return err
		}
		data := map[string]string{"id": id, "status": status}
		if detail != "" {
			data["error"] = detail
		}
		changed = true
		_, err := e.cfg.Events.AppendTx(ctx, tx, session, events.TypeMessageStatus, data)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not one of ours (sent from the phone, or deleted)
	}
	if err == nil && changed {
		e.cfg.Events.Notify()
	}
	return err
}

// failPending fails every queued message of a session (after a logout).
func (e *Engine) failPending(ctx context.Context, session, reason string) {
	rows, err := e.cfg.DB.QueryContext(ctx, `SELECT id FROM outbox WHERE session = ? AND status = ?`, session, StatusQueued)
	if err != nil {
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		e.setStatus(ctx, id, StatusFailed, reason, time.Time{})
	}
}
