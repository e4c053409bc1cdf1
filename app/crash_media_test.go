package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/wasim"
	"waappliance/media"
)

// TestCrashSafetyMedia kills the appliance with SIGKILL at both points
// between an upload and its ack, and checks that the contact gets every
// message exactly once, in order, the images with their bytes, and that
// each image went from the upload recorded in its row (never uploaded
// again after the restart):
//
//   - after the upload was committed, while the send is lost on its way
//     (wasim drops it): the restarted appliance sends it for the first
//     time, from the recorded upload;
//   - after the image was delivered but before WhatsApp's ack reached the
//     appliance (wasim withholds it; the phone sends no receipt), with
//     two texts queued behind it: it goes again under its id and WhatsApp
//     de-duplicates it.
func TestCrashSafetyMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	ctx := context.Background()
	srv, ctl := startWasim(t)
	dir, port, boss := newProcState(t)

	// The peer's uploads, stored before the appliance runs (the store is
	// the one serve opens in the state directory).
	photos := [][]byte{
		append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte("the shop from outside "), 20000)...),
		append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte("the shop from inside "), 20000)...),
	}
	a, err := appOpen(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := media.New(a.DB(), filepath.Join(dir, app.MediaDir), media.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, p := range photos {
		it, err := ms.Put(ctx, "boss", "image/jpeg", "", int64(len(p)), bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it.ID)
	}
	a.Close()

	p, cl, _ := serveShop(t, srv, ctl, dir, port, boss)
	ada, err := srv.Contact("15550002")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[wasim.EventKind]map[string]bool{wasim.EventAckWithheld: {}, wasim.EventSendDropped: {}}
	srv.OnEvent(func(e wasim.Event) {
		mu.Lock()
		defer mu.Unlock()
		if m, ok := seen[e.Kind]; ok {
			m[e.MessageID] = true
		}
	})
	saw := func(k wasim.EventKind, id string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return seen[k][id] }
	}
	sendImage := func(item, caption string) string {
		r := do(t, cl, "POST", "/v1/sessions/shop/messages", fmt.Sprintf(`{"to":"+15550002","image":{"media":%q,"caption":%q}}`, item, caption))
		var m messageJSON
		if r.Status != 202 || r.JSON(&m) != nil {
			t.Fatalf("send image: %d %s", r.Status, r.Body)
		}
		return m.ID
	}
	restart := func() *proc {
		p := startProc(t, dir, ctl.String())
		cl = procClient(t, dir, port, boss)
		return p
	}
	settled := func(ids []string) {
		eventually(t, "every message sent or later", func() bool {
			for _, id := range ids {
				var m messageJSON
				r, err := cl.Do(ctx, "GET", "/v1/sessions/shop/messages/"+id, nil)
				if err != nil || r.Status != 200 || r.JSON(&m) != nil || m.Status == "queued" {
					return false
				}
				if m.Status == "failed" {
					t.Fatalf("message %s failed: %s", id, m.Error)
				}
			}
			return true
		})
	}

	// recorded reads, while the appliance is down, the direct path of the
	// upload row id records.
	recorded := func(id string) string {
		t.Helper()
		a, err := appOpen(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var content string
		if err := a.DB().QueryRow(`SELECT content FROM outbox WHERE id = $1`, id).Scan(&content); err != nil {
			t.Fatal(err)
		}
		var row struct {
			Media struct {
				Upload struct {
					DirectPath string `json:"direct_path"`
				} `json:"upload"`
			} `json:"media_state"`
		}
		if err := json.Unmarshal([]byte(content), &row); err != nil || row.Media.Upload.DirectPath == "" {
			t.Fatalf("row %s records no upload (%v): %s", id, err, content)
		}
		return row.Media.Upload.DirectPath
	}

	// 1: uploaded and committed, the send lost, then the kill.
	srv.DropSends(true)
	lost := sendImage(items[0], "we are open")
	eventually(t, "the first image's send dropped", saw(wasim.EventSendDropped, lost))
	p.kill()
	paths := []string{recorded(lost)}
	srv.DropSends(false)
	p = restart()
	settled([]string{lost})

	// 2: delivered, the ack lost, two texts behind it, then the kill.
	srv.WithholdAcks(true)
	ada.SetReceipts(wasim.ReceiptPolicy{NoDelivered: true, ReadAfter: -1})
	img := sendImage(items[1], "come in")
	out := []string{lost, img, send(t, cl, "shop", "+15550002", "after the photo 1").ID, send(t, cl, "shop", "+15550002", "after the photo 2").ID}
	eventually(t, "the second image delivered with its ack withheld", saw(wasim.EventAckWithheld, img))
	p.kill()
	paths = append(paths, recorded(img))
	srv.WithholdAcks(false)
	ada.SetReceipts(wasim.ReceiptPolicy{ReadAfter: 100 * time.Millisecond})
	p = restart()
	settled(out)

	got := ada.Inbox()
	if len(got) != len(out) {
		t.Fatalf("the contact has %d messages, want %d", len(got), len(out))
	}
	for i, m := range got {
		if m.ID != out[i] || ada.Deliveries(m.ID) != 1 {
			t.Fatalf("message %d: %s delivered %d times, want %s once, in order", i, m.ID, ada.Deliveries(m.ID), out[i])
		}
	}
	for i, caption := range []string{"we are open", "come in"} {
		if c := got[i].Message.GetImageMessage().GetCaption(); c != caption {
			t.Errorf("image %d arrived with caption %q, want %q", i, c, caption)
		}
		if b, err := ada.Media(got[i]); err != nil || sha256.Sum256(b) != sha256.Sum256(photos[i]) {
			t.Errorf("the contact's download of image %d differs (%v)", i, err)
		}
	}
	if srv.Resends(img) == 0 {
		t.Fatal("the second image was not sent again after the restart: the lost-ack case was not exercised")
	}
	// The upload each row recorded before the kill is the one the contact
	// got: committed before the first send, never replaced by a second
	// upload after the restart.
	for i, path := range paths {
		if got := got[i].Message.GetImageMessage().GetDirectPath(); got != path {
			t.Errorf("image %d: the row recorded upload %q before the kill, the contact got %q", i, path, got)
		}
	}
}
