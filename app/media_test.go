package app_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/media"
	"waappliance/peers"
)

// clock is a settable clock for the appliance.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func pngBytes(n int) []byte {
	b := bytes.Repeat([]byte{7}, n)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// TestMediaWired: serve opens the media store in the state dir's media/
// (0700), and the event retention prunes media with the events.
func TestMediaWired(t *testing.T) {
	c := &clock{t: time.Now()}
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), func(o *app.Options) { o.Now = c.now; o.Retention = time.Hour })
	st := ta.Media()
	if st == nil {
		t.Fatal("no media store after Start")
	}
	dir := filepath.Join(ta.dir, app.MediaDir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("media dir: %v %v", fi, err)
	}
	ctx := context.Background()
	it, err := st.Put(ctx, "alice", "image/png", "", 100, bytes.NewReader(pngBytes(100)))
	if err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	if _, err := ta.Events().Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, it.ID); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("media outlived the event retention: %v", err)
	}
}
