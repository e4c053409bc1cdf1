package whatsapp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
	"waappliance/store"
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

// SendRequest is one message to enqueue.
type SendRequest struct {
	To string
	// Content is what to send; its ReplyTo, when set, carries only the id
	// the API showed (see MessageRef).
	Content Content
	// Peer is the name of the API peer that asked; IdempotencyKey, when set,
	// makes a repeated request from the same peer return the original message.
	Peer           string
	IdempotencyKey string
}

// hash is the request_hash of req: SHA-256 of the recipient (as stored)
// and the content as asked for, so a replay must ask for the same message
// and any kind compares the same way.
func (req SendRequest) hash(to string) string {
	b, _ := json.Marshal(struct {
		To      string  `json:"to"`
		Content Content `json:"content"`
	}{to, req.Content.public()}) // as asked, not as resolved
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Message is an outbox entry with its history. Kind, its one body and
// ReplyTo show the content in the API's terms (the text, the media id,
// the id of the message a reaction names, the id the reply quotes).
type Message struct {
	ID        string           `json:"id"`
	Session   string           `json:"session"`
	To        string           `json:"to"`
	Kind      string           `json:"kind"`
	Text      string           `json:"text,omitempty"`
	Mentions  []string         `json:"mentions,omitempty"`
	Image     *ImageContent    `json:"image,omitempty"`
	Video     *VideoContent    `json:"video,omitempty"`
	Audio     *AudioContent    `json:"audio,omitempty"`
	Document  *DocumentContent `json:"document,omitempty"`
	Sticker   *StickerContent  `json:"sticker,omitempty"`
	Location  *LocationContent `json:"location,omitempty"`
	Contacts  *ContactsContent `json:"contacts,omitempty"`
	Poll      *PollContent     `json:"poll,omitempty"`
	Reaction  *ReactionContent `json:"reaction,omitempty"`
	Edit      *EditContent     `json:"edit,omitempty"`
	Delete    *DeleteContent   `json:"delete,omitempty"`
	ReplyTo   string           `json:"reply_to,omitempty"`
	Status    string           `json:"status"`
	Attempts  int              `json:"attempts"`
	Error     string           `json:"error,omitempty"`
	ServerTS  *time.Time       `json:"server_timestamp,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	History   []StatusAt       `json:"history,omitempty"`
	Peer      string           `json:"-"`
	Content   Content          `json:"-"`
	seq       int64
	nextAt    int64 // next_attempt_at, UnixNano

	// RecipientLID is the recipient's LID when whatsmeow knows it (or To is one).
	RecipientLID string `json:"recipient_lid,omitempty"`
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
// earlier message, which is returned instead: that lookup comes before
// every check of the session's state, so a replay after a logout or a
// replace still gets the original.
func (e *Engine) Send(ctx context.Context, session string, req SendRequest) (msg Message, created bool, err error) {
	s, err := e.session(session)
	if err != nil {
		return Message{}, false, err
	}
	if m, ok, err := e.replay(ctx, session, req); err != nil || ok {
		return m, false, err
	}
	if err := req.Content.Validate(); err != nil {
		return Message{}, false, err
	}
	to, err := ParseRecipient(req.To)
	if err != nil {
		return Message{}, false, err
	}
	info := s.committed()
	switch {
	case info.State == StateLoggedOut:
		return Message{}, false, ErrLoggedOut
	case info.JID == "":
		return Message{}, false, ErrNotPaired
	case info.State == StateReplaced:
		return Message{}, false, ErrReplaced
	}
	hash := req.hash(to.String())
	now := e.cfg.Now()
	content, err := e.complete(ctx, session, info.JID, to, req, now)
	if err != nil {
		return Message{}, false, err
	}
	contentJSON, err := json.Marshal(content)
	if err != nil {
		return Message{}, false, err
	}
	id := newMessageID()
	var seq int64
	var idem any
	if req.IdempotencyKey != "" {
		idem = req.IdempotencyKey
	}
	// Batch: concurrent sends share one commit. fn must use its own ctx
	// and tx only (see store.DB.Batch).
	err = e.cfg.DB.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Again inside the write transaction: a concurrent request with the
		// same key may have committed since the lookup above, or be an
		// earlier fn of this very batch (then its outcome is ours: a failed
		// commit fails both).
		if existing, ok, err := lookupKey(ctx, tx, session, req); err != nil {
			return err
		} else if ok {
			id = existing
			return errReplay
		}
		// Its history starts at created_at, "queued": no row of its own
		// (Message reads it from the outbox row), one insert and two
		// pages fewer in the commit a send waits for.
		return tx.QueryRowContext(ctx, `INSERT INTO outbox(id, session, peer, idem_key, to_jid, text, reply_to, kind, content, request_hash, status, next_attempt_at, created_at, updated_at, media_id)
			VALUES ($1, $2, $3, $4, $5, '', '', $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq`, id, session, req.Peer, idem, to.String(), content.Kind, string(contentJSON), hash, StatusQueued, now.UnixNano(), now.UnixNano(), now.UnixNano(), content.MediaID()).Scan(&seq)
	})
	switch {
	case errors.Is(err, errReplay):
		m, err := e.Message(ctx, session, id)
		return m, false, err
	case err != nil:
		return Message{}, false, err
	}
	// The answer is the accepted message as committed ("queued"), built
	// from what was written rather than read back, before the sender is
	// woken: it must not race the delivery.
	at := time.Unix(0, now.UnixNano()).UTC()
	m := Message{ID: id, Session: session, Peer: req.Peer, To: to.String(), Kind: content.Kind, Status: StatusQueued,
		CreatedAt: at, UpdatedAt: at, History: []StatusAt{{Status: StatusQueued, At: at}}}
	m.setContent(content)
	m.RecipientLID = e.recipientLID(ctx, session, m.To)
	// The sender gets the row as it reads it (its content from the JSON
	// written), so that it need not read it back when it is alone.
	queued := m
	queued.seq, queued.nextAt = seq, now.UnixNano()
	var stored Content
	_ = json.Unmarshal(contentJSON, &stored)
	queued.setContent(stored)
	s.fresh.handOff(queued)
	s.poke()
	return m, true, nil
}

// Replay returns the message an earlier request of req.Peer with the same
// Idempotency-Key created (ok true), whatever the session's state now; ok
// is false when req has no key or the key is unknown (never used, or its
// message was pruned). A key reused for a different message is
// ErrIdempotencyConflict. The API asks before spending the message budget.
func (e *Engine) Replay(ctx context.Context, session string, req SendRequest) (Message, bool, error) {
	if _, err := e.session(session); err != nil {
		return Message{}, false, err
	}
	return e.replay(ctx, session, req)
}

func (e *Engine) replay(ctx context.Context, session string, req SendRequest) (Message, bool, error) {
	if req.IdempotencyKey == "" {
		return Message{}, false, nil
	}
	id, ok, err := lookupKey(ctx, e.cfg.DB, session, req)
	if err != nil || !ok {
		return Message{}, false, err
	}
	m, err := e.Message(ctx, session, id)
	if errors.Is(err, ErrMessageNotFound) {
		return Message{}, false, nil // pruned between the two reads
	}
	return m, err == nil, err
}

// lookupKey finds the message of (req.Peer, req.IdempotencyKey) and checks
// that req asks for the same message.
func lookupKey(ctx context.Context, q store.Querier, session string, req SendRequest) (string, bool, error) {
	if req.IdempotencyKey == "" {
		return "", false, nil
	}
	var id, exSession, exHash, exTo, exText, exReply string
	err := q.QueryRowContext(ctx, `SELECT id, session, request_hash, to_jid, text, reply_to FROM outbox WHERE peer = $1 AND idem_key = $2`,
		req.Peer, req.IdempotencyKey).Scan(&id, &exSession, &exHash, &exTo, &exText, &exReply)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	to, perr := ParseRecipient(req.To)
	same := exSession == session && perr == nil
	if same && exHash != "" {
		same = exHash == req.hash(to.String())
	} else if same {
		// A row from before request_hash (migration 0007): text only.
		c := req.Content
		same = c.Kind == KindText && c.Text != nil && exTo == to.String() && exText == c.Text.Body &&
			exReply == c.ReplyTo.id()
	}
	if !same {
		return "", false, ErrIdempotencyConflict
	}
	return id, true, nil
}

var errReplay = errors.New("idempotent replay")

const msgCols = `seq, id, session, peer, to_jid, kind, content, status, attempts, error, server_ts, next_attempt_at, created_at, updated_at`

// scanMessage reads a row of msgCols: the one outbox row scanner.
func scanMessage(r scanner) (Message, error) {
	var m Message
	var ts sql.NullInt64
	var content string
	var created, updated int64
	if err := r.Scan(&m.seq, &m.ID, &m.Session, &m.Peer, &m.To, &m.Kind, &content, &m.Status, &m.Attempts, &m.Error, &ts, &m.nextAt, &created, &updated); err != nil {
		return m, err
	}
	// Content that does not parse stays empty: the sender then fails that
	// one message (build: unknown kind) instead of stopping at it.
	var c Content
	_ = json.Unmarshal([]byte(content), &c)
	m.setContent(c)
	if ts.Valid {
		t := time.Unix(ts.Int64, 0).UTC()
		m.ServerTS = &t
	}
	m.CreatedAt, m.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return m, nil
}

// setContent sets m's content and its fields in the API's terms.
func (m *Message) setContent(c Content) {
	m.Content = c
	if t := c.Text; t != nil {
		m.Text, m.Mentions = t.Body, t.Mentions
	}
	m.Image, m.Video, m.Audio, m.Document, m.Sticker = c.Image, c.Video, c.Audio, c.Document, c.Sticker
	m.Location, m.Contacts, m.Poll, m.Reaction, m.Edit, m.Delete = c.Location, c.Contacts, c.Poll, c.Reaction, c.Edit, c.Delete
	m.ReplyTo = c.ReplyTo.id()
}

// Message returns one outbox message of session with its history.
func (e *Engine) Message(ctx context.Context, session, id string) (Message, error) {
	m, err := scanMessage(e.cfg.DB.QueryRowContext(ctx, `SELECT `+msgCols+` FROM outbox WHERE id = $1 AND session = $2`, id, session))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: %q", ErrMessageNotFound, id)
	}
	if err != nil {
		return m, err
	}
	m.RecipientLID = e.recipientLID(ctx, session, m.To)
	rows, err := e.cfg.DB.QueryContext(ctx, `SELECT at, status, detail FROM outbox_history WHERE message_id = $1 ORDER BY id`, id)
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
		if len(m.History) == 0 && h.Status != StatusQueued {
			m.History = append(m.History, StatusAt{Status: StatusQueued, At: m.CreatedAt})
		}
		m.History = append(m.History, h)
	}
	if err := rows.Err(); err != nil {
		return m, err
	}
	// A message queued since 2026-12 has no row for "queued" (Send writes
	// none: it is the outbox row's created_at); an older one has.
	if len(m.History) == 0 {
		m.History = []StatusAt{{Status: StatusQueued, At: m.CreatedAt}}
	}
	return m, nil
}

// canMove reports whether a message may go from status old to next:
// forwards along queued → sent → delivered → read, and to failed only from
// queued (a message the server acked, or a receipt proved sent, cannot fail
// any more).
func canMove(old, next string) bool {
	if next == StatusFailed {
		return old == StatusQueued
	}
	if old == StatusFailed {
		return false
	}
	o, ok1 := statusRank[old]
	n, ok2 := statusRank[next]
	return ok1 && ok2 && n > o
}

// setStatus moves a message to status when canMove allows it, checked in
// the transaction that writes it, with its history and a message.status
// event. Anything else is a no-op (an ack after a receipt only adds its
// server timestamp). It goes through Batch: a burst's delivery receipts share
// commits with its accepts and acks instead of taking the write lock each.
func (e *Engine) setStatus(ctx context.Context, id, status, detail string, serverTS time.Time) error {
	var changed bool
	err := e.cfg.DB.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		changed, err = e.moveTx(ctx, tx, id, status, detail, serverTS)
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

// moveTx is setStatus inside the caller's transaction; the caller calls
// Events.Notify after commit when changed.
func (e *Engine) moveTx(ctx context.Context, tx *sql.Tx, id, status, detail string, serverTS time.Time) (changed bool, err error) {
	now := e.cfg.Now()
	var old, session, to string
	if err := tx.QueryRowContext(ctx, `SELECT status, session, to_jid FROM outbox WHERE id = $1`, id).Scan(&old, &session, &to); err != nil {
		return false, err
	}
	if !canMove(old, status) {
		if status == StatusSent && !serverTS.IsZero() && old != StatusFailed {
			// The ack came after a receipt: keep its server timestamp.
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET server_ts = $1 WHERE id = $2 AND server_ts IS NULL`, serverTS.Unix(), id)
			return false, err
		}
		return false, nil
	}
	if old == StatusQueued && (status == StatusDelivered || status == StatusRead) {
		// A receipt overtook the server's ack: the message was sent.
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_history(message_id, at, status, detail) VALUES ($1, $2, $3, $4)`, id, now.UnixNano(), StatusSent, "implied by a receipt that arrived before the server ack"); err != nil {
			return false, err
		}
	}
	q := `UPDATE outbox SET status = $1, error = $2, updated_at = $3`
	args := []any{status, detail, now.UnixNano()}
	if !serverTS.IsZero() {
		q += `, server_ts = $4`
		args = append(args, serverTS.Unix())
	}
	args = append(args, id)
	if _, err := tx.ExecContext(ctx, q+fmt.Sprintf(` WHERE id = $%d`, len(args)), args...); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_history(message_id, at, status, detail) VALUES ($1, $2, $3, $4)`, id, now.UnixNano(), status, detail); err != nil {
		return false, err
	}
	data := map[string]string{"id": id, "status": status}
	if lid := e.recipientLID(ctx, session, to); lid != "" {
		data["recipient_lid"] = lid // as the message's view names it
	}
	if detail != "" {
		data["error"] = detail
	}
	if _, err := e.cfg.Events.AppendTx(ctx, tx, session, events.TypeMessageStatus, data); err != nil {
		return false, err
	}
	return true, nil
}

