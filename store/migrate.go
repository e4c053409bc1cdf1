package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// A migration is one embedded file, NNNN_name.sql. Its version is recorded
// in schema_migrations when it has been applied, so editing an applied
// file changes nothing for the databases that ran it: a change to the
// schema is a new file.
//
// A file is one SQL text for both engines. A line that only one engine
// must run is marked the way go.mau.fi/util/dbutil (whatsmeow's migrations)
// marks it, and the marker lines themselves are dropped:
//
//	-- only: postgres                      the next line
//	-- only: sqlite for next 3 lines       the next 3 lines
//	-- only: postgres until "end only"     up to the line "-- end only postgres"
//
// with an optional " (lines commented)" suffix: the marked lines start with
// "--", which is removed for the engine they are for. A plain addition
// (ALTER TABLE … ADD COLUMN c INTEGER, CREATE INDEX …) needs no marker.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: bad migration name %q", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s share a version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

var (
	onlyLine = regexp.MustCompile(`^\s*-- only: (postgres|sqlite)(?: for next (\d+) lines| until "(end) only")?(?: \(lines? (commented)\))?`)
	endLine  = regexp.MustCompile(`^\s*-- end only (postgres|sqlite)$`)
)

// filterSQL returns text as dialect d runs it: the lines marked for the
// other engine and every marker line removed (see migration).
func filterSQL(text string, d Dialect) (string, error) {
	lines := strings.Split(text, "\n")
	out := make([]string, 0, len(lines))
	for i := 0; i < len(lines); i++ {
		m := onlyLine.FindStringSubmatch(lines[i])
		if m == nil {
			if endLine.MatchString(lines[i]) {
				return "", fmt.Errorf("line %d: %q without its start", i+1, lines[i])
			}
			out = append(out, lines[i])
			continue
		}
		mine, uncomment := Dialect(m[1]) == d, m[4] != ""
		var body []string
		switch {
		case m[3] != "": // until "-- end only X"
			start := i
			for i++; i < len(lines) && !endLine.MatchString(lines[i]); i++ {
				body = append(body, lines[i])
			}
			if i == len(lines) {
				return "", fmt.Errorf("line %d: no \"-- end only %s\" for it", start+1, m[1])
			}
			if e := endLine.FindStringSubmatch(lines[i]); e[1] != m[1] {
				return "", fmt.Errorf("line %d: %q ends the block of line %d", i+1, lines[i], start+1)
			}
		default:
			n := 1
			if m[2] != "" {
				n, _ = strconv.Atoi(m[2])
			}
			if i+n >= len(lines) {
				return "", fmt.Errorf("line %d: fewer than %d lines follow", i+1, n)
			}
			body = lines[i+1 : i+1+n]
			i += n
		}
		if !mine {
			continue
		}
		for j, l := range body {
			if uncomment {
				if !strings.HasPrefix(l, "--") {
					return "", fmt.Errorf("line %d: not commented, but its marker says it is", i-len(body)+j+1)
				}
				l = l[2:]
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n"), nil
}

// migrationsTable is created before the migrations run; on SQLite its text
// is the one every existing database holds.
var migrationsTable = map[Dialect]string{
	SQLite:   `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
	Postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
}

// migrate applies the migrations not yet recorded, each in its own
// transaction with its record. Two processes migrating at once take turns:
// SQLite's BEGIN IMMEDIATE, PostgreSQL's migration lock.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	inTx := func(fn func(Querier) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if db.Dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
				return err
			}
		}
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	err = inTx(func(q Querier) error {
		_, err := q.ExecContext(ctx, migrationsTable[db.Dialect])
		return err
	})
	if err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	for _, m := range ms {
		text, err := filterSQL(m.sql, db.Dialect)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		err = inTx(func(q Querier) error {
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := q.ExecContext(ctx, text); err != nil {
				return err
			}
			_, err := q.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)`, m.version, m.name, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}
