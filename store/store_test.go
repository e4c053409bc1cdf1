package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestOpenExistingChangesNoModes: commands that open existing state (every
// one but init and up) check for the database first and never chmod, so a
// typo such as --state / cannot change a system directory.
func TestOpenExistingChangesNoModes(t *testing.T) {
	ctx := context.Background()
	for _, withFile := range []bool{false, true} {
		dir := t.TempDir()
		if withFile {
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
		}
		os.Chmod(dir, 0o755)
		if _, err := Open(ctx, dir, false); !errors.Is(err, ErrNotInitialized) {
			t.Fatalf("open of a directory without a database: %v", err)
		}
		if m := mode(t, dir); m != 0o755 {
			t.Fatalf("mode changed to %v", m)
		}
	}
	// An initialized state opened for use keeps whatever mode it has; the
	// doctor reports a loose one.
	dir := filepath.Join(t.TempDir(), "s")
	db, err := Open(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Chmod(dir, 0o750)
	db, err = Open(ctx, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if m := mode(t, dir); m != 0o750 {
		t.Fatalf("open of an existing state changed its mode to %v", m)
	}
}

func TestCreateRefusesForeignDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.Chmod(dir, 0o755)
	if _, err := Open(ctx, dir, true); !errors.Is(err, ErrForeignDir) {
		t.Fatalf("create in a foreign directory: %v", err)
	}
	if m := mode(t, dir); m != 0o755 {
		t.Fatalf("mode changed to %v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
		t.Fatal("a database was created in a foreign directory")
	}
	// An empty directory, or one holding our database, is ours: tightened.
	empty := t.TempDir()
	os.Chmod(empty, 0o755)
	db, err := Open(ctx, empty, true)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Chmod(empty, 0o755)
	if db, err = Open(ctx, empty, true); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if m := mode(t, empty); m != 0o700 {
		t.Fatalf("state dir mode %v, want 0700", m)
	}
	if m := mode(t, filepath.Join(empty, FileName)); m != 0o600 {
		t.Fatalf("database mode %v, want 0600", m)
	}
}

// TestSynchronousFull: a commit must survive a power failure ("commit, then
// acknowledge"); WAL with synchronous NORMAL may lose the last commits.
func TestSynchronousFull(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var journal string
	var sync int
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&journal); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if journal != "wal" || sync != 2 {
		t.Fatalf("journal_mode=%s synchronous=%d, want wal and 2 (FULL)", journal, sync)
	}
}
