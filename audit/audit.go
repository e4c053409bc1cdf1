// Package audit records every mutating API request durably: when, which
// peer, what route and target, and the resulting status.
package audit

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"waappliance/store"
)

// Entry is one recorded request.
type Entry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Peer      string    `json:"peer"`
	Method    string    `json:"method"`
	Route     string    `json:"route"`
	Target    string    `json:"target"`
	Status    int       `json:"status"`
	RequestID string    `json:"request_id"`
}

// Log is the audit log in the appliance database.
type Log struct{ db *store.DB }

// New returns the audit log stored in db.
func New(db *store.DB) *Log { return &Log{db: db} }

// Record appends e (its ID is assigned) and returns once it is committed.
// Concurrent records share a commit with each other and with the other
// durable writes of the moment (store.DB.Batch).
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	err := l.db.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit(at, peer, method, route, target, status, request_id) VALUES (?,?,?,?,?,?,?)`,
			e.At.UnixNano(), e.Peer, e.Method, e.Route, e.Target, e.Status, e.RequestID)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit.Record: %w", err)
	}
	return nil
}

// MaxLimit caps List's limit.
const MaxLimit = 1000

// List returns up to limit entries with id > after, oldest first, optionally
// only those of peer. limit <= 0 means 100.
func (l *Log) List(ctx context.Context, peer string, after int64, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxLimit)
	q := `SELECT id, at, peer, method, route, target, status, request_id FROM audit WHERE id > ?`
	args := []any{after}
	if peer != "" {
		q += ` AND peer = ?`
		args = append(args, peer)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit.List: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Peer, &e.Method, &e.Route, &e.Target, &e.Status, &e.RequestID); err != nil {
			return nil, fmt.Errorf("audit.List: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
