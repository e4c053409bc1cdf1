package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CopyTable is one table Copy copied.
type CopyTable struct {
	Name string
	Rows int64
}

// CopyReport says what Copy copied.
type CopyReport struct {
	Tables []CopyTable
	Rows   int64
}

// Copy copies every table of src into dst, which must already hold the
// same tables (made by the migrations and whatsmeow's upgrade on dst, so
// that the column types are dst's engine's) and nothing else that matters:
// what the schema put in them (the default settings, schema_migrations,
// whatsmeow_version) is replaced by src's rows. The tables are listed from
// src (every table but SQLite's own) and copied parents first, in the
// order their foreign keys give. It reads src in one read transaction (one
// snapshot) and writes dst in one transaction, which it commits only after
// the row count of every table in dst equals src's and the id sequences
// are set past src's (an id that src once handed out, even one since
// pruned or rolled back, is never handed out again by dst). On any error
// dst's transaction is rolled back, and src is never written.
func Copy(ctx context.Context, dst, src *DB) (CopyReport, error) {
	var rep CopyReport
	err := src.ReadTx(ctx, func(ctx context.Context, stx *sql.Tx) error {
		tables, err := listTables(ctx, stx, src.Dialect)
		if err != nil {
			return fmt.Errorf("store: list source tables: %w", err)
		}
		order, err := fkOrder(ctx, stx, src.Dialect, tables)
		if err != nil {
			return err
		}
		seqs, err := sequences(ctx, stx, src.Dialect)
		if err != nil {
			return fmt.Errorf("store: source sequences: %w", err)
		}
		dtx, err := dst.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer dtx.Rollback()
		have, err := listTables(ctx, dtx, dst.Dialect)
		if err != nil {
			return fmt.Errorf("store: list target tables: %w", err)
		}
		for _, t := range order {
			if !slices.Contains(have, t) {
				return fmt.Errorf("store: the target has no table %s (its schema is not this binary's)", t)
			}
		}
		for i := len(order) - 1; i >= 0; i-- {
			if _, err := dtx.ExecContext(ctx, `DELETE FROM `+quoteIdent(order[i])); err != nil {
				return fmt.Errorf("store: empty target table %s: %w", order[i], err)
			}
		}
		for _, t := range order {
			n, err := copyTable(ctx, dtx, dst.Dialect, stx, src.Dialect, t)
			if err != nil {
				return err
			}
			var want, got int64
			if err := stx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&want); err != nil {
				return fmt.Errorf("store: count source %s: %w", t, err)
			}
			if err := dtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&got); err != nil {
				return fmt.Errorf("store: count target %s: %w", t, err)
			}
			if got != want || n != want {
				return fmt.Errorf("store: %s: the target holds %d rows after copying %d, the source %d", t, got, n, want)
			}
			rep.Tables = append(rep.Tables, CopyTable{t, n})
			rep.Rows += n
		}
		if err := setSequences(ctx, dtx, dst.Dialect, seqs); err != nil {
			return fmt.Errorf("store: set target sequences: %w", err)
		}
		return dtx.Commit()
	})
	if err != nil {
		return CopyReport{}, err
	}
	return rep, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Tables lists the tables of db (not SQLite's own), sorted by name.
func (db *DB) Tables(ctx context.Context) ([]string, error) {
	return listTables(ctx, db.DB, db.Dialect)
}

func listTables(ctx context.Context, q Querier, d Dialect) ([]string, error) {
	query := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`
	if d == Postgres {
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	return Strings(ctx, q, query)
}

// fkOrder sorts tables so that every table comes after the tables its
// foreign keys reference (a reference to itself aside); ties by name.
func fkOrder(ctx context.Context, q Querier, d Dialect, tables []string) ([]string, error) {
	parents := map[string][]string{}
	for _, t := range tables {
		var ps []string
		var err error
		if d == Postgres {
			ps, err = Strings(ctx, q, `SELECT DISTINCT p.relname FROM pg_constraint c
				JOIN pg_class ch ON ch.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid
				JOIN pg_namespace n ON n.oid = ch.relnamespace
				WHERE c.contype = 'f' AND n.nspname = current_schema() AND ch.relname = $1`, t)
		} else {
			ps, err = Strings(ctx, q, `SELECT DISTINCT "table" FROM pragma_foreign_key_list($1)`, t)
		}
		if err != nil {
			return nil, fmt.Errorf("store: foreign keys of %s: %w", t, err)
		}
		parents[t] = slices.DeleteFunc(ps, func(p string) bool { return p == t })
	}
	var order []string
	done := map[string]bool{}
	for len(order) < len(tables) {
		progress := false
		for _, t := range tables {
			if done[t] {
				continue
			}
			ready := true
			for _, p := range parents[t] {
				if !done[p] && slices.Contains(tables, p) {
					ready = false
				}
			}
			if ready {
				done[t] = true
				order = append(order, t)
				progress = true
			}
		}
		if !progress {
			return nil, fmt.Errorf("store: the foreign keys among the tables form a cycle")
		}
	}
	return order, nil
}

// columns returns a table's columns in order, with their declared types
// (lower case).
func columns(ctx context.Context, q Querier, d Dialect, table string) (names, types []string, err error) {
	query := `SELECT name, type FROM pragma_table_info($1) ORDER BY cid`
	if d == Postgres {
		query = `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
	}
	rows, err := q.QueryContext(ctx, query, table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, nil, err
		}
		names, types = append(names, n), append(types, strings.ToLower(t))
	}
	return names, types, rows.Err()
}

