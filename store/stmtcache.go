package store

import (
	"context"
	"database/sql/driver"
	"strings"
)

// maxCachedStmts bounds the prepared statements a SQLite connection keeps.
// The appliance and whatsmeow run a few dozen distinct statements.
const maxCachedStmts = 64

// A SQLite connection keeps its statements prepared, by text: modernc
// prepares (parses and plans) every statement database/sql hands it and
// finalizes it after one use, and in a 1,000-send burst that parsing was a
// quarter of serve's CPU. modernc's own Exec and Query are exactly prepare,
// run, close; this keeps the prepared statement instead of closing it, and
// runs it again for the same text (SQLite re-prepares a statement by itself
// when the schema changes). A statement that fails is dropped, not kept.
// Scripts of several statements (";") are not kept: modernc prepares those
// again on every run anyway.
type cachedStmt struct {
	st   innerStmt
	busy bool // its rows are open
}

// cached returns the kept statement for query, preparing it on first use;
// nil when query is not kept or the statement is in use (rows still open on
// this connection), and the caller takes modernc's one-shot path.
func (c *gatedConn) cached(ctx context.Context, query string) *cachedStmt {
	if strings.Contains(query, ";") {
		return nil
	}
	if cs, ok := c.stmts[query]; ok {
		if cs.busy {
			return nil
		}
		return cs
	}
	st, err := c.inner().PrepareContext(ctx, query)
	if err != nil {
		return nil // the one-shot path reports the error
	}
	if c.stmts == nil {
		c.stmts = make(map[string]*cachedStmt)
	}
	if len(c.stmts) >= maxCachedStmts {
		for q, old := range c.stmts {
			if !old.busy {
				old.st.Close()
				delete(c.stmts, q)
				break
			}
		}
	}
	cs := &cachedStmt{st: st.(innerStmt)}
	c.stmts[query] = cs
	return cs
}

// drop closes and forgets the kept statement for query.
func (c *gatedConn) drop(query string, cs *cachedStmt) {
	if c.stmts[query] == cs {
		delete(c.stmts, query)
	}
	cs.st.Close()
}

// closeStmts closes every kept statement (before the connection closes).
func (c *gatedConn) closeStmts() {
	for q, cs := range c.stmts {
		cs.st.Close()
		delete(c.stmts, q)
	}
}

func (c *gatedConn) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs := c.cached(ctx, query)
	if cs == nil {
		return c.inner().ExecContext(ctx, query, args)
	}
	res, err := cs.st.ExecContext(ctx, args)
	if err != nil {
		c.drop(query, cs)
	}
	return res, err
}

func (c *gatedConn) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs := c.cached(ctx, query)
	if cs == nil {
		return c.inner().QueryContext(ctx, query, args)
	}
	rows, err := cs.st.QueryContext(ctx, args)
	if err != nil {
		c.drop(query, cs)
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, c: c, query: query, cs: cs}, nil
}

// cachedRows frees its statement for the next run when closed (modernc
// resets a kept statement then, instead of finalizing it).
type cachedRows struct {
	driver.Rows
	c     *gatedConn
	query string
	cs    *cachedStmt
	done  bool
}

func (r *cachedRows) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	err := r.Rows.Close()
	r.cs.busy = false
	if err != nil {
		r.c.drop(r.query, r.cs)
	}
	return err
}
