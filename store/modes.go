package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrLooseModes is returned by CheckPrivate when group or others may read
// or change the state (a copied backup, a restored SD card): it holds the
// server's private key, every peer's preshared key and the WhatsApp
// sessions' keys.
var ErrLooseModes = errors.New("state is readable or writable by group or others")

// LoosePath is a state path whose mode has group or world bits.
type LoosePath struct {
	Path string
	Mode fs.FileMode
	Dir  bool
}

// LooseModes lists the state dir (when not private to its owner) and every
// regular file in it (the database, its -wal and -shm, the lock) whose mode
// has a group or world bit. It is the one check behind doctor's findings and
// serve's refusal.
func LooseModes(dir string) ([]LoosePath, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("store: state dir: %w", err)
	}
	var out []LoosePath
	if st.Mode().Perm()&0o077 != 0 {
		out = append(out, LoosePath{Path: dir, Mode: st.Mode().Perm(), Dir: true})
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: state dir: %w", err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o077 != 0 {
			out = append(out, LoosePath{Path: filepath.Join(dir, e.Name()), Mode: info.Mode().Perm()})
		}
	}
	return out, nil
}

// ChmodFix is the command that makes loose private again: chmod 700 for
// the directory, chmod 600 for files.
func ChmodFix(loose []LoosePath) string {
	var dirs, files []string
	for _, l := range loose {
		if l.Dir {
			dirs = append(dirs, l.Path)
		} else {
			files = append(files, l.Path)
		}
	}
	var cmds []string
	if len(dirs) > 0 {
		cmds = append(cmds, "chmod 700 "+strings.Join(dirs, " "))
	}
	if len(files) > 0 {
		cmds = append(cmds, "chmod 600 "+strings.Join(files, " "))
	}
	return strings.Join(cmds, " && ")
}

// CheckPrivate refuses (ErrLooseModes, with the chmod to run) a state dir
// that LooseModes finds anything in. It changes nothing.
func CheckPrivate(dir string) error {
	loose, err := LooseModes(dir)
	if err != nil || len(loose) == 0 {
		return err
	}
	var what []string
	for _, l := range loose {
		what = append(what, fmt.Sprintf("%s is %04o", l.Path, l.Mode))
	}
	return fmt.Errorf("%w (%s): it holds secret keys; run '%s' and start again", ErrLooseModes, strings.Join(what, ", "), ChmodFix(loose))
}
