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

// TestCrashSafetyMedia kills the appliance with SIGKILL after an image
// was uploaded and delivered but before WhatsApp's ack reached it (wasim
// withholds the ack; the phone sends no receipt), with two texts queued
// behind it. After a restart the image goes again under its id from the
// upload recorded in its row, WhatsApp de-duplicates it, and the contact
// has each message exactly once, in order, the image with its bytes.
func TestCrashSafetyMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	ctx := context.Background()
	srv, ctl := startWasim(t)
	port := freeUDPPort(t)
	dir := filepath.Join(t.TempDir(), "state")
	mustCLI(t, dir, "init", "--listen-port", fmt.Sprint(port), "--endpoint", fmt.Sprintf("127.0.0.1:%d", port))
	_, cfg := mustCLI(t, dir, "peer", "add", "boss", "--scopes", "admin", "--rate", "1000", "--burst", "1000", "--send-per-minute", "1000")
	boss := createdFromCLI(t, dir, "boss", cfg)

	// The peer's upload, stored before the appliance runs (the store is
	// the one serve opens in the state directory).
	photo := append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte("a photo of the shop "), 20000)...)
	a, err := appOpen(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := media.New(a.DB(), filepath.Join(dir, app.MediaDir), media.Options{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := ms.Put(ctx, "boss", "image/jpeg", "", int64(len(photo)), bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	p := startProc(t, dir, ctl.String())
	cl := procClient(t, dir, port, boss)
	eventually(t, "the appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	pairSession(t, cl, "shop", "+15550001")
	srv.AddContact(ctx, "15550002", "Ada", 100*time.Millisecond)
	ada, err := srv.Contact("15550002")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	withheld := map[string]bool{}
	srv.OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventAckWithheld {
			mu.Lock()
			withheld[e.MessageID] = true
			mu.Unlock()
		}
	})
	srv.WithholdAcks(true)
	ada.SetReceipts(wasim.ReceiptPolicy{NoDelivered: true, ReadAfter: -1})
	r := do(t, cl, "POST", "/v1/sessions/shop/messages", fmt.Sprintf(`{"to":"+15550002","image":{"media":%q,"caption":"open today"}}`, it.ID))
	var img messageJSON
	if r.Status != 202 || r.JSON(&img) != nil {
		t.Fatalf("send image: %d %s", r.Status, r.Body)
	}
	out := []string{img.ID, send(t, cl, "shop", "+15550002", "after the photo 1").ID, send(t, cl, "shop", "+15550002", "after the photo 2").ID}
	eventually(t, "the image delivered with its ack withheld", func() bool { mu.Lock(); defer mu.Unlock(); return withheld[img.ID] })
	p.kill()
	srv.WithholdAcks(false)
	ada.SetReceipts(wasim.ReceiptPolicy{ReadAfter: 100 * time.Millisecond})

	p2 := startProc(t, dir, ctl.String())
	cl = procClient(t, dir, port, boss)
	eventually(t, "every message sent or later", func() bool {
		for _, id := range out {
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
	got := ada.Inbox()
	if len(got) != len(out) {
		t.Fatalf("the contact has %d messages, want %d", len(got), len(out))
	}
	for i, m := range got {
		if m.ID != out[i] || ada.Deliveries(m.ID) != 1 {
			t.Fatalf("message %d: %s delivered %d times, want %s once, in order", i, m.ID, ada.Deliveries(m.ID), out[i])
		}
	}
	if got[0].Message.GetImageMessage().GetCaption() != "open today" {
		t.Errorf("the image arrived as %v", got[0].Message)
	}
	if b, err := ada.Media(got[0]); err != nil || sha256.Sum256(b) != sha256.Sum256(photo) {
		t.Errorf("the contact's download of the image differs (%v)", err)
	}
	if srv.Resends(img.ID) == 0 {
		t.Fatal("the image was not sent again after the restart: the lost-ack case was not exercised")
	}
	// The row's recorded upload is the one the contact got: committed
	// before the first send, never replaced by a second upload.
	p2.kill()
	a, err = appOpen(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var content string
	if err := a.DB().QueryRow(`SELECT content FROM outbox WHERE id = $1`, img.ID).Scan(&content); err != nil {
		t.Fatal(err)
	}
	var row struct {
		Media struct {
			Upload struct {
				DirectPath string `json:"direct_path"`
			} `json:"upload"`
		} `json:"media_state"`
	}
	if err := json.Unmarshal([]byte(content), &row); err != nil || row.Media.Upload.DirectPath != got[0].Message.GetImageMessage().GetDirectPath() {
		t.Errorf("the row records upload %q (%v), the contact got %q", row.Media.Upload.DirectPath, err, got[0].Message.GetImageMessage().GetDirectPath())
	}
}
