package whatsapp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"waappliance/internal/wasim"
	"waappliance/media"
	"waappliance/whatsapp"
)

// withMedia is a kinds rig whose engine has a media store.
func newMediaRig(t *testing.T, dsn string) (*kindsRig, *media.Store) {
	t.Helper()
	var ms *media.Store
	k := &kindsRig{rig: newRig(t, dsn)}
	ms, err := media.New(k.db, filepath.Join(t.TempDir(), "media"), media.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k.got = watchArrivals(k.srv)
	k.e = k.engineWith(t, func(c *whatsapp.Config) {
		c.Media = ms
		c.Now = func() time.Time { return time.Now().Add(time.Duration(k.offset.Load())) }
	})
	ctx := context.Background()
	if err := k.e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	k.pair(t, k.e, "shop", "15550001")
	if err := k.srv.AddContact(ctx, "15550002", "Ada", -1); err != nil {
		t.Fatal(err)
	}
	if k.ct, err = k.srv.Contact("15550002"); err != nil {
		t.Fatal(err)
	}
	return k, ms
}

// blob is size bytes of type t: its signature, then random bytes.
func blob(t *testing.T, typ string, size int) []byte {
	t.Helper()
	sig := map[string]string{
		"image/png": "\x89PNG\r\n\x1a\n", "image/jpeg": "\xff\xd8\xff\xe0", "image/webp": "RIFF\x00\x00\x00\x00WEBP",
		"video/mp4": "\x00\x00\x00\x18ftypmp42", "audio/ogg": "OggS", "audio/mpeg": "ID3", "application/pdf": "%PDF-1.7\n",
	}[typ]
	b := make([]byte, size)
	rand.Read(b)
	copy(b, sig)
	return b
}

func put(t *testing.T, ms *media.Store, peer, typ, name string, b []byte) media.Item {
	t.Helper()
	it, err := ms.Put(context.Background(), peer, typ, name, int64(len(b)), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// inboxOf is the contact's received message id.
func inboxOf(t *testing.T, ct *wasim.Contact, id string) wasim.Received {
	t.Helper()
	var got wasim.Received
	waitFor(t, "message "+id+" in the contact's inbox", 15*time.Second, func() bool {
		for _, r := range ct.Inbox() {
			if r.ID == id {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// TestMediaKindsArriveAsSent: each media kind goes out with the bytes of
// its media item (equal by SHA-256 after the contact downloads and
// decrypts it), its caption, file name, voice and video note flags; the
// outbox row names its media (media_id) and records the upload once.
func TestMediaKindsArriveAsSent(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		k, ms := newMediaRig(t, dsn)
		for _, c := range []struct {
			typ, name string
			size      int
			content   func(id string) whatsapp.Content
			check     func(m *waE2E.Message) bool
		}{
			{"image/png", "", 40 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindImage, Image: &whatsapp.ImageContent{MediaFields: whatsapp.MediaFields{Media: id, Caption: "the new shelf"}}}
			}, func(m *waE2E.Message) bool {
				return m.GetImageMessage().GetCaption() == "the new shelf" && m.GetImageMessage().GetMimetype() == "image/png"
			}},
			{"video/mp4", "", 300 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindVideo, Video: &whatsapp.VideoContent{MediaFields: whatsapp.MediaFields{Media: id, Caption: "a tour"}}}
			}, func(m *waE2E.Message) bool { return m.GetVideoMessage().GetCaption() == "a tour" }},
			{"video/mp4", "", 100 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindVideo, Video: &whatsapp.VideoContent{MediaFields: whatsapp.MediaFields{Media: id}, VideoNote: true}}
			}, func(m *waE2E.Message) bool { return m.GetPtvMessage() != nil && m.GetVideoMessage() == nil }},
			{"audio/mpeg", "", 64 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindAudio, Audio: &whatsapp.AudioContent{Media: id}}
			}, func(m *waE2E.Message) bool { return m.GetAudioMessage() != nil && !m.GetAudioMessage().GetPTT() }},
			{"audio/ogg", "", 20 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindAudio, Audio: &whatsapp.AudioContent{Media: id, Voice: true}}
			}, func(m *waE2E.Message) bool {
				return m.GetAudioMessage().GetPTT() && m.GetAudioMessage().GetMimetype() == "audio/ogg"
			}},
			{"application/pdf", "invoice-2026-12.pdf", 1 << 20, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindDocument, Document: &whatsapp.DocumentContent{MediaFields: whatsapp.MediaFields{Media: id, Caption: "your invoice"}}}
			}, func(m *waE2E.Message) bool {
				d := m.GetDocumentMessage()
				return d.GetFileName() == "invoice-2026-12.pdf" && d.GetCaption() == "your invoice" && d.GetMimetype() == "application/pdf"
			}},
			{"application/pdf", "x.pdf", 2 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindDocument, Document: &whatsapp.DocumentContent{MediaFields: whatsapp.MediaFields{Media: id}, Filename: "renamed.pdf"}}
			}, func(m *waE2E.Message) bool { return m.GetDocumentMessage().GetFileName() == "renamed.pdf" }},
			{"image/webp", "", 30 << 10, func(id string) whatsapp.Content {
				return whatsapp.Content{Kind: whatsapp.KindSticker, Sticker: &whatsapp.StickerContent{Media: id}}
			}, func(m *waE2E.Message) bool { return m.GetStickerMessage().GetMimetype() == "image/webp" }},
		} {
			data := blob(t, c.typ, c.size)
			it := put(t, ms, "p", c.typ, c.name, data)
			m := k.mustSend(t, c.content(it.ID))
			if m.Kind != c.content(it.ID).Kind {
				t.Errorf("%s: the answer shows kind %q", c.typ, m.Kind)
			}
			var mediaID, content string
			if err := k.db.QueryRow(`SELECT media_id, content FROM outbox WHERE id = $1`, m.ID).Scan(&mediaID, &content); err != nil || mediaID != it.ID {
				t.Errorf("%s: outbox media_id %q (%v), want %s", c.typ, mediaID, err, it.ID)
			}
			r := inboxOf(t, k.ct, m.ID)
			if !c.check(r.Message) {
				t.Errorf("%s as %s arrived as %v", c.typ, m.Kind, r.Message)
			}
			got, err := k.ct.Media(r)
			if err != nil {
				t.Errorf("%s: the contact's download: %v", c.typ, err)
				continue
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("%s: the contact got %d bytes of another content (sent %d)", c.typ, len(got), len(data))
			}
			k.sentStatus(t, m.ID)
			if err := k.db.QueryRow(`SELECT content FROM outbox WHERE id = $1`, m.ID).Scan(&content); err != nil {
				t.Fatal(err)
			}
			var st struct {
				Media struct {
					Upload *struct {
						DirectPath string `json:"direct_path"`
					} `json:"upload"`
				} `json:"media_state"`
			}
			if json.Unmarshal([]byte(content), &st); st.Media.Upload == nil || st.Media.Upload.DirectPath == "" {
				t.Errorf("%s: the row does not record the upload: %s", c.typ, content)
			}
		}
	})
}

