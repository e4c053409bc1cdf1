package media

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"waappliance/store"
)

// ImportFiles writes the files in dir of db's ready items (a SQLite
// state's media, whose rows `waappliance migrate` has just copied into the
// PostgreSQL database db) as their media_chunks rows, one transaction per
// item, and returns how many it wrote. Items without a file or with chunks
// already are left alone. The caller removes the files (RemoveFiles) once
// the state uses db. (The other way needs nothing: migrate copies the
// chunks into SQLite's media_chunks, which Open reads when an item has no
// file.)
func ImportFiles(ctx context.Context, db *store.DB, dir string) (int, error) {
	ids, err := store.Strings(ctx, db, `SELECT id FROM media m WHERE state = 'ready' AND NOT EXISTS (SELECT 1 FROM media_chunks c WHERE c.media_id = m.id)`)
	if err != nil {
		return 0, fmt.Errorf("media: import: %w", err)
	}
	n := 0
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, id))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("media: import: %w", err)
		}
		err = db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return writeChunks(ctx, tx, id, f) })
		f.Close()
		if err != nil {
			return n, fmt.Errorf("media: import %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// RemoveFiles removes the item files (not the temporary ones, nor anything
// else) in dir: after ImportFiles, once the state uses PostgreSQL.
func RemoveFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if validID(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
