package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// Settings reads and writes the key-value settings table (the appliance's
// own configuration: its WireGuard identity, the tunnel settings, counters
// such as peers_generation, marks such as events_pruned_through) through
// one Querier: a *DB, or the tx of a WriteTx or Batch so that a setting
// changes atomically with what it describes. It is the one place that
// writes SQL for that table.
type Settings struct{ q Querier }

// SettingsOf returns the settings as q sees them.
func SettingsOf(q Querier) Settings { return Settings{q} }

// Settings returns the settings read and written outside any transaction.
func (db *DB) Settings() Settings { return Settings{db.DB} }

// Get returns key's value, and false when it is unset.
func (s Settings) Get(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: setting %s: %w", key, err)
	}
	return v, true, nil
}

// Set stores value under key, replacing what was there.
func (s Settings) Set(ctx context.Context, key, value string) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES ($1, $2)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("store: set %s: %w", key, err)
	}
	return nil
}

// All returns every setting.
func (s Settings) All(ctx context.Context) (map[string]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return nil, fmt.Errorf("store: settings: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("store: settings: %w", err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: settings: %w", err)
	}
	return m, nil
}

// Add adds delta to the integer under key (an unset key counts as 0) and
// returns the new value; a value that is not an integer is an error. In a
// write transaction it is an atomic counter.
func (s Settings) Add(ctx context.Context, key string, delta int64) (int64, error) {
	var v string
	err := s.q.QueryRowContext(ctx, `INSERT INTO settings(key, value) VALUES ($1, CAST(CAST($2 AS BIGINT) AS TEXT))
		ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + CAST($2 AS BIGINT) AS TEXT)
		WHERE CAST(CAST(settings.value AS BIGINT) AS TEXT) = settings.value
		RETURNING value`, key, delta).Scan(&v)
	// SQLite reads a non-number as 0, so the WHERE skips it (no row);
	// PostgreSQL's cast fails.
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: setting %s is not an integer", key)
	}
	if err != nil {
		return 0, fmt.Errorf("store: add to %s: %w", key, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: setting %s is not an integer: %w", key, err)
	}
	return n, nil
}