// copyTable copies one table's rows, many to an INSERT.
func copyTable(ctx context.Context, dtx *sql.Tx, dd Dialect, stx *sql.Tx, sd Dialect, t string) (int64, error) {
	cols, _, err := columns(ctx, stx, sd, t)
	if err != nil {
		return 0, fmt.Errorf("store: columns of source %s: %w", t, err)
	}
	dcols, dtypes, err := columns(ctx, dtx, dd, t)
	if err != nil {
		return 0, fmt.Errorf("store: columns of target %s: %w", t, err)
	}
	typ := make([]string, len(cols))
	quoted := make([]string, len(cols))
	for i, c := range cols {
		j := slices.Index(dcols, c)
		if j < 0 {
			return 0, fmt.Errorf("store: the target table %s has no column %s", t, c)
		}
		typ[i], quoted[i] = dtypes[j], quoteIdent(c)
	}
	rows, err := stx.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+quoteIdent(t))
	if err != nil {
		return 0, fmt.Errorf("store: read %s: %w", t, err)
	}
	defer rows.Close()
	// SQLite takes up to 32766 parameters to a statement, PostgreSQL 65535.
	per := max(1, min(500, 30000/len(cols)))
	head := `INSERT INTO ` + quoteIdent(t) + ` (` + strings.Join(quoted, ", ") + `) VALUES `
	var args []any
	var n int64
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(head)
		for r := 0; r < len(args)/len(cols); r++ {
			if r > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for c := range cols {
				if c > 0 {
					b.WriteString(", ")
				}
				if dd == SQLite {
					// modernc binds a $N by looking its name up among
					// all of them, quadratic in a statement this long.
					b.WriteByte('?')
				} else {
					b.WriteString("$" + strconv.Itoa(r*len(cols)+c+1))
				}
			}
			b.WriteByte(')')
		}
		if _, err := dtx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("store: write %s: %w", t, err)
		}
		args = args[:0]
		return nil
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("store: read %s: %w", t, err)
		}
		for i, v := range vals {
			cv, err := convert(v, typ[i], dd)
			if err != nil {
				return 0, fmt.Errorf("store: %s.%s: %w", t, cols[i], err)
			}
			args = append(args, cv)
		}
		n++
		if len(args) >= per*len(cols) {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: read %s: %w", t, err)
	}
	return n, flush()
}

