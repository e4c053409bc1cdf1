package whatsapp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
	"waappliance/internal/wasim"
	"waappliance/media"
	"waappliance/whatsapp"
)

// mediaOf waits for the message.received of id and returns its media id.
func mediaOf(t *testing.T, ev *events.Log, id string) string {
	t.Helper()
	var mid string
	waitFor(t, "message.received of "+id, 15*time.Second, func() bool {
		es, _ := ev.List(context.Background(), events.Filter{Limit: events.MaxLimit})
		for _, e := range es {
			var in whatsapp.InboundMessage
			if e.Type == events.TypeMessageReceived && json.Unmarshal(e.Data, &in) == nil && in.ID == id && in.Media != nil {
				mid = in.Media.ID
				return true
			}
		}
		return false
	})
	return mid
}

// TestMediaDownloadResumesAfterRestart: a download that misses its
// deadline is retried, not given up, and the item stays pending across a
// restart; the next engine takes it up when the session connects and
// completes it with media.ready (bytes equal). A pending item of a session
// that is deleted fails.
func TestMediaDownloadResumesAfterRestart(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		timeout, attempts, rate := whatsapp.DownloadTimeout, whatsapp.DownloadAttempts, whatsapp.DownloadMinRate
		t.Cleanup(func() {
			whatsapp.DownloadTimeout, whatsapp.DownloadAttempts, whatsapp.DownloadMinRate = timeout, attempts, rate
		})
		// Every download misses its deadline.
		whatsapp.DownloadTimeout, whatsapp.DownloadAttempts, whatsapp.DownloadMinRate = time.Nanosecond, 1000, 1<<62

		k, ms := newMediaRig(t, dsn)
		account := types.NewJID("15550001", types.DefaultUserServer)
		data := blob(t, "image/jpeg", 60<<10)
		acked := make(chan string, 10)
		k.srv.OnEvent(func(e wasim.Event) {
			if e.Kind == wasim.EventClientReceipt || e.Kind == wasim.EventClientAck && e.Class == "message" {
				select {
				case acked <- e.MessageID:
				default: // never block the simulator
				}
			}
		})
		id, err := k.ct.SendMedia(ctx, account, wasim.Media{Kind: wasim.KindImage, Data: data, Mimetype: "image/jpeg", Caption: "later"})
		if err != nil {
			t.Fatal(err)
		}
		mid := mediaOf(t, k.ev, id)
		// The message is acked although its media is not downloaded.
		for got := ""; got != id; {
			select {
			case got = <-acked:
			case <-time.After(15 * time.Second):
				t.Fatal("the media message was not acked while its download failed")
			}
		}
		time.Sleep(200 * time.Millisecond) // a few attempts miss their deadline
		if it, err := ms.Get(ctx, mid); err != nil || it.State != media.StatePending {
			t.Fatalf("item %+v, %v; want pending while downloads time out", it, err)
		}
		k.e.Close()
		whatsapp.DownloadTimeout = timeout // no goroutine of the closed engine reads it

		e2 := k.engineWith(t, func(c *whatsapp.Config) { c.Media = ms })
		if err := e2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "media.ready after the restart", 30*time.Second, func() bool {
			_, ok, _ := k.ev.ByKey(ctx, "shop", events.TypeMediaReady, mid)
			return ok
		})
		_, rc, err := ms.Open(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("downloaded %d bytes, not the %d sent", len(got), len(data))
		}

		// Deleted with a pending item: the item fails.
		e2.Close()
		whatsapp.DownloadTimeout = time.Nanosecond
		e3 := k.engineWith(t, func(c *whatsapp.Config) { c.Media = ms })
		if err := e3.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "reconnected", 15*time.Second, func() bool { return state(e3, "shop") == whatsapp.StateConnected })
		id2, err := k.ct.SendMedia(ctx, account, wasim.Media{Kind: wasim.KindDocument, Data: blob(t, "application/pdf", 4000), Mimetype: "application/pdf", Filename: "a.pdf"})
		if err != nil {
			t.Fatal(err)
		}
		mid2 := mediaOf(t, k.ev, id2)
		if err := e3.Delete(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		e3.Close()
		whatsapp.DownloadTimeout = timeout
		if it, err := ms.Get(ctx, mid2); err != nil || it.State != media.StateFailed || it.Error != "session deleted" {
			t.Fatalf("the deleted session's item: %+v, %v", it, err)
		}
	})
}

