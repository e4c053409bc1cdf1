package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"waappliance/internal/wasim"
	"waappliance/media"
	"waappliance/peers"
)

// addPeerWith adds a peer with o through the registry.
func addPeerWith(t *testing.T, ta *testAppliance, o peers.AddOptions) peers.Created {
	t.Helper()
	c, err := ta.Peers().Add(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	return c
}

// storedMedia reads a ready media item's bytes from the appliance's store.
func storedMedia(t *testing.T, ta *testAppliance, id string) []byte {
	t.Helper()
	_, rc, err := ta.Media().Open(context.Background(), id)
	if err != nil {
		t.Fatalf("media %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(t *testing.T, prefix string, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return append([]byte(prefix), b...)
}

// TestReceiveMediaKinds: each media kind a contact sends arrives as a
// message.received of its kind whose media object names a pending item;
// the appliance downloads it after the ack, says media.ready, and the item
// holds the bytes she sent. A message WhatsApp delivers again reserves no
// second item. With her media link expired (wasim's ExpiredMedia), the
// download gets 410, the appliance asks the phone to upload it again, and
// the media arrives all the same.
func TestReceiveMediaKinds(t *testing.T) {
	ta, cl, ada, account := pairedWithContact(t)
	ctx := context.Background()
	cases := []struct {
		m          wasim.Media
		kind, want string // want: the JSON of fields of the media object
	}{
		{wasim.Media{Kind: wasim.KindImage, Data: randomBytes(t, "\xff\xd8\xff\xe0", 20000), Mimetype: "image/jpeg", Caption: "the shop"}, "image", `{"type":"image/jpeg"}`},
		{wasim.Media{Kind: wasim.KindVideo, Data: randomBytes(t, "\x00\x00\x00\x18ftypmp42", 70000), Mimetype: "video/mp4", Caption: "a tour"}, "video", `{"type":"video/mp4"}`},
		{wasim.Media{Kind: wasim.KindAudio, Data: randomBytes(t, "OggS", 5000), Voice: true}, "audio", `{"type":"audio/ogg","voice":true}`},
		{wasim.Media{Kind: wasim.KindDocument, Data: randomBytes(t, "%PDF-1.7\n", 300000), Mimetype: "application/pdf", Filename: "invoice 42.pdf", Caption: "your invoice"}, "document", `{"type":"application/pdf","filename":"invoice 42.pdf"}`},
		{wasim.Media{Kind: wasim.KindSticker, Data: randomBytes(t, "RIFF\x00\x00\x00\x00WEBPVP8 ", 3000), Mimetype: "image/webp"}, "sticker", `{"type":"image/webp"}`},
	}
	outsider := ta.client(t, addPeerWith(t, ta, peers.AddOptions{Name: "desk-reader", Scopes: []peers.Scope{peers.ScopeRead}, Sessions: []string{"desk"}}))
	var mu sync.Mutex
	var expired, reuploaded int
	ta.SandboxServer().OnEvent(func(e wasim.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Kind {
		case wasim.EventMediaExpired:
			expired++
		case wasim.EventMediaReuploaded:
			reuploaded++
		}
	})
	check := func(c struct {
		m          wasim.Media
		kind, want string
	}) string {
		t.Helper()
		id, err := ada.SendMedia(ctx, account, c.m)
		if err != nil {
			t.Fatal(err)
		}
		d := eventAbout(t, cl, "shop", "message.received", id)
		md, _ := d["media"].(map[string]any)
		sum := sha256.Sum256(c.m.Data)
		if d["kind"] != c.kind || d["caption"] != nilIfEmpty(c.m.Caption) || md == nil || md["id"] == nil || md["state"] != "pending" ||
			md["sha256"] != hex.EncodeToString(sum[:]) || md["size"] != float64(len(c.m.Data)) {
			t.Fatalf("%s: %s", c.kind, js(d))
		}
		var want map[string]any
		if err := jsonUnmarshal(c.want, &want); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if md[k] != v {
				t.Errorf("%s: media.%s = %v, want %v (%s)", c.kind, k, md[k], v, js(md))
			}
		}
		mid := md["id"].(string)
		ready := eventAbout(t, cl, "shop", "media.ready", mid)
		msg, _ := ready["message"].(map[string]any)
		if ready["kind"] != c.kind || ready["sha256"] != md["sha256"] || msg["id"] != id || msg["from"] != ada.JID().String() {
			t.Errorf("%s: media.ready %s", c.kind, js(ready))
		}
		if got := storedMedia(t, ta, mid); !bytes.Equal(got, c.m.Data) {
			t.Errorf("%s: the stored media has %d bytes, not the %d she sent", c.kind, len(got), len(c.m.Data))
		}
		r := do(t, cl, "GET", "/v1/media/"+mid, nil)
		if r.Status != 200 || !bytes.Equal(r.Body, c.m.Data) || r.Header.Get("Content-Type") != want["type"] {
			t.Errorf("%s: GET /v1/media/%s: %d %s, %d bytes", c.kind, mid, r.Status, r.Header.Get("Content-Type"), len(r.Body))
		}
		if c.m.Filename != "" && !strings.Contains(r.Header.Get("Content-Disposition"), "invoice 42.pdf") {
			t.Errorf("%s: Content-Disposition %q", c.kind, r.Header.Get("Content-Disposition"))
		}
		// A peer whose allow-list does not hold the session: no such media.
		wantError(t, do(t, outsider, "GET", "/v1/media/"+mid, nil), 404, "not_found")
		return id
	}
	var first string
	for i, c := range cases {
		id := check(c)
		if i == 0 {
			first = id
		}
	}

	// Delivered again: no second event, no second item.
	var items int
	countItems := func() int {
		if err := ta.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE session = 'shop'`).Scan(&items); err != nil {
			t.Fatal(err)
		}
		return items
	}
	if n := countItems(); n != len(cases) {
		t.Fatalf("%d media items for %d messages", n, len(cases))
	}
	acked := make(chan struct{}, 1)
	ta.SandboxServer().OnEvent(func(e wasim.Event) {
		if e.MessageID == first && (e.Kind == wasim.EventClientReceipt || e.Kind == wasim.EventClientAck) {
			select {
			case acked <- struct{}{}:
			default:
			}
		}
	})
	if err := ada.Resend(ctx, account, first); err != nil {
		t.Fatal(err)
	}
	<-acked
	if n := countItems(); n != len(cases) {
		t.Fatalf("a redelivered message reserved another item: %d items", n)
	}
	received := 0
	for _, e := range sessionEvents(t, cl, "shop") {
		if e.Type == "message.received" {
			received++
		}
	}
	if received != len(cases) {
		t.Fatalf("%d message.received for %d messages", received, len(cases))
	}

	// Nor does it see the events of the session.
	var seen struct{ Events []loggedEvent }
	if r := do(t, outsider, "GET", "/v1/events?limit=1000", nil); r.Status != 200 || r.JSON(&seen) != nil || len(seen.Events) != 0 {
		t.Fatalf("the outsider's events: %d %s", r.Status, r.Body)
	}

	// An item not downloaded yet: 409 media_pending.
	var pending string
	if err := ta.DB().Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		it, err := ta.Media().ReserveTx(ctx, tx, media.Reservation{Session: "shop", Type: "image/jpeg", Size: 10})
		pending = it.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wantError(t, do(t, cl, "GET", "/v1/media/"+pending, nil), 409, "media_pending")

	// A blob that does not decrypt with the message's key (its MAC fails):
	// media.failed with the reason, at once, and the item failed.
	sentMsgs := make(chan *waE2E.Message, 10)
	ta.SandboxServer().OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventContactSent && e.Message.GetImageMessage() != nil {
			select {
			case sentMsgs <- e.Message:
			default:
			}
		}
	})
	check(cases[0])
	forged := proto.Clone(<-sentMsgs).(*waE2E.Message)
	forged.ImageMessage.MediaKey = randomBytes(t, "", 32)
	bad, err := ada.SendMessage(ctx, account, forged)
	if err != nil {
		t.Fatal(err)
	}
	badMedia := eventAbout(t, cl, "shop", "message.received", bad)["media"].(map[string]any)["id"].(string)
	failed := eventAbout(t, cl, "shop", "media.failed", badMedia)
	if reason, _ := failed["reason"].(string); !strings.Contains(reason, "hmac") || failed["message"].(map[string]any)["id"] != bad {
		t.Errorf("media.failed %s", js(failed))
	}
	wantError(t, do(t, cl, "GET", "/v1/media/"+badMedia, nil), 410, "media_failed")

	// An expired link: recovered through the phone.
	ta.SandboxServer().ExpireMedia(true)
	defer ta.SandboxServer().ExpireMedia(false)
	check(cases[0])
	mu.Lock()
	defer mu.Unlock()
	if expired == 0 || reuploaded == 0 {
		t.Fatalf("the link never expired (%d) or the phone never re-uploaded (%d): the retry was not tested", expired, reuploaded)
	}
	if missing := undocumentedFields(t, cl, sessionEvents(t, cl, "shop")); len(missing) != 0 {
		t.Errorf("event fields the OpenAPI document does not name: %v", missing)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