// convert makes a value read from one engine fit a column of type typ on
// engine d: SQLite keeps booleans as integers and has no UUID or BYTEA of
// its own; PostgreSQL's driver wants the Go type of the column.
func convert(v any, typ string, d Dialect) (any, error) {
	if v == nil {
		return nil, nil
	}
	if d == SQLite {
		switch x := v.(type) {
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case time.Time:
			return x.UnixNano(), nil
		case [16]byte:
			return fmtUUID(x[:]), nil
		}
		return v, nil
	}
	switch {
	case typ == "boolean":
		switch x := v.(type) {
		case int64:
			return x != 0, nil
		case string:
			return strconv.ParseBool(x)
		}
	case typ == "bytea":
		if s, ok := v.(string); ok {
			return []byte(s), nil
		}
	case typ == "uuid":
		if b, ok := v.([]byte); ok {
			if len(b) == 16 {
				return fmtUUID(b), nil
			}
			return string(b), nil
		}
	case typ == "text" || strings.HasPrefix(typ, "character"):
		switch x := v.(type) {
		case []byte:
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
	case typ == "bigint" || typ == "integer" || typ == "smallint":
		switch x := v.(type) {
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case string:
			return strconv.ParseInt(x, 10, 64)
		case []byte:
			return strconv.ParseInt(string(x), 10, 64)
		case float64:
			if x == float64(int64(x)) {
				return int64(x), nil
			}
		}
	case typ == "double precision" || typ == "real":
		switch x := v.(type) {
		case int64:
			return float64(x), nil
		case string:
			return strconv.ParseFloat(x, 64)
		}
	}
	return v, nil
}

func fmtUUID(b []byte) string {
	const hex = "0123456789abcdef"
	var s strings.Builder
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s.WriteByte('-')
		}
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

// sequences returns, per table with an id sequence (SQLite's
// AUTOINCREMENT, PostgreSQL's identity or serial columns), the last id it
// handed out.
func sequences(ctx context.Context, q Querier, d Dialect) (map[string]int64, error) {
	out := map[string]int64{}
	if d == SQLite {
		var ok int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'`).Scan(&ok); err != nil || ok == 0 {
			return out, err
		}
		rows, err := q.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var seq int64
			if err := rows.Scan(&name, &seq); err != nil {
				return nil, err
			}
			out[name] = seq
		}
		return out, rows.Err()
	}
	cols, err := pgSequenceColumns(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, c := range cols {
		var last sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT pg_sequence_last_value($1::regclass)`, c.seq).Scan(&last); err != nil {
			return nil, err
		}
		out[c.table] = max(out[c.table], last.Int64)
	}
	return out, nil
}

type seqColumn struct{ table, column, seq string }

func pgSequenceColumns(ctx context.Context, q Querier) ([]seqColumn, error) {
	rows, err := q.QueryContext(ctx, `SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name)
		FROM information_schema.columns WHERE table_schema = current_schema()
		AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []seqColumn
	for rows.Next() {
		var c seqColumn
		if err := rows.Scan(&c.table, &c.column, &c.seq); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// setSequences moves dst's id sequences past both the largest id copied and
// the source's last id (seqs).
func setSequences(ctx context.Context, tx *sql.Tx, d Dialect, seqs map[string]int64) error {
	if d == Postgres {
		cols, err := pgSequenceColumns(ctx, tx)
		if err != nil {
			return err
		}
		for _, c := range cols {
			_, err := tx.ExecContext(ctx, `SELECT setval($1::regclass, GREATEST((SELECT COALESCE(MAX(`+quoteIdent(c.column)+`), 0) FROM `+quoteIdent(c.table)+`), $2) + 1, false)`, c.seq, seqs[c.table])
			if err != nil {
				return fmt.Errorf("%s.%s: %w", c.table, c.column, err)
			}
		}
		return nil
	}
	// SQLite moved sqlite_sequence to each AUTOINCREMENT table's largest
	// id as the rows went in; a source's mark may be beyond it.
	auto, err := Strings(ctx, tx, `SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'`)
	if err != nil {
		return err
	}
	for _, t := range auto {
		seq := seqs[t]
		if seq == 0 {
			continue
		}
		res, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, $2) WHERE name = $1`, t, seq)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence(name, seq) VALUES ($1, $2)`, t, seq); err != nil {
				return err
			}
		}
	}
	return nil
}