// TestMediaRefusals: an unknown media id, another peer's upload, a type
// that does not fit the kind, a caption where WhatsApp has none: each a
// clear error, and no outbox row.
func TestMediaRefusals(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		k, ms := newMediaRig(t, dsn)
		pdf := put(t, ms, "p", "application/pdf", "a.pdf", blob(t, "application/pdf", 1000))
		theirs := put(t, ms, "someone-else", "image/png", "", blob(t, "image/png", 1000))
		big := put(t, ms, "p", "image/webp", "", blob(t, "image/webp", 2<<20))
		image := func(id string) whatsapp.Content {
			return whatsapp.Content{Kind: whatsapp.KindImage, Image: &whatsapp.ImageContent{MediaFields: whatsapp.MediaFields{Media: id}}}
		}
		for _, c := range []struct {
			what string
			c    whatsapp.Content
			want error
		}{
			{"unknown media", image("m_nosuchitem"), whatsapp.ErrMediaNotFound},
			{"another peer's media", image(theirs.ID), whatsapp.ErrMediaNotFound},
			{"a PDF as an image", image(pdf.ID), whatsapp.ErrMediaMismatch},
			{"a PDF as a sticker", whatsapp.Content{Kind: whatsapp.KindSticker, Sticker: &whatsapp.StickerContent{Media: pdf.ID}}, whatsapp.ErrMediaMismatch},
			{"a 2 MiB sticker", whatsapp.Content{Kind: whatsapp.KindSticker, Sticker: &whatsapp.StickerContent{Media: big.ID}}, whatsapp.ErrMediaMismatch},
			{"a video note with a caption", whatsapp.Content{Kind: whatsapp.KindVideo, Video: &whatsapp.VideoContent{MediaFields: whatsapp.MediaFields{Media: pdf.ID, Caption: "x"}, VideoNote: true}}, whatsapp.ErrBadContent},
			{"no media id", image(""), whatsapp.ErrBadContent},
		} {
			if _, err := k.send(t, c.c); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.what, err, c.want)
			}
		}
		var n int
		if err := k.db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil || n != 0 {
			t.Errorf("the refusals left %d outbox rows (%v)", n, err)
		}
	})
}

