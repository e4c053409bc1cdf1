package wasim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// clientMedia is a media message as an appliance builds it from
// whatsmeow's upload result.
func clientMedia(kind string, up whatsmeow.UploadResponse, mt, caption, filename string, voice, note bool) *waE2E.Message {
	u, p, l := proto.String(up.URL), proto.String(up.DirectPath), proto.Uint64(up.FileLength)
	switch kind {
	case KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: u, DirectPath: p, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: l, Mimetype: &mt, Caption: &caption}}
	case KindVideo:
		v := &waE2E.VideoMessage{URL: u, DirectPath: p, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: l, Mimetype: &mt, Caption: &caption}
		if note {
			return &waE2E.Message{PtvMessage: v}
		}
		return &waE2E.Message{VideoMessage: v}
	case KindAudio:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{URL: u, DirectPath: p, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: l, Mimetype: &mt, PTT: &voice}}
	case KindDocument:
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{URL: u, DirectPath: p, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: l, Mimetype: &mt, Caption: &caption, FileName: &filename}}
	default:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{URL: u, DirectPath: p, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: l, Mimetype: &mt}}
	}
}

var whatsmeowType = map[string]whatsmeow.MediaType{KindImage: whatsmeow.MediaImage, KindVideo: whatsmeow.MediaVideo,
	KindAudio: whatsmeow.MediaAudio, KindDocument: whatsmeow.MediaDocument, KindSticker: whatsmeow.MediaImage}

