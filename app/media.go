package app

import (
	"context"
	"path/filepath"
	"time"

	"waappliance/media"
)

// MediaDir is the media store's directory inside the state directory (its
// files on SQLite, temporary files on either engine).
const MediaDir = "media"

// DefaultMediaMaxBytes is serve's --media-max-bytes: 1 GiB, a share of a
// Raspberry Pi's SD card that leaves room for the database and the OS.
const DefaultMediaMaxBytes = media.DefaultMaxBytes

// openMedia opens the media store (Start). Its items age out with the
// event retention: the event log's pruner prunes them with the same
// cutoff.
func (a *Appliance) openMedia() (unprune func(), err error) {
	st, err := media.New(a.db, filepath.Join(a.opts.StateDir, MediaDir), media.Options{MaxBytes: a.opts.MediaMaxBytes, Now: a.opts.Now})
	if err != nil {
		return nil, err
	}
	a.media = st
	return a.events.OnPrune(func(ctx context.Context, cutoff time.Time) (int64, error) {
		n, err := st.Prune(ctx, cutoff)
		return int64(n), err
	}), nil
}

// Media is the media store, nil before Start.
func (a *Appliance) Media() *media.Store {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.media
}