// TestMediaUploadedOnceAcrossRestart: the appliance stops after WhatsApp
// took the message but before the ack (and the receipt) was committed (the
// row is queued again, its upload recorded): the restarted engine sends it again under
// its id from the recorded upload (the row unchanged: no second upload),
// WhatsApp takes it as the same message and the contact lists it once; a
// retry receipt after the restart is answered with the same media.
func TestMediaUploadedOnceAcrossRestart(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		k, ms := newMediaRig(t, dsn)
		data := blob(t, "image/jpeg", 80<<10)
		it := put(t, ms, "p", "image/jpeg", "", data)
		m := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindImage, Image: &whatsapp.ImageContent{MediaFields: whatsapp.MediaFields{Media: it.ID, Caption: "once"}}})
		first := k.arrived(t, m.ID).GetImageMessage().GetDirectPath()
		// Wait for the contact's delivery receipt too: one sent while the
		// appliance is down is queued by WhatsApp for the next connect,
		// which then records it (delivered, not sent again) as it should.
		waitFor(t, "the message delivered", 15*time.Second, func() bool {
			got, err := k.e.Message(ctx, "shop", m.ID)
			return err == nil && got.Status == whatsapp.StatusDelivered
		})
		k.e.Close()
		var before string
		if err := k.db.QueryRow(`SELECT content FROM outbox WHERE id = $1`, m.ID).Scan(&before); err != nil {
			t.Fatal(err)
		}
		// As if the ack's commit never happened.
		if _, err := k.db.Exec(`UPDATE outbox SET status = $1 WHERE id = $2`, whatsapp.StatusQueued, m.ID); err != nil {
			t.Fatal(err)
		}
		dup := make(chan struct{}, 1)
		k.srv.OnEvent(func(e wasim.Event) {
			if e.Kind == wasim.EventDuplicateSend && e.MessageID == m.ID {
				select {
				case dup <- struct{}{}:
				default:
				}
			}
		})

		e2 := k.engineWith(t, func(c *whatsapp.Config) { c.Media = ms })
		if err := e2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-dup:
		case <-time.After(30 * time.Second):
			t.Fatal("the restarted engine did not send the message again")
		}
		waitFor(t, "sent again", 15*time.Second, func() bool {
			got, err := e2.Message(ctx, "shop", m.ID)
			return err == nil && got.Status == whatsapp.StatusSent
		})
		var after string
		if err := k.db.QueryRow(`SELECT content FROM outbox WHERE id = $1`, m.ID).Scan(&after); err != nil || after != before {
			t.Errorf("the row's content changed across the resend (uploaded again?):\n%s\n%s", before, after)
		}
		if err := k.ct.RequestRetry(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		// Answered from the row (whatsmeow's cache is empty after the
		// restart): a media message rebuilds only from a recorded upload.
		waitFor(t, "the retry answered", 15*time.Second, func() bool { return k.ct.Deliveries(m.ID) == 2 })
		if in := inboxOf(t, k.ct, m.ID).Message.GetImageMessage(); in.GetDirectPath() != first {
			t.Errorf("the contact's image has path %q, want %q", in.GetDirectPath(), first)
		}
		n := 0
		for _, r := range k.ct.Inbox() {
			if r.ID == m.ID {
				n++
				if got, err := k.ct.Media(r); err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
					t.Errorf("the contact's image: %v", err)
				}
			}
		}
		if n != 1 {
			t.Errorf("the contact lists the image %d times", n)
		}
	})
}

// inbound reserves an item received in session (pending) and, with data,
// completes it (ready), as the downloader does.
func inbound(t *testing.T, db interface {
	WriteTx(context.Context, func(context.Context, *sql.Tx) error) error
}, ms *media.Store, session, typ string, data []byte) media.Item {
	t.Helper()
	ctx := context.Background()
	var it media.Item
	if err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		it, err = ms.ReserveTx(ctx, tx, media.Reservation{Session: session, Type: typ, Size: int64(len(data))})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if data == nil {
		return it
	}
	f, err := ms.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	if it, err = ms.Complete(ctx, it.ID, f, nil); err != nil {
		t.Fatal(err)
	}
	return it
}