// TestMediaReadyTellsWhatTheStoreLearned: the media.ready of a received
// photo carries the size, SHA-256, type and the dimensions the store read
// from its bytes (not only what the sender declared).
func TestMediaReadyTellsWhatTheStoreLearned(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		k, ms := newMediaRig(t, dsn)
		img := image.NewRGBA(image.Rect(0, 0, 30, 20))
		for i := range img.Pix {
			img.Pix[i] = byte(i)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		id, err := k.ct.SendMedia(ctx, types.NewJID("15550001", types.DefaultUserServer), wasim.Media{Kind: wasim.KindImage, Data: data, Mimetype: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		mid := mediaOf(t, k.ev, id)
		var ev events.Event
		waitFor(t, "media.ready", 15*time.Second, func() bool {
			var ok bool
			ev, ok, _ = k.ev.ByKey(ctx, "shop", events.TypeMediaReady, mid)
			return ok
		})
		var got whatsapp.MediaEvent
		if err := json.Unmarshal(ev.Data, &got); err != nil {
			t.Fatal(err)
		}
		it, err := ms.Get(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got.ID != mid || got.Kind != media.KindImage || got.Message.ID != id || got.Type != "image/png" || got.Size != int64(len(data)) ||
			got.SHA256 != hex.EncodeToString(sum[:]) || got.Width != 30 || got.Height != 20 || got.Seconds != 0 {
			t.Fatalf("media.ready %s, want the item's %+v", ev.Data, it)
		}
		if got.Width != it.Width || got.Height != it.Height || got.SHA256 != it.SHA256 {
			t.Fatalf("media.ready %s differs from the item %+v", ev.Data, it)
		}
	})
}

// TestDownloadsHeldBounded: a flood of media messages does not pile up in
// the downloader's memory: past DownloadsHeld items, the rest stay pending
// in the store, and every one is still downloaded once the queue drains.
func TestDownloadsHeldBounded(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		held, per, timeout, attempts, rate := whatsapp.DownloadsHeld, whatsapp.DownloadsPerSession, whatsapp.DownloadTimeout, whatsapp.DownloadAttempts, whatsapp.DownloadMinRate
		t.Cleanup(func() {
			whatsapp.DownloadsHeld, whatsapp.DownloadsPerSession = held, per
			whatsapp.DownloadTimeout, whatsapp.DownloadAttempts, whatsapp.DownloadMinRate = timeout, attempts, rate
		})
		whatsapp.DownloadsHeld, whatsapp.DownloadsPerSession = 2, 1
		// Every download misses its deadline until the flood is in.
		whatsapp.DownloadTimeout, whatsapp.DownloadAttempts, whatsapp.DownloadMinRate = time.Nanosecond, 1000, 1<<62

		k, ms := newMediaRig(t, dsn)
		account := types.NewJID("15550001", types.DefaultUserServer)
		var mids []string
		for i := range 5 {
			id, err := k.ct.SendMedia(ctx, account, wasim.Media{Kind: wasim.KindImage, Data: blob(t, "image/jpeg", 2000+i), Mimetype: "image/jpeg"})
			if err != nil {
				t.Fatal(err)
			}
			mids = append(mids, mediaOf(t, k.ev, id))
		}
		if n := whatsapp.HeldDownloads(k.e, "shop"); n > 2 {
			t.Fatalf("the downloader holds %d items, over its bound of 2", n)
		}
		whatsapp.DownloadTimeout = timeout
		for _, mid := range mids {
			waitFor(t, "media.ready of "+mid, 60*time.Second, func() bool {
				it, err := ms.Get(ctx, mid)
				return err == nil && it.State == media.StateReady
			})
		}
	})
}
