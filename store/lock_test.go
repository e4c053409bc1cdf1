package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if m := mode(t, filepath.Join(dir, LockFile)); m != 0o600 {
		t.Errorf("lock file mode %v", m)
	}
	l.Unlock()
	l.Unlock()
	l2, err := Lock(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

// TestLockStateLeavesForeignDirsAlone: up's lock is taken in a new or empty
// dir (which then still counts as empty) but never in somebody else's, and
// serve's only in an initialized state.
func TestLockStateLeavesForeignDirsAlone(t *testing.T) {
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("x"), 0o644)
	if _, err := LockState(foreign, true); !errors.Is(err, ErrForeignDir) {
		t.Fatalf("foreign dir: %v", err)
	}
	if _, err := LockState(foreign, false); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("serve of a foreign dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, LockFile)); err == nil {
		t.Fatal("lock file left in a foreign dir")
	}
	fresh := filepath.Join(t.TempDir(), "new")
	l, err := LockState(fresh, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	db, err := Open(t.Context(), fresh, true)
	if err != nil {
		t.Fatalf("init after up's lock: %v", err)
	}
	db.Close()
}

// TestLockStateOnLinkedState: a state whose database is elsewhere (a
// DatabaseFile, no SQLite file) is a state, not a foreign dir: up and
// serve lock it, and PrepareState accepts it.
func TestLockStateOnLinkedState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := PrepareState(dir); err != nil {
		t.Fatal(err)
	}
	if err := WriteLink(dir, Link{URL: "postgres://waa@127.0.0.1/waa"}); err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{true, false} {
		l, err := LockState(dir, create)
		if err != nil {
			t.Fatalf("LockState(create=%v) of a linked state: %v", create, err)
		}
		l.Unlock()
	}
	if err := PrepareState(dir); err != nil {
		t.Fatalf("PrepareState of a linked state: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
		t.Error("a SQLite file was made beside the link")
	}
}

func TestLooseModes(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	db := filepath.Join(dir, FileName)
	os.WriteFile(db, nil, 0o600)
	if err := CheckPrivate(dir); err != nil {
		t.Fatalf("private state refused: %v", err)
	}
	os.Chmod(db, 0o604)
	err := CheckPrivate(dir)
	if !errors.Is(err, ErrLooseModes) || !strings.Contains(err.Error(), "chmod 600 "+db) {
		t.Fatalf("world-readable db: %v", err)
	}
	os.Chmod(db, 0o400) // owner-only, just stricter: fine
	if err := CheckPrivate(dir); err != nil {
		t.Fatalf("0400 db refused: %v", err)
	}
}