// TestForwardReceivedMedia: media received in the session may be sent on
// (whoever the peer), with its bytes, here as a reply whose caption is then
// edited; media of another session is unknown and media still downloading
// is ErrMediaPending.
func TestForwardReceivedMedia(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		k, ms := newMediaRig(t, dsn)
		data := blob(t, "image/png", 20<<10)
		ours := inbound(t, k.db, ms, "shop", "image/png", data)
		elsewhere := inbound(t, k.db, ms, "other", "image/png", data)
		pending := inbound(t, k.db, ms, "shop", "image/png", nil)
		image := func(id string) whatsapp.Content {
			return whatsapp.Content{Kind: whatsapp.KindImage, Image: &whatsapp.ImageContent{MediaFields: whatsapp.MediaFields{Media: id}}}
		}
		if _, err := k.send(t, image(elsewhere.ID)); !errors.Is(err, whatsapp.ErrMediaNotFound) {
			t.Errorf("another session's media: %v, want ErrMediaNotFound", err)
		}
		if _, err := k.send(t, image(pending.ID)); !errors.Is(err, whatsapp.ErrMediaPending) {
			t.Errorf("media still downloading: %v, want ErrMediaPending", err)
		}
		theirs := k.theirs(t, "send me the photo")
		fwd := image(ours.ID)
		fwd.Image.Caption = "here it is"
		fwd.ReplyTo = &whatsapp.MessageRef{ID: theirs}
		m := k.mustSend(t, fwd)
		r := inboxOf(t, k.ct, m.ID)
		got, err := k.ct.Media(r)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("the forwarded image differs (%v)", err)
		}
		if ci := r.Message.GetImageMessage().GetContextInfo(); ci.GetStanzaID() != theirs || ci.GetParticipant() != "15550002@s.whatsapp.net" {
			t.Errorf("the image's reply quotes %q from %q, want %s from the contact", ci.GetStanzaID(), ci.GetParticipant(), theirs)
		}
		// Its caption edited: an edit of our image's key.
		ed := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindEdit, Edit: &whatsapp.EditContent{Message: m.ID, Text: "here it is, in colour"}})
		pm := k.arrived(t, ed.ID).GetEditedMessage().GetMessage().GetProtocolMessage()
		if pm.GetKey().GetID() != m.ID || pm.GetEditedMessage().GetConversation() != "here it is, in colour" {
			t.Errorf("the caption's edit arrived as %v", pm)
		}
	})
}

// patternReader is n deterministic pseudo-random bytes, made as read (the
// test never holds the file).
type patternReader struct {
	n, off int64
	x      uint64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		if p.off < 5 {
			b[i] = "%PDF-"[p.off]
		} else {
			p.x = p.x*6364136223846793005 + 1442695040888963407
			b[i] = byte(p.x >> 56)
		}
		p.off++
	}
	return len(b), nil
}

// TestLargeDocumentStreams: a 100 MiB document goes from the media store
// to WhatsApp streamed (through a temporary file for the encryption): the
// heap never grows by anything near the file's size while it is sent,
// and the contact's download has its bytes.
func TestLargeDocumentStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB through the media store and wasim")
	}
	k, ms := newMediaRig(t, "")
	const size = 100 << 20
	h := sha256.New()
	it, err := ms.Put(context.Background(), "p", "application/pdf", "big.pdf", size, io.TeeReader(&patternReader{n: size}, h))
	if err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	m := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindDocument, Document: &whatsapp.DocumentContent{MediaFields: whatsapp.MediaFields{Media: it.ID}}})
	waitFor(t, "the document sent", 2*time.Minute, func() bool {
		got, err := k.e.Message(context.Background(), "shop", m.ID)
		return err == nil && got.Status != whatsapp.StatusQueued
	})
	close(stop)
	<-done
	if grew := int64(peak.Load()) - int64(base.HeapInuse); grew > 48<<20 {
		t.Errorf("the heap grew by %d MiB while a %d MiB document was sent: not streamed", grew>>20, size>>20)
	} else {
		t.Logf("heap grew by at most %d MiB while sending %d MiB", grew>>20, size>>20)
	}
	got, err := k.ct.Media(inboxOf(t, k.ct, m.ID))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(got); !bytes.Equal(sum[:], want) {
		t.Errorf("the contact's %d bytes differ from the %d sent", len(got), size)
	}
}