// failPending fails every queued message of a session (after a logout), in
// one transaction, so an ack or receipt cannot slip in between the read
// and the write.
func (e *Engine) failPending(ctx context.Context, session, reason string) {
	if s, err := e.session(session); err == nil {
		s.fresh.invalidate() // before the write: the sender reads the queue again
	}
	var n int
	err := e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ids, err := store.Strings(ctx, tx, `SELECT id FROM outbox WHERE session = $1 AND status = $2`, session, StatusQueued)
		if err != nil {
			return err
		}
		for _, id := range ids {
			changed, err := e.moveTx(ctx, tx, id, StatusFailed, reason, time.Time{})
			if err != nil {
				return err
			}
			if changed {
				n++
			}
		}
		return nil
	})
	if err != nil {
		e.log.Error("failing queued messages failed", "session", session, "err", err)
		return
	}
	if n > 0 {
		e.cfg.Events.Notify()
	}
}

// pruneMessages deletes outbox messages that reached a final state (read,
// failed) or stopped moving (sent, delivered) before cutoff, with their
// history and idempotency keys. Queued messages are never pruned: the
// sender fails them itself after giveUpAfter. The event log's pruner calls
// it with the events' retention.
func (e *Engine) pruneMessages(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE status != $1 AND updated_at < $2`, StatusQueued, cutoff.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("whatsapp: prune outbox: %w", err)
	}
	if n > 0 {
		e.log.Info("pruned old messages from the outbox", "messages", n)
	}
	return n, nil
}

// complete is req's content as it is stored: the reply and the message a
// reaction, edit or delete names resolved in this chat, a media body's
// item looked up, a poll's secret drawn, the timestamp of a reaction or an
// edit fixed. Whatever the caller put in those fields is replaced.
func (e *Engine) complete(ctx context.Context, session, own string, to types.JID, req SendRequest, now time.Time) (Content, error) {
	c := req.Content.public()
	c.ReplyTo = nil
	if r := req.Content.ReplyTo; r != nil {
		t, err := e.resolveRef(ctx, session, own, to, r.ID)
		if err != nil {
			return c, err
		}
		c.ReplyTo = &t.ref
	}
	b, err := c.body()
	if err != nil {
		return c, err
	}
	if rb, ok := b.(refBody); ok {
		t, err := e.resolveRef(ctx, session, own, to, rb.ref())
		if errors.Is(err, ErrReplyNotFound) {
			return c, fmt.Errorf("%w: %q", ErrTargetNotFound, rb.ref())
		}
		if err != nil {
			return c, err
		}
		if t.failed {
			return c, fmt.Errorf("%w: %s failed and never reached WhatsApp", ErrWrongMessageKind, rb.ref())
		}
		if err := rb.check(t, now.UnixMilli()); err != nil {
			return c, err
		}
		c.Target, c.AtMS = &t.ref, now.UnixMilli()
	}
	if mb, ok := b.(mediaBody); ok {
		st, err := e.mediaFor(ctx, session, req.Peer, mb)
		if err != nil {
			return c, err
		}
		c.Media = st
	}
	if c.Kind == KindPoll {
		c.Secret = make([]byte, 32)
		rand.Read(c.Secret)
	}
	return c, nil
}

// resolveRef finds the message id names in session's chat with to: one of
// our sends (its sender is us, own being the session's JID), else one the
// event log received in that chat, from the contact or from our own phone.
// Anything else, a message of another session or chat included, is
// ErrReplyNotFound.
func (e *Engine) resolveRef(ctx context.Context, session, own string, to types.JID, id string) (target, error) {
	ownJID, err := types.ParseJID(own)
	if err != nil {
		return target{}, fmt.Errorf("whatsapp: session JID %q: %w", own, err)
	}
	me, chat := ownJID.ToNonAD().String(), to.String()
	var outTo, kind, status string
	var created int64
	var serverTS sql.NullInt64
	err = e.cfg.DB.QueryRowContext(ctx, `SELECT to_jid, kind, status, created_at, server_ts FROM outbox WHERE id = $1 AND session = $2`, id, session).Scan(&outTo, &kind, &status, &created, &serverTS)
	switch {
	case err == nil && outTo == chat:
		at := created / int64(time.Millisecond)
		if serverTS.Valid {
			at = serverTS.Int64 * 1000
		}
		return target{ref: MessageRef{Chat: chat, Sender: me, ID: id, FromMe: true}, kind: kind, atMS: at, failed: status == StatusFailed}, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return target{}, err
	}
	for _, sender := range []string{chat, me} {
		key := messageKey(chat, sender, id)
		ev, ok, err := e.cfg.Events.ByKey(ctx, session, events.TypeMessageReceived, key)
		if err != nil {
			return target{}, err
		}
		if !ok {
			continue
		}
		var data struct {
			Kind      string    `json:"kind"`
			Timestamp time.Time `json:"timestamp"`
		}
		_ = json.Unmarshal(ev.Data, &data)
		at := ev.At
		if !data.Timestamp.IsZero() {
			at = data.Timestamp
		}
		return target{ref: MessageRef{Chat: chat, Sender: sender, ID: id, FromMe: sender == me}, kind: data.Kind, atMS: at.UnixMilli()}, nil
	}
	return target{}, fmt.Errorf("%w: %q", ErrReplyNotFound, id)
}