// TestMediaKindsBothWays sends every media kind from the client to a
// contact (whatsmeow's own upload and encryption; the contact decrypts) and
// from the contact to the client (the client downloads and decrypts with
// whatsmeow), comparing the bytes and the kind's fields.
func TestMediaKindsBothWays(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551101")
	ct, _ := s.Contact("15551102")
	ctx := context.Background()
	me := tc.Store.ID.ToNonAD()
	cases := []struct {
		name, kind, mt, caption, filename string
		voice, note                       bool
	}{
		{"image", KindImage, "image/jpeg", "a photo", "", false, false},
		{"video", KindVideo, "video/mp4", "a film", "", false, false},
		{"video note", KindVideo, "video/mp4", "", "", false, true},
		{"audio", KindAudio, "audio/mpeg", "", "", false, false},
		{"voice", KindAudio, voiceMimetype, "", "", true, false},
		{"document", KindDocument, "application/pdf", "the invoice", "invoice.pdf", false, false},
		{"sticker", KindSticker, "image/webp", "", "", false, false},
	}
	for i, c := range cases {
		data := make([]byte, 1000+i*4099) // lengths on and off the AES block size
		rand.NewChaCha8([32]byte{byte(i)}).Read(data)

		// Client to contact.
		up, err := tc.Upload(ctx, data, whatsmeowType[c.kind])
		if err != nil {
			t.Fatalf("%s: upload: %v", c.name, err)
		}
		resp, err := tc.SendMessage(ctx, ct.JID(), clientMedia(c.kind, up, c.mt, c.caption, c.filename, c.voice, c.note))
		if err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
		in := ct.Inbox()
		r := in[len(in)-1]
		if r.ID != resp.ID {
			t.Fatalf("%s: inbox ends with %s, sent %s", c.name, r.ID, resp.ID)
		}
		got, err := ct.Media(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: contact decrypted %d bytes (want %d): %v", c.name, len(got), len(data), err)
		}
		if c.note && r.Message.GetPtvMessage() == nil {
			t.Fatalf("%s: not a PtvMessage: %v", c.name, r.Message)
		}

		// Contact to client.
		data2 := append([]byte(nil), data[:len(data)/2]...)
		id, err := ct.SendMedia(ctx, me, Media{Kind: c.kind, Data: data2, Mimetype: c.mt, Caption: c.caption, Filename: c.filename, Voice: c.voice, VideoNote: c.note})
		if err != nil {
			t.Fatalf("%s: contact send: %v", c.name, err)
		}
		ev := tc.waitFor(t, c.name, is[*events.Message]).(*events.Message)
		m := ev.Message
		if ev.Info.ID != id {
			t.Fatalf("%s: got %s, want %s", c.name, ev.Info.ID, id)
		}
		var dl whatsmeow.DownloadableMessage
		var mt string
		switch c.kind {
		case KindImage:
			dl, mt = m.GetImageMessage(), m.GetImageMessage().GetMimetype()
			if m.GetImageMessage().GetCaption() != c.caption {
				t.Errorf("%s: caption %q", c.name, m.GetImageMessage().GetCaption())
			}
		case KindVideo:
			v := m.GetVideoMessage()
			if c.note {
				v = m.GetPtvMessage()
			}
			if v == nil {
				t.Fatalf("%s: no video in %v", c.name, m)
			}
			dl, mt = v, v.GetMimetype()
			if v.GetCaption() != c.caption {
				t.Errorf("%s: caption %q", c.name, v.GetCaption())
			}
		case KindAudio:
			a := m.GetAudioMessage()
			dl, mt = a, a.GetMimetype()
			if a.GetPTT() != c.voice {
				t.Errorf("%s: PTT %v", c.name, a.GetPTT())
			}
		case KindDocument:
			d := m.GetDocumentMessage()
			dl, mt = d, d.GetMimetype()
			if d.GetFileName() != c.filename || d.GetCaption() != c.caption {
				t.Errorf("%s: file name %q, caption %q", c.name, d.GetFileName(), d.GetCaption())
			}
		case KindSticker:
			dl, mt = m.GetStickerMessage(), m.GetStickerMessage().GetMimetype()
		}
		if mt != c.mt {
			t.Errorf("%s: mimetype %q, want %q", c.name, mt, c.mt)
		}
		got, err = tc.Download(ctx, dl)
		if err != nil || !bytes.Equal(got, data2) {
			t.Fatalf("%s: client downloaded %d bytes (want %d): %v", c.name, len(got), len(data2), err)
		}
	}
	// Image keeps working; a text message has no media.
	if _, err := ct.Image(ct.Inbox()[0]); err != nil {
		t.Fatal(err)
	}
	id, _ := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{Conversation: proto.String("no media")})
	in := ct.Inbox()
	if r := in[len(in)-1]; r.ID != id.ID {
		t.Fatal("text not in the inbox")
	} else if _, err := ct.Media(r); err == nil {
		t.Fatal("media of a text message")
	}
	// A voice note without a type gets WhatsApp's.
	if _, err := ct.SendMedia(ctx, me, Media{Kind: KindAudio, Data: []byte("opus"), Voice: true}); err != nil {
		t.Fatal(err)
	}
	ev := tc.waitFor(t, "voice", is[*events.Message]).(*events.Message)
	if a := ev.Message.GetAudioMessage(); a.GetMimetype() != voiceMimetype || !a.GetPTT() {
		t.Fatalf("voice note: %v", a)
	}
	if _, err := ct.SendMedia(ctx, me, Media{Kind: "gif", Data: []byte("x")}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestLargeDocumentUpload sends a 100 MB document from the client,
// streamed by whatsmeow's UploadReader: wasim keeps blobs in files, so it
// goes through whole (today's WhatsApp takes documents up to 2 GB).
func TestLargeDocumentUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB")
	}
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551201")
	ct, _ := s.Contact("15551202")
	ctx := context.Background()
	const size = 100 << 20
	src := filepath.Join(t.TempDir(), "big.pdf")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8([32]byte{7}), size); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	f.Seek(0, io.SeekStart)
	up, err := tc.UploadReader(ctx, f, nil, whatsmeow.MediaDocument)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if up.FileLength != size {
		t.Fatalf("uploaded %d bytes", up.FileLength)
	}
	if _, err := tc.SendMessage(ctx, ct.JID(), clientMedia(KindDocument, up, "application/pdf", "", "big.pdf", false, false)); err != nil {
		t.Fatal(err)
	}
	in := ct.Inbox()
	got, err := ct.Media(in[len(in)-1])
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(got); len(got) != size || !bytes.Equal(sum[:], want) {
		t.Fatalf("contact decrypted %d bytes, sha256 differs", len(got))
	}
}
