package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

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
// The times it compares with a row's (created_at, next_attempt_at) are
// Config.Now's; only its timer waits real time, for the span sendDue
// computed on that clock.
func (s *session) senderLoop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	acks := newAckCommitter(s.e)
	defer acks.close()
	for {
		select {
		case <-s.stop:
			return
		case <-s.nudge:
		case <-timer.C:
		}
		wait := s.sendDue(acks)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// sendDue sends what is due and returns how long to sleep before looking
// again. The sends WhatsApp acked are committed by acks while the next
// message goes out: after is the seq of the last one sent, whose commit
// may still be in flight, and the queue is read past it. Whenever the
// sender stops (nothing more, a failure) it waits for those commits and
// reads the queue from its start again, so a message whose commit failed
// is sent again (under its id: the same message to WhatsApp).
func (s *session) sendDue(acks *ackCommitter) time.Duration {
	const idle = 5 * time.Second
	cli, ok := s.connected()
	if !ok {
		return idle
	}
	ctx := s.ctx
	e := s.e
	var after int64
	q := queueReader{s: s}
	settle := func() bool {
		after = 0 // q drops what it read ahead at its next read from the head
		return acks.wait()
	}
	defer settle()
	for {
		select {
		case <-s.stop:
			return idle
		default:
		}
		m, err := q.next(ctx, after)
		if err != nil {
			if after == 0 {
				return idle // no queued message (or the database is closing)
			}
			if !settle() {
				return s.cfg.MinBackoff // a commit failed: not in a tight loop
			}
			continue
		}
		if wait := time.Unix(0, m.nextAt).Sub(s.cfg.Now()); wait > 0 {
			return wait
		}
		ts, err := s.sendOne(ctx, cli, m)
		if err == nil {
			acks.add(m.ID, ts)
			after = m.seq
			continue
		}
		// The acks before this one are recorded first (and one that failed
		// makes its message the oldest again, ahead of this one).
		settle()
		// Failing is allowed only from queued, checked where it is
		// written: a receipt that overtook a lost ack wins.
		var perm *permanentError
		if errors.As(err, &perm) {
			if err := e.finishAttempt(ctx, m.ID, StatusFailed, perm.Error(), time.Time{}); err != nil {
				return idle
			}
			continue
		}
		if s.cfg.Now().Sub(m.CreatedAt) > giveUpAfter || (s.cfg.MaxAttempts > 0 && m.Attempts+1 >= s.cfg.MaxAttempts) {
			if err := e.finishAttempt(ctx, m.ID, StatusFailed, "gave up: "+Redact(err.Error()), time.Time{}); err != nil {
				return idle
			}
			continue
		}
		backoff := backoff.Policy{Min: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}.Delay(m.Attempts)
		retryAt, reason := s.cfg.Now().Add(backoff).UnixNano(), Redact(err.Error())
		s.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, error = $2, updated_at = $3 WHERE id = $4 AND status = $5`,
				retryAt, reason, s.cfg.Now().UnixNano(), m.ID, StatusQueued)
			return err
		})
		s.log.Info("send failed; will retry", "session", s.name, "id", m.ID, "attempt", m.Attempts+1, "backoff", backoff, "err", err)
		return backoff
	}
}

// queueReader gives the sender its session's queued messages in order,
// reading them readAhead at a time (a burst reads its queue once per
// readAhead messages instead of once per message), or taking the one that
// Send handed over when it is alone in the queue (freshQueue). What it
// read ahead is dropped when the sender starts over from the head of the
// queue (after 0) and when another writer changed queued rows
// (freshQueue.invalidate), so it never sends what the queue no longer
// holds any more than a read just before the send would.
type queueReader struct {
	s     *session
	ahead []Message
	epoch uint64 // the freshQueue epoch ahead was read in
}

// readAhead is how many queued messages one read of the queue takes.
const readAhead = 16

// next returns the oldest queued message past seq after, sql.ErrNoRows
// when there is none.
func (q *queueReader) next(ctx context.Context, after int64) (Message, error) {
	s := q.s
	if after == 0 {
		q.ahead = nil
		if m, ok := s.fresh.take(); ok {
			return m, nil
		}
	}
	g, epoch := s.fresh.generation()
	if len(q.ahead) > 0 && q.epoch == epoch && q.ahead[0].seq > after {
		m := q.ahead[0]
		q.ahead = q.ahead[1:]
		return m, nil
	}
	q.ahead = q.ahead[:0]
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT `+msgCols+` FROM outbox WHERE session = $1 AND status = $2 AND seq > $3 ORDER BY seq LIMIT $4`, s.name, StatusQueued, after, readAhead)
	if err != nil {
		return Message{}, err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			q.ahead = nil
			return Message{}, err
		}
		q.ahead = append(q.ahead, m)
	}
	if err := rows.Err(); err != nil {
		q.ahead = nil
		return Message{}, err
	}
	if len(q.ahead) == 0 {
		if after == 0 {
			s.fresh.foundEmpty(g)
		}
		return Message{}, sql.ErrNoRows
	}
	q.epoch = epoch
	m := q.ahead[0]
	q.ahead = q.ahead[1:]
	return m, nil
}

