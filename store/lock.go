package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in the state directory that a serving process holds
// an exclusive flock on for its whole life.
const LockFile = "waappliance.lock"

// ErrLocked is returned by Lock when another process serves the state dir.
var ErrLocked = errors.New("another waappliance is serving this state dir")

// DirLock is a held state-dir lock. The kernel releases it when the process
// exits, however it exits (SIGKILL included).
type DirLock struct{ f *os.File }

// Lock takes the exclusive, non-blocking lock of the state dir dir, which
// must exist; it is the first thing a serving command does, before it opens
// the database. A second holder gets ErrLocked at once, naming the pid of
// the first. Commands that only edit the database (peer add, set) do not
// lock: they coordinate with a serving appliance through SQLite.
func Lock(dir string) (*DirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return nil, fmt.Errorf("%w (pid %d, %s); stop it first", ErrLocked, pid, dir)
			}
			return nil, fmt.Errorf("%w (%s); stop it first", ErrLocked, dir)
		}
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	// The pid is informative only: the flock is the lock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock. Safe on nil and to call twice.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}

// LockState checks that dir can be served and takes its Lock, before
// anything in it is written. Without create (serve) dir must hold a
// database. With create (up) a missing dir is made 0700, and a non-empty
// dir without a database is refused with ErrForeignDir, so that no lock
// file is left in somebody else's directory.
func LockState(dir string, create bool) (*DirLock, error) {
	path := filepath.Join(dir, FileName)
	if !create {
		if err := checkState(dir, path); err != nil {
			return nil, err
		}
		return Lock(dir)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create state dir: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: state dir: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("store: state dir: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("store: state dir %s is not a directory", dir)
	}
	if err := refuseForeign(dir, path); err != nil {
		return nil, err
	}
	return Lock(dir)
}

// HasState reports whether dir already holds a state: a database, or a
// DatabaseFile naming one.
func HasState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, FileName))
	return err == nil || linked(dir)
}
