package webhooks

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"waappliance/audit"
	"waappliance/events"
	"waappliance/peers"
)

// httpClient posts deliveries: through the Dialer only, never following a
// redirect (a 3xx is a failed attempt), with keep-alive per subscription.
type httpClient struct {
	c *http.Client
	t *http.Transport
}

func newHTTPClient(d Dialer, timeout time.Duration) *httpClient {
	t := &http.Transport{
		DialContext: d.DialContext,
		Proxy:       nil, // never the environment's proxy
		// One request in flight per subscription and at most MaxPerPeer
		// subscriptions per peer: as many keep-alive connections per
		// receiver, so a burst reuses them instead of dialling (and
		// leaving in TIME_WAIT) a connection per delivery.
		MaxIdleConnsPerHost:   MaxPerPeer,
		MaxConnsPerHost:       MaxPerPeer,
		MaxIdleConns:          1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &httpClient{t: t, c: &http.Client{
		Transport:     t,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (h *httpClient) close() { h.t.CloseIdleConnections() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter spreads d by ±10%, so subscriptions failing together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// errStop ends a subscription's goroutine: removed or disabled.
var errStop = errors.New("webhooks: stop")

// run delivers subscription id until it is disabled or removed or ctx
// ends. A database error is retried after a pause.
func (m *Manager) run(ctx context.Context, id int64) {
	for ctx.Err() == nil {
		err := m.follow(ctx, id)
		if errors.Is(err, errStop) || ctx.Err() != nil {
			return
		}
		if err != nil {
			m.log.Warn("webhook delivery paused", "webhook", id, "err", err)
		}
		if m.cfg.Wait(ctx, time.Second) != nil {
			return
		}
	}
}

// follow reads the log after the subscription's cursor and delivers each
// selected event in order, one at a time.
func (m *Manager) follow(ctx context.Context, id int64) error {
	r, err := m.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return errStop
	}
	if err != nil {
		return err
	}
	if r.disabled {
		return errStop
	}
	f := events.Filter{After: r.Cursor, HasAfter: true, Limit: 100}
	if len(r.Sessions) > 0 {
		f.Sessions = r.Sessions
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fl, err := events.Follow(fctx, m.cfg.Events, f)
	if errors.Is(err, events.ErrCursorExpired) {
		return m.disable(ctx, r, "cursor expired", 0, err.Error())
	}
	if err != nil {
		return err
	}
	committed := r.Cursor
	for batch := range fl.C {
		for _, e := range batch {
			if e.Type != events.TypeWebhookDisabled && (slices.Contains(r.Events, "*") || slices.Contains(r.Events, e.Type)) {
				if err := m.deliverEvent(ctx, r, e); err != nil {
					return err
				}
				if r.Cursor == e.ID {
					committed = e.ID
					continue
				}
			}
			r.Cursor = e.ID // skipped: not selected, or a session the peer may not read
		}
		// A batch that ended in skipped events: commit the cursor past
		// them, so a restart does not read them again.
		if r.Cursor > committed {
			if err := m.setCursor(ctx, r.ID, r.Cursor); err != nil {
				return err
			}
			committed = r.Cursor
		}
	}
	if err := fl.Err(); errors.Is(err, events.ErrCursorExpired) {
		return m.disable(ctx, r, "cursor expired", 0, err.Error())
	} else if err != nil {
		return err
	}
	return ctx.Err()
}

func (m *Manager) setCursor(ctx context.Context, id, cursor int64) error {
	return m.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhooks SET cursor = $2 WHERE id = $1 AND cursor < $2`, id, cursor)
		return err
	})
}

// deliverEvent attempts e until it is delivered (r.Cursor becomes e.ID),
// skipped because the peer may not read its session (r.Cursor unchanged,
// nil), or the subscription stops.
func (m *Manager) deliverEvent(ctx context.Context, r *row, e events.Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	for {
		if d := r.nextAt.Sub(m.cfg.Now()); !r.nextAt.IsZero() && d > 0 {
			if err := m.cfg.Wait(ctx, d); err != nil {
				return err
			}
		}
		// The peer as it is now: removed, disabled or without read stops
		// (or pauses) delivery before anything is sent.
		p, err := m.cfg.Peers.Get(r.Peer)
		if peers.IsNotFound(err) {
			return errStop // its subscriptions went with it
		}
		if err != nil {
			return err
		}
		if !p.Active(m.cfg.Now()) || !p.Has(peers.ScopeRead) {
			if err := m.cfg.Wait(ctx, m.cfg.PeerPoll); err != nil {
				return err
			}
			continue
		}
		if !p.AllowsSession(e.Session) {
			return nil
		}
		// The URL as the peer may use it now (an admin may have withdrawn
		// --webhooks-external): paused until it may again.
		if _, err := CheckURL(p, m.cfg.Peers.Server().Subnet, r.URL); err != nil {
			if err := m.cfg.Wait(ctx, m.cfg.PeerPoll); err != nil {
				return err
			}
			continue
		}
		secrets := []string{r.secret}
		if r.oldSecret != "" && m.cfg.Now().Before(r.oldUntil) {
			secrets = append(secrets, r.oldSecret)
		}
		status, derr := m.post(ctx, r.URL, strconv.FormatInt(e.ID, 10), secrets, body)
		if ctx.Err() != nil {
			return ctx.Err() // cut off by a stop: retried at the next start
		}
		now := m.cfg.Now().UTC()
		switch {
		case derr == nil && status >= 200 && status < 300:
			// Batch: the cursors of concurrent deliveries share a commit.
			err := m.cfg.DB.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE webhooks SET cursor = $2, attempts = 0, next_attempt_at = 0, last_success_at = $3, last_status = $4, last_error = '' WHERE id = $1`,
					r.ID, e.ID, now.UnixNano(), status)
				return err
			})
			if err != nil {
				return err
			}
			r.Cursor, r.Attempts, r.nextAt, r.LastStatus = e.ID, 0, time.Time{}, status
			return nil
		case derr == nil && status == http.StatusGone:
			return m.disable(ctx, r, "gone (410)", status, "the receiver answered 410 Gone")
		}
		msg := fmt.Sprintf("HTTP %d", status)
		if derr != nil {
			msg = derr.Error()
		}
		r.Attempts++
		if r.Attempts > len(m.cfg.Schedule) {
			return m.disable(ctx, r, "failing", status, msg)
		}
		r.nextAt = now.Add(m.cfg.Jitter(m.cfg.Schedule[r.Attempts-1]))
		err = m.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE webhooks SET attempts = $2, next_attempt_at = $3, last_status = $4, last_error = $5 WHERE id = $1`,
				r.ID, r.Attempts, r.nextAt.UnixNano(), status, msg)
			return err
		})
		if err != nil {
			return err
		}
		m.log.Info("webhook attempt failed", "webhook", r.ID, "event", e.ID, "attempt", r.Attempts, "status", status, "retry_in", r.nextAt.Sub(now).Round(time.Second))
	}
}

// post sends one signed request and returns the status; the response
// body is read up to maxResponse and ignored.
func (m *Manager) post(ctx context.Context, url, id string, secrets []string, body []byte) (int, error) {
	ts := m.cfg.Now().Unix()
	sig, err := Sign(secrets, id, ts, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "waappliance-webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	hc := m.http
	if req.URL.Scheme == "https" {
		hc = m.ext
	}
	resp, err := hc.c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// disable turns r off for reason, appends a webhook.disabled event in the
// same transaction, audits it, and stops r's goroutine (errStop).
func (m *Manager) disable(ctx context.Context, r *row, reason string, status int, msg string) error {
	now := m.cfg.Now().UTC().UnixNano()
	err := m.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled = 1, disabled_reason = $2, attempts = $3, next_attempt_at = 0, last_status = $4, last_error = $5, updated_at = $6 WHERE id = $1`,
			r.ID, reason, r.Attempts, status, msg, now); err != nil {
			return err
		}
		_, err := m.cfg.Events.AppendTx(ctx, tx, "", events.TypeWebhookDisabled, map[string]any{
			"webhook": r.ID, "peer": r.Peer, "reason": reason, "status": status, "cursor": r.Cursor})
		return err
	})
	if err != nil {
		return err
	}
	m.cfg.Events.Notify()
	m.log.Warn("webhook disabled", "webhook", r.ID, "peer", r.Peer, "reason", reason, "status", status)
	if m.cfg.Audit != nil {
		st := status
		if st == 0 {
			st = http.StatusBadGateway // no answer at all
		}
		if err := m.cfg.Audit.Record(ctx, audit.Entry{At: m.cfg.Now().UTC(), Peer: r.Peer, Method: "DELIVER", Route: "webhook.disabled",
			Target: strconv.FormatInt(r.ID, 10), Status: st}); err != nil {
			m.log.Warn("webhook audit", "webhook", r.ID, "err", err)
		}
	}
	return errStop
}

// TestResult is what POST /v1/webhooks/{id}/test saw.
type TestResult struct {
	ID     string `json:"webhook_id"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Test sends one webhook.test event to id's URL at once, outside the log
// and the cursor (its webhook-id is "test-<n>"), and reports the answer.
func (m *Manager) Test(ctx context.Context, id int64) (TestResult, error) {
	r, err := m.get(ctx, id)
	if err != nil {
		return TestResult{}, err
	}
	now := m.cfg.Now().UTC()
	wid := fmt.Sprintf("test-%d-%d", id, now.UnixNano())
	data, _ := json.Marshal(map[string]any{"webhook": id})
	body, _ := json.Marshal(map[string]any{"id": 0, "at": now, "session": "", "type": "webhook.test", "data": json.RawMessage(data)})
	secrets := []string{r.secret}
	if r.oldSecret != "" && now.Before(r.oldUntil) {
		secrets = append(secrets, r.oldSecret)
	}
	status, derr := m.post(ctx, r.URL, wid, secrets, body)
	res := TestResult{ID: wid, Status: status}
	if derr != nil {
		res.Error = derr.Error()
	}
	return res, nil
}
