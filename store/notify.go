package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgChannel is the one PostgreSQL channel the appliance LISTENs on; the
// payload names the store channel, so subscribing needs no round trip.
const pgChannel = "waappliance"

// pollEvery is how often SQLite's watcher looks for commits by other
// connections (other processes on the same file).
const pollEvery = 200 * time.Millisecond

// Notify wakes the waiters of channel (Changed, Wait) in every process on
// the database. Call it after the commit that made the change: a waiter
// woken before the commit would read the old state and sleep again.
//
// In this process it wakes exactly channel's waiters at once. PostgreSQL
// carries it to the other processes with NOTIFY. SQLite has no message
// between processes: there each process's watcher polls PRAGMA
// data_version, so any commit by another connection wakes all of its
// waiters within pollEvery, channel or not; a Notify with no commit before
// it reaches only this process.
func (db *DB) Notify(ctx context.Context, channel string) error {
	db.notify.wake(channel)
	if db.Dialect != Postgres {
		return nil
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, pgChannel, channel); err != nil {
		return fmt.Errorf("store: notify %s: %w", channel, err)
	}
	return nil
}

// Changed returns a channel that is closed at the next Notify of channel
// after Changed returned (or by a wake-up that covers every channel: a
// SQLite commit elsewhere, a PostgreSQL reconnect, Close). Take it before
// reading the state it guards, then wait on it: a change between the read
// and the wait is not missed. Spurious wake-ups happen; re-read and take
// a new one.
//
// The first call starts the watcher and returns once it watches
// (PostgreSQL: LISTEN on its own connection), or with ctx's error when the
// database cannot be reached first. After Close it returns ErrClosed.
func (db *DB) Changed(ctx context.Context, channel string) (<-chan struct{}, error) {
	return db.notify.changed(ctx, db, channel)
}

// Wait blocks until the next Notify of channel (or a wake-up that covers
// every channel) after the call, or until ctx ends.
func (db *DB) Wait(ctx context.Context, channel string) error {
	ch, err := db.Changed(ctx, channel)
	if err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notifier holds the waiters of a DB and its one watcher goroutine,
// started by the first Changed and stopped by Close.
type notifier struct {
	pg    *pgx.ConnConfig // PostgreSQL's listener connects with it
	every time.Duration   // SQLite's poll interval; 0 is pollEvery

	mu      sync.Mutex
	waiters map[string]chan struct{}
	started bool
	closed  bool
	ready   chan struct{} // closed once the watcher watches
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when the watcher has returned
}

func (n *notifier) changed(ctx context.Context, db *DB, channel string) (<-chan struct{}, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, fmt.Errorf("store.Changed: %w", ErrClosed)
	}
	if !n.started {
		n.started = true
		n.ready, n.quit, n.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
		if db.Dialect == Postgres {
			go n.listen()
		} else {
			go n.poll(db.DB)
		}
	}
	if n.waiters == nil {
		n.waiters = map[string]chan struct{}{}
	}
	ch, ok := n.waiters[channel]
	if !ok {
		ch = make(chan struct{})
		n.waiters[channel] = ch
	}
	ready, quit := n.ready, n.quit
	n.mu.Unlock()
	select {
	case <-ready:
		return ch, nil
	case <-quit:
		return nil, fmt.Errorf("store.Changed: %w", ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// wake closes channel's waiters' channel.
func (n *notifier) wake(channel string) {
	n.mu.Lock()
	if ch, ok := n.waiters[channel]; ok {
		close(ch)
		delete(n.waiters, channel)
	}
	n.mu.Unlock()
}

// wakeAll wakes every waiter.
func (n *notifier) wakeAll() {
	n.mu.Lock()
	for _, ch := range n.waiters {
		close(ch)
	}
	n.waiters = nil
	n.mu.Unlock()
}

func (n *notifier) markReady() {
	select {
	case <-n.ready:
	default:
		close(n.ready)
	}
}

// stop ends the watcher and wakes every waiter. Safe to call more than
// once.
func (n *notifier) stop() {
	n.mu.Lock()
	first := !n.closed
	n.closed = true
	started := n.started
	n.mu.Unlock()
	if started {
		if first {
			close(n.quit)
		}
		<-n.done
	}
	n.wakeAll()
}

// sleep waits d or until stop; false when stopped.
func (n *notifier) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.quit:
		return false
	}
}

// poll is SQLite's watcher: PRAGMA data_version on a connection of its own
// changes when any other connection commits.
func (n *notifier) poll(db *sql.DB) {
	defer close(n.done)
	every := n.every
	if every == 0 {
		every = pollEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var last int64
	for {
		if conn == nil {
			c, err := db.Conn(ctx)
			if err != nil {
				if !n.sleep(every) {
					return
				}
				continue
			}
			conn = c
			if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&last); err != nil {
				conn.Close()
				conn = nil
				continue
			}
			n.markReady()
		}
		if !n.sleep(every) {
			return
		}
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			conn.Close()
			conn = nil
			n.wakeAll() // what changed meanwhile is unknown
			continue
		}
		if v != last {
			last = v
			n.wakeAll()
		}
	}
}

// listen is PostgreSQL's watcher: LISTEN on a pgx connection of its own,
// reconnecting with a growing pause when it breaks. Each (re)connect wakes
// everyone, since notifications sent meanwhile were lost.
func (n *notifier) listen() {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	pause := 100 * time.Millisecond
	listened := false
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, n.pg.Copy())
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN `+pgChannel); err != nil {
				conn.Close(context.Background())
			}
		}
		if err != nil {
			if !n.sleep(pause) {
				return
			}
			pause = min(2*pause, 10*time.Second)
			continue
		}
		pause = 100 * time.Millisecond
		if listened {
			n.wakeAll()
		}
		listened = true
		n.markReady()
		for {
			m, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			n.wake(m.Payload)
		}
		conn.Close(context.Background())
	}
}