// freshQueue lets the sender send a message that is alone in its
// session's queue without reading it back: on an idle appliance that read
// is a tenth of the way from the API call to the contact.
//
// Only Send adds queued rows, and each hands the message it committed
// over here (handOff) before its answer. So once a read of the whole queue
// (after 0) found it empty, and no hand-over came while that read ran
// (generation), the messages handed over since are exactly the queued
// ones. When that is one message, take gives it, as committed. Anything
// else, two or more, a hand-over racing the read, a change to queued rows
// by another writer (failPending invalidates first), makes the sender read
// the queue as before; and take clears the state either way, so the
// shortcut is taken at most once per empty read.
type freshQueue struct {
	mu    sync.Mutex
	epoch uint64  // invalidations so far
	gen   uint64  // hand-overs so far
	empty bool    // the last whole-queue read found it empty, unraced
	n     int     // hand-overs since that read
	m     Message // the last of them
}

func (f *freshQueue) handOff(m Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.empty {
		f.n++
		f.m = m
	}
}

// generation is taken before a read of the queue: the hand-overs and the
// invalidations so far.
func (f *freshQueue) generation() (gen, epoch uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, f.epoch
}

// foundEmpty records that a read of the whole queue begun at generation g
// found no queued message.
func (f *freshQueue) foundEmpty(g uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.empty, f.n, f.m = f.gen == g, 0, Message{}
}

// take returns the one message handed over since an empty read, if there
// is exactly one.
func (f *freshQueue) take() (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.m, f.empty && f.n == 1
	f.empty, f.n, f.m = false, 0, Message{}
	return m, ok
}

// invalidate makes the sender read the queue again before its next send.
func (f *freshQueue) invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	f.empty, f.n, f.m = false, 0, Message{}
}

// permanentError is a send failure that retrying cannot fix.
type permanentError struct{ msg string }

func (p *permanentError) Error() string { return p.msg }

// sendOne sends m and returns the server's timestamp of its ack. Nothing
// is committed before the network call, and the ack is committed after it
// (ackCommitter): the WhatsApp id is fixed at enqueue, so a crash between
// the send and that commit sends the same message again under the same
// id, which WhatsApp (and the recipient's phone) take as the same message.
// The attempt a crash interrupted goes uncounted, which only delays
// MaxAttempts by one.
func (s *session) sendOne(ctx context.Context, cli *whatsmeow.Client, m Message) (time.Time, error) {
	e := s.e
	to, err := types.ParseJID(m.To)
	if err != nil {
		return time.Time{}, &permanentError{"stored recipient is invalid: " + err.Error()}
	}
	if to.Server == types.DefaultUserServer {
		on, err := e.onWhatsApp.check(ctx, to.User, s.cfg.Now(), func(ctx context.Context, user string) (bool, error) {
			res, err := cli.IsOnWhatsApp(ctx, []string{"+" + user})
			return err == nil && len(res) > 0 && res[0].IsIn, err
		})
		if err != nil {
			return time.Time{}, fmt.Errorf("checking the recipient: %w", err)
		}
		if !on {
			return time.Time{}, &permanentError{"recipient " + maskPhone(to.User) + " is not on WhatsApp"}
		}
	}
	if err := s.prepare(ctx, cli, &m); err != nil {
		return time.Time{}, err
	}
	msg, err := m.Content.build()
	if err != nil {
		return time.Time{}, &permanentError{"stored content: " + err.Error()}
	}
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	resp, err := cli.SendMessage(sctx, to, msg, whatsmeow.SendRequestExtra{ID: types.MessageID(m.ID), Timeout: 30 * time.Second})
	if err != nil {
		return time.Time{}, classify(err)
	}
	return resp.Timestamp, nil
}

// ackCommitter commits the server acks of a session's sends off the send
// path, in send order: whatever acks are waiting when it looks go into one
// commit (attempts and the move to sent, with history and events).
type ackCommitter struct {
	e       *Engine
	jobs    chan sentAck
	pending sync.WaitGroup
	failed  atomic.Bool
	done    chan struct{}
}

type sentAck struct {
	id string
	ts time.Time
}

// maxAcksPerCommit bounds one commit, and how far the sender runs ahead.
const maxAcksPerCommit = 256

