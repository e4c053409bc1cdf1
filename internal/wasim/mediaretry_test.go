package wasim

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// TestExpiredMediaRetry: with ExpiredMedia set, the client's download of a
// contact's media fails with 410; its media retry receipt makes the phone
// re-upload under a new path and answer with a mediaretry notification,
// which whatsmeow decrypts; the new path downloads the same bytes. A retry
// for a message the phone does not have is answered "not available".
func TestExpiredMediaRetry(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551701")
	ct, _ := s.Contact("15551702")
	ctx := context.Background()
	me := tc.Store.ID.ToNonAD()
	data := bytes.Repeat([]byte("a video frame "), 3001)
	id, err := ct.SendMedia(ctx, me, Media{Kind: KindVideo, Data: data, Mimetype: "video/mp4", Caption: "expires"})
	if err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "video", is[*events.Message]).(*events.Message)
	v := ev.Message.GetVideoMessage()
	if ev.Info.ID != id || v == nil {
		t.Fatalf("got %v", ev.Message)
	}
	s.SetFaults(Faults{ExpiredMedia: ptr(true)})
	if _, err := tc.Download(ctx, v); !errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410) {
		t.Fatalf("download of expired media: %v", err)
	}
	if err := tc.SendMediaRetryReceipt(ctx, &ev.Info, v.GetMediaKey()); err != nil {
		t.Fatal(err)
	}
	mr := tc.waitFor(t, "media retry", is[*events.MediaRetry]).(*events.MediaRetry)
	if mr.MessageID != id || mr.ChatID != ev.Info.Chat || mr.FromMe {
		t.Fatalf("media retry event %+v", mr)
	}
	n, err := whatsmeow.DecryptMediaRetryNotification(mr, v.GetMediaKey())
	if err != nil {
		t.Fatal(err)
	}
	if n.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS || n.GetDirectPath() == "" || n.GetDirectPath() == v.GetDirectPath() || n.GetStanzaID() != id {
		t.Fatalf("notification %v", n)
	}
	got, err := tc.DownloadMediaWithPath(ctx, n.GetDirectPath(), v.GetFileEncSHA256(), v.GetFileSHA256(), v.GetMediaKey(), whatsmeow.MediaVideo, "video", false)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download of the re-upload: %d bytes, %v", len(got), err)
	}
	// The old path is still expired; lifting the fault serves it again.
	if _, err := tc.Download(ctx, v); !errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410) {
		t.Fatalf("old path: %v", err)
	}
	s.SetFaults(Faults{ExpiredMedia: ptr(false)})
	if got, err := tc.Download(ctx, v); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the fault: %v", err)
	}

	// A message the phone does not have.
	unknown := ev.Info
	unknown.ID = types.MessageID("3EB0" + "00000000DEADBEEF")
	if err := tc.SendMediaRetryReceipt(ctx, &unknown, v.GetMediaKey()); err != nil {
		t.Fatal(err)
	}
	mr = tc.waitFor(t, "media retry error", is[*events.MediaRetry]).(*events.MediaRetry)
	if _, err := whatsmeow.DecryptMediaRetryNotification(mr, v.GetMediaKey()); !errors.Is(err, whatsmeow.ErrMediaNotAvailableOnPhone) {
		t.Fatalf("unknown message: %v", err)
	}
	// A wrong media key cannot ask for a re-upload.
	if err := tc.SendMediaRetryReceipt(ctx, &ev.Info, bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	mr = tc.waitFor(t, "media retry with a wrong key", is[*events.MediaRetry]).(*events.MediaRetry)
	if n, err := whatsmeow.DecryptMediaRetryNotification(mr, v.GetMediaKey()); err != nil || n.GetResult() != waMmsRetry.MediaRetryNotification_DECRYPTION_ERROR {
		t.Fatalf("wrong key: %v %v", n, err)
	}
}
