package media

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"waappliance/store"
)

// Reservation is an inbound item before its download: the session it came
// to, its media type and file name as the sender gave them, the size
// WhatsApp announced, and Source, the downloader's own JSON (direct path,
// keys, hashes), opaque to the store.
type Reservation struct {
	Session, Type, Filename string
	Size                    int64
	Source                  []byte
}

// Pending is an item waiting for its download, with the downloader's
// Source and how often it was taken up (Attempts, counting this one).
type Pending struct {
	Item
	Source   []byte
	Attempts int
}

// ReserveTx records an inbound item, pending, in tx (the transaction that
// appends its message.received event), and returns it; the download comes
// later (Pending, then Complete or Fail). The type is normalized (an
// unparsable one is application/octet-stream) and the file name, which any
// sender chose, made safe to show (control characters and path
// separators replaced).
func (s *Store) ReserveTx(ctx context.Context, tx *sql.Tx, r Reservation) (Item, error) {
	t := Normalize(r.Type)
	if t == "" {
		t = "application/octet-stream"
	}
	now := s.now()
	it := Item{ID: newID(), Size: max(r.Size, 0), Type: t, Filename: cleanFilename(r.Filename), State: StatePending,
		Session: r.Session, CreatedAt: time.Unix(0, now.UnixNano())}
	_, err := tx.ExecContext(ctx, `INSERT INTO media (id, size, type, filename, state, session, source, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, it.ID, it.Size, it.Type, it.Filename, StatePending, it.Session, nullBytes(r.Source), now.UnixNano())
	if err != nil {
		return Item{}, fmt.Errorf("media: reserve: %w", err)
	}
	return it, nil
}

// Pending returns up to limit pending items of session, oldest first, and
// counts this as an attempt of each (Attempts includes it): call it when
// taking items up for download, so that a download that crashes the
// process still counts.
func (s *Store) Pending(ctx context.Context, session string, limit int) ([]Pending, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []Pending
	err := s.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT `+itemColumns+`, source, attempts FROM media
			WHERE session = $1 AND state = 'pending' ORDER BY created_at, id LIMIT $2`, session, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p Pending
			var src []byte
			it, err := scanItem(rows, &src, &p.Attempts)
			if err != nil {
				rows.Close()
				return err
			}
			p.Item, p.Source = it, src
			p.Attempts++
			out = append(out, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE media SET attempts = $2 WHERE id = $1`, p.ID, p.Attempts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("media: pending: %w", err)
	}
	return out, nil
}

// SetSource replaces the downloader's Source of a pending item (after a
// media retry: a new direct path) and starts its attempts anew.
func (s *Store) SetSource(ctx context.Context, id string, src []byte) error {
	if !validID(id) {
		return ErrNotFound
	}
	res, err := s.db.ExecContext(ctx, `UPDATE media SET source = $2, attempts = 0, updated_at = $3 WHERE id = $1 AND state = 'pending'`,
		id, nullBytes(src), s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("media: set source: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no pending item %s", ErrNotFound, id)
	}
	return nil
}

// Complete stores f (the downloaded plain bytes of the pending item id) as
// the item's bytes and marks it ready, in one write transaction with
// also(ctx, tx, it) (the media.ready event; nil: nothing), which rolls it
// all back if it fails; it is the item as it becomes ready, with what the
// store learned of the bytes (size, SHA-256, width, height, seconds). f is closed and removed in any case. Its size and
// SHA-256 are the bytes'. Making room evicts as Put does; ErrQuota when it
// cannot (the caller then Fails the item). An item that is already ready
// is returned as it is (also is not called); a failed one is ErrFailed.
func (s *Store) Complete(ctx context.Context, id string, f *os.File, also func(context.Context, *sql.Tx, Item) error) (Item, error) {
	defer removeTemp(f)
	it, err := s.Get(ctx, id)
	if err != nil {
		return Item{}, err
	}
	switch it.State {
	case StateReady:
		return it, nil
	case StateFailed:
		return it, fmt.Errorf("%w: %s", ErrFailed, it.Error)
	}
	sum, size, err := hashFile(f)
	if err != nil {
		return Item{}, fmt.Errorf("media: complete %s: %w", id, err)
	}
	it.SHA256, it.Size, it.State = sum, size, StateReady
	inspect(f, &it)
	if s.db.Dialect == store.Postgres {
		err = s.keepChunks(ctx, &it, f, func(context.Context, *sql.Tx) error { return nil }, StatePending, also)
	} else {
		err = s.keepFile(ctx, &it, f, func(ctx context.Context, tx *sql.Tx) error {
			return readyTx(ctx, tx, &it, StatePending, s.now(), also)
		})
	}
	if err != nil {
		return Item{}, err
	}
	return it, nil
}

// MaxError is the longest failure reason kept, in bytes.
const MaxError = 500

// Fail marks the pending item id failed with reason (cut to MaxError, control
// characters dropped), in one write transaction with also(ctx, tx) (the
// media.failed event; nil: nothing). ErrNotFound when no such item is
// pending.
func (s *Store) Fail(ctx context.Context, id, reason string, also func(context.Context, *sql.Tx) error) error {
	if !validID(id) {
		return ErrNotFound
	}
	reason = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(reason, "?"))
	if len(reason) > MaxError {
		reason = strings.ToValidUTF8(reason[:MaxError], "")
	}
	err := s.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE media SET state = 'failed', error = $2, source = NULL, updated_at = $3 WHERE id = $1 AND state = 'pending'`,
			id, reason, s.now().UnixNano())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no pending item %s", ErrNotFound, id)
		}
		if also != nil {
			return also(ctx, tx)
		}
		return nil
	})
	return wrapDB(err)
}

// Prune removes the items created before before (the event retention's
// cutoff), ready or failed, but never a pending one nor one a queued
// message references, and returns how many it removed.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	var ids []string
	err := s.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		ids, err = store.Strings(ctx, tx, `SELECT id FROM media m WHERE created_at < $1 AND state IN ('ready', 'failed') AND `+notQueued, before.UnixNano())
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE id = $1`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("media: prune: %w", err)
	}
	s.removeFiles(ids)
	return len(ids), nil
}