func newAckCommitter(e *Engine) *ackCommitter {
	a := &ackCommitter{e: e, jobs: make(chan sentAck, maxAcksPerCommit), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *ackCommitter) add(id string, ts time.Time) {
	a.pending.Add(1)
	a.jobs <- sentAck{id, ts}
}

// wait returns when every ack added so far is committed or failed; false
// when one failed since the last wait (its message is still queued).
func (a *ackCommitter) wait() bool {
	a.pending.Wait()
	return !a.failed.Swap(false)
}

func (a *ackCommitter) close() {
	a.pending.Wait()
	close(a.jobs)
	<-a.done
}

func (a *ackCommitter) run() {
	defer close(a.done)
	for j := range a.jobs {
		batch := []sentAck{j}
	more:
		for len(batch) < maxAcksPerCommit {
			select {
			case j, ok := <-a.jobs:
				if !ok {
					break more
				}
				batch = append(batch, j)
			default:
				break more
			}
		}
		// Not the engine's context: an ack WhatsApp gave us is recorded
		// even while the engine closes (the database closes after it).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.e.ctx), 30*time.Second)
		if err := a.e.finishAttempts(ctx, StatusSent, "", batch...); err != nil {
			a.failed.Store(true)
			a.e.log.Warn("recording sent messages failed; they stay queued and go again under their ids", "messages", len(batch), "err", err)
		}
		cancel()
		a.pending.Add(-len(batch))
	}
}

// finishAttempt counts a finished send attempt and moves the message to
// status (failed for good, here) in one commit.
func (e *Engine) finishAttempt(ctx context.Context, id, status, detail string, serverTS time.Time) error {
	return e.finishAttempts(ctx, status, detail, sentAck{id, serverTS})
}

// finishAttempts is finishAttempt for several messages, in order, in one
// commit. It goes through Batch: the senders of several sessions share
// one commit. A message deleted meanwhile (its session went) is skipped.
func (e *Engine) finishAttempts(ctx context.Context, status, detail string, acks ...sentAck) error {
	var changed bool
	err := e.cfg.DB.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		changed = false
		for _, a := range acks {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1 WHERE id = $1`, a.id); err != nil {
				return err
			}
			c, err := e.moveTx(ctx, tx, a.id, status, detail, a.ts)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			changed = changed || c
		}
		return nil
	})
	if err == nil && changed {
		e.cfg.Events.Notify()
	}
	return err
}

// messageForRetry is whatsmeow's GetMessageForRetry: a recipient's phone
// that could not decrypt one of our messages asks for it again, and
// whatsmeow's own cache of recent sends is empty after a restart. The
// outbox still has it (until pruned): the same content, rebuilt. Only the
// recipient (or one of our own devices) gets it.
func (s *session) messageForRetry(cli *whatsmeow.Client, requester types.JID, id types.MessageID) *waE2E.Message {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	m, err := scanMessage(s.cfg.DB.QueryRowContext(ctx, `SELECT `+msgCols+` FROM outbox WHERE id = $1 AND session = $2`, string(id), s.name))
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			s.log.Warn("retry receipt: outbox lookup failed", "session", s.name, "id", id, "err", err)
		}
		return nil
	}
	to, err := types.ParseJID(m.To)
	if err != nil {
		return nil
	}
	who := requester.ToNonAD()
	if who.Server == types.HiddenUserServer && cli.Store != nil && cli.Store.LIDs != nil {
		if pn, err := cli.Store.LIDs.GetPNForLID(ctx, who); err == nil && !pn.IsEmpty() {
			who = pn
		}
	}
	own := cli.Store.GetJID()
	if who.User != to.User && who.User != own.User && who != to.ToNonAD() {
		s.log.Warn("retry receipt for a message of another recipient; not answered", "session", s.name, "id", id)
		return nil
	}
	msg, err := m.Content.build()
	if err != nil {
		s.log.Warn("retry receipt: content not rebuilt", "session", s.name, "id", id, "err", err)
		return nil
	}
	s.log.Info("retry receipt answered from the outbox", "session", s.name, "id", id)
	return msg
}

// recipientCache remembers IsOnWhatsApp answers per phone number, so a
// burst to one contact asks once: positive answers for a day, negative
// for an hour (a number may join). At most maxRecipients entries; when
// full, expired ones go first, then arbitrary ones.
type recipientCache struct {
	mu sync.Mutex
	m  map[string]recipientAnswer
}

type recipientAnswer struct {
	on      bool
	expires time.Time
}

const (
	recipientOnTTL  = 24 * time.Hour
	recipientOffTTL = time.Hour
	maxRecipients   = 10000
)

// check answers from the cache, or asks (IsOnWhatsApp) and remembers
// the answer; an error is not remembered.
func (c *recipientCache) check(ctx context.Context, user string, now time.Time, ask func(context.Context, string) (bool, error)) (bool, error) {
	c.mu.Lock()
	a, ok := c.m[user]
	c.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.on, nil
	}
	on, err := ask(ctx, user)
	if err != nil {
		return false, err
	}
	ttl := recipientOffTTL
	if on {
		ttl = recipientOnTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]recipientAnswer{}
	}
	if len(c.m) >= maxRecipients {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < maxRecipients {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[user] = recipientAnswer{on: on, expires: now.Add(ttl)}
	return on, nil
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
