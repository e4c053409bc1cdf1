package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"waappliance/media"
	"waappliance/store"
)

// MigrateReport says what Migrate moved.
type MigrateReport struct {
	From, To store.Link
	store.CopyReport
	Elapsed time.Duration
	// Aside is where the old SQLite file was moved ("" when the source
	// was PostgreSQL, whose database is left as it was).
	Aside string
	// MediaFiles is how many media files became chunk rows (SQLite to
	// PostgreSQL); they are removed from the state dir after the switch.
	MediaFiles int
}

// Migrate moves the state in dir, which nothing serves (the caller holds
// its lock), into the empty database to names ("" URL: a new SQLite file
// in dir), and then makes to the state's database. The target's schema is
// made first by the migrations and whatsmeow's own upgrade, so the column
// types are its engine's; then store.Copy copies every table in one
// transaction and checks the counts. Until the switch, the last step, the
// state uses its old database, which is never written: any failure, or an
// interruption, leaves the state as it was (and a PostgreSQL target as
// empty as it was).
func Migrate(ctx context.Context, dir string, to store.Link) (MigrateReport, error) {
	start := time.Now()
	from, err := store.ReadLink(dir)
	if err != nil {
		return MigrateReport{}, err
	}
	rep := MigrateReport{From: from, To: to}
	if from.Same(to) {
		return rep, fmt.Errorf("the state in %s already keeps its database in %s", dir, from)
	}
	src, err := openStateDB(ctx, dir, DatabaseChoice{}, nil)
	if err != nil {
		return rep, err
	}
	defer src.Close()
	if err := upgradeWhatsmeow(ctx, src); err != nil {
		return rep, err
	}
	dst, cleanup, err := prepareTarget(ctx, dir, to)
	if err != nil {
		return rep, err
	}
	done := false
	defer func() {
		if !done {
			cleanup()
		}
	}()
	if rep.CopyReport, err = store.Copy(ctx, dst, src); err != nil {
		return rep, err
	}
	if from.URL == "" && to.URL != "" { // SQLite's media files become chunk rows (app/media.go)
		if rep.MediaFiles, err = media.ImportFiles(ctx, dst, filepath.Join(dir, MediaDir)); err != nil {
			return rep, err
		}
	}
	if to.URL == "" {
		if err := dst.Close(); err != nil {
			return rep, err
		}
		if err := os.Rename(dst.Path, filepath.Join(dir, store.FileName)); err != nil {
			return rep, fmt.Errorf("put the new SQLite file in place: %w", err)
		}
	}
	src.Close() // SQLite checkpoints its WAL into the file on the last close
	// The switch: from here on the state is in the target.
	if err := store.WriteLink(dir, to); err != nil {
		if to.URL == "" {
			os.Remove(filepath.Join(dir, store.FileName))
		}
		return rep, err
	}
	done = true
	dst.Close()
	if rep.MediaFiles > 0 {
		if err := media.RemoveFiles(filepath.Join(dir, MediaDir)); err != nil {
			return rep, fmt.Errorf("the state now uses %s, but removing its old media files failed: %w", to, err)
		}
	}
	if from.URL == "" {
		rep.Aside = filepath.Join(dir, store.FileName+".before-migrate-"+time.Now().UTC().Format("20060102T150405Z"))
		for _, sfx := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(filepath.Join(dir, store.FileName)+sfx, rep.Aside+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
				return rep, fmt.Errorf("the state now uses %s, but moving the old SQLite file aside failed: %w", to, err)
			}
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// upgradeWhatsmeow brings whatsmeow's tables in db to this binary's
// version (serve does the same at its start).
func upgradeWhatsmeow(ctx context.Context, db *store.DB) error {
	if err := sqlstore.NewWithDB(db.DB, string(db.Dialect), waLog.Noop).Upgrade(ctx); err != nil {
		return fmt.Errorf("whatsmeow tables: %w", err)
	}
	return nil
}

// prepareTarget opens the target of a migration, refuses one that is not
// empty, and makes the schema in it. cleanup undoes what it made.
func prepareTarget(ctx context.Context, dir string, to store.Link) (db *store.DB, cleanup func(), err error) {
	if to.URL == "" {
		path := filepath.Join(dir, store.FileName)
		if _, err := os.Stat(path); err == nil {
			return nil, nil, fmt.Errorf("%s exists already; move it aside first (migrate makes a new SQLite file)", path)
		}
		tmp := path + ".migrating" // a leftover is an interrupted run's
		removeSQLite := func() {
			for _, sfx := range []string{"", "-wal", "-shm"} {
				os.Remove(tmp + sfx)
			}
		}
		removeSQLite()
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, err
		}
		f.Close()
		db, err := store.OpenPath(ctx, tmp)
		if err != nil {
			removeSQLite()
			return nil, nil, err
		}
		cleanup = func() { db.Close(); removeSQLite() }
		if err := upgradeWhatsmeow(ctx, db); err != nil {
			cleanup()
			return nil, nil, err
		}
		return db, cleanup, nil
	}
	db, err = store.OpenDSN(ctx, to.URL, store.Options{Dir: dir, Insecure: to.Insecure, NoMigrate: true})
	if err != nil {
		if errors.Is(err, store.ErrInsecureLink) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("target %s: %w", to, err)
	}
	if err := refuseNonEmpty(ctx, db, to); err != nil {
		db.Close()
		return nil, nil, err
	}
	cleanup = func() {
		// Drop what the schema step made, so the target is as empty as
		// it was (and a second try is not refused).
		if ts, err := db.Tables(context.Background()); err == nil && len(ts) > 0 {
			q := make([]string, len(ts))
			for i, t := range ts {
				q[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
			}
			db.ExecContext(context.Background(), `DROP TABLE IF EXISTS `+strings.Join(q, ", ")+` CASCADE`)
		}
		db.Close()
	}
	if err := db.Migrate(ctx); err != nil {
		cleanup()
		return nil, nil, err
	}
	if err := upgradeWhatsmeow(ctx, db); err != nil {
		cleanup()
		return nil, nil, err
	}
	return db, cleanup, nil
}

// refuseNonEmpty refuses a target that holds any table, naming the ones
// with rows (data) or, when all are empty, the schema.
func refuseNonEmpty(ctx context.Context, db *store.DB, to store.Link) error {
	ts, err := db.Tables(ctx)
	if err != nil {
		return fmt.Errorf("target %s: %w", to, err)
	}
	if len(ts) == 0 {
		return nil
	}
	var full []string
	for _, t := range ts {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM "`+strings.ReplaceAll(t, `"`, `""`)+`"`).Scan(&n); err != nil {
			return fmt.Errorf("target %s: %w", to, err)
		}
		if n > 0 {
			full = append(full, fmt.Sprintf("%s (%d rows)", t, n))
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("the target database %s is not empty: it holds data in %s; migrate copies into an empty database only", to, strings.Join(full, ", "))
	}
	return fmt.Errorf("the target database %s is not empty: it holds a schema (tables %s, no rows); migrate copies into an empty database only (drop them, or name another database)", to, strings.Join(ts, ", "))
}

func (c *cli) migrate(ctx context.Context, args []string) error {
	fs := c.flags("migrate", "--to postgres://…|sqlite", "Move the state to another database, with the appliance stopped: every table (peers, settings, sessions\nwith whatsmeow's device and Signal tables, the outbox with its history and idempotency keys, events with their\nids and the prune mark, audit) is copied in one transaction into an empty database, the row counts are\nverified, and the state is switched to it. --to sqlite goes back into a new SQLite file in the state dir.\nOn any failure the state keeps its database, untouched.")
	state := stateFlag(fs)
	to := fs.String("to", "", "postgres://USER@HOST/DB?sslmode=verify-full&sslrootcert=CA (an empty database), or sqlite")
	insecure := fs.Bool("database-insecure", false, "allow a --to link without verified TLS to a host that is not loopback (stored; warned about at every start)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return usagef("--to is required: a postgres:// URL, or sqlite")
	}
	target := store.Link{URL: *to, Insecure: *insecure}
	if *to == "sqlite" {
		target = store.Link{}
	}
	lock, err := store.LockState(*state, false)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: stop the appliance first (migrate needs the state to itself)", err)
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := store.CheckPrivate(*state); err != nil {
		return err
	}
	from, _ := store.ReadLink(*state)
	rep, err := Migrate(ctx, *state, target)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted; nothing was switched: the state still keeps its database in %s, untouched (%v)", from, err)
		}
		return fmt.Errorf("nothing was switched: the state still keeps its database in %s, untouched: %w", from, err)
	}
	c.migrateSummary(c.stdout, rep)
	return nil
}

func (c *cli) migrateSummary(w io.Writer, rep MigrateReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS")
	for _, t := range rep.Tables {
		fmt.Fprintf(tw, "%s\t%d\n", t.Name, t.Rows)
	}
	tw.Flush()
	fmt.Fprintf(c.stderr, "migrated %d tables, %d rows in %.1fs: the state now keeps its database in %s\n", len(rep.Tables), rep.Rows, rep.Elapsed.Seconds(), rep.To)
	if rep.Aside != "" {
		fmt.Fprintf(c.stderr, "the old SQLite file is at %s (remove it once the appliance runs well; it holds the keys)\n", rep.Aside)
	} else {
		fmt.Fprintf(c.stderr, "the old database %s still holds its copy; drop it once the appliance runs well (it holds the keys)\n", rep.From)
	}
}
