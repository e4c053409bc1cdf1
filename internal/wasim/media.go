package wasim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// Media: media_conn points clients at wasim itself; uploads (POST
// /mms/{type}/{token}) are streamed to a file in the server's temporary
// blob directory under a direct path, and downloads (GET of that path)
// stream it back. Blobs are encrypted by the client exactly as for
// WhatsApp, so a contact decrypts them with the media key from the
// message, and the client decrypts what a contact encrypted.

// maxBlob is the largest upload wasim takes: WhatsApp's limit for
// documents is 2 GB. Blobs live in files, not in memory, so the limit only
// bounds the disk a runaway client can fill.
const maxBlob = 2 << 30

// Media kinds, as Media.Kind names them (the appliance's media kinds).
const (
	KindImage    = "image"
	KindVideo    = "video"
	KindAudio    = "audio"
	KindDocument = "document"
	KindSticker  = "sticker"
)

// The HKDF info strings of WhatsApp's media keys (whatsmeow's MediaImage,
// MediaVideo, MediaAudio, MediaDocument); stickers use the image keys.
const (
	imageInfo    = "WhatsApp Image Keys"
	videoInfo    = "WhatsApp Video Keys"
	audioInfo    = "WhatsApp Audio Keys"
	documentInfo = "WhatsApp Document Keys"
)

// defaultMimetype is the type of media sent without one.
var defaultMimetype = map[string]string{KindImage: "image/jpeg", KindVideo: "video/mp4", KindAudio: "audio/ogg",
	KindDocument: "application/octet-stream", KindSticker: "image/webp"}

// voiceMimetype is the type WhatsApp gives voice notes (PTT).
const voiceMimetype = "audio/ogg; codecs=opus"

// blob is one uploaded, encrypted media file.
type blob struct {
	file string // in Server.blobDir
	size int64
	// contact is set for what a simulated contact uploaded (the media a
	// Faults.ExpiredMedia expires); reupload for a phone's re-upload after
	// a media retry receipt, which is served whatever the fault.
	contact  bool
	reupload bool
}

func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/mms/"):
		path, err := s.putBlob(r.Body, false, false)
		if errors.Is(err, errBlobTooLarge) {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return true
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"url": "https://mmg.whatsapp.net" + path, "direct_path": path})
		return true
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v/"):
		s.mu.Lock()
		b, ok := s.blobs[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return true
		}
		if b.contact && !b.reupload && s.expiredMedia.Load() {
			s.emit(Event{Kind: EventMediaExpired, Class: r.URL.Path})
			http.Error(w, "wasim: media expired", http.StatusGone)
			return true
		}
		f, err := os.Open(b.file)
		if err != nil {
			http.NotFound(w, r)
			return true
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Time{}, f)
		return true
	}
	return false
}

var errBlobTooLarge = fmt.Errorf("wasim: upload over %d bytes", int64(maxBlob))

// putBlob streams an encrypted file to the blob directory and returns its
// direct path (with WhatsApp's ccb query).
func (s *Server) putBlob(r io.Reader, contact, reupload bool) (string, error) {
	f, err := os.CreateTemp(s.blobDir, "up-*")
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, io.LimitReader(r, maxBlob+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxBlob {
		err = errBlobTooLarge
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	var id [12]byte
	rand.Read(id[:])
	p := "/v/t62.7118-24/wasim-" + hex.EncodeToString(id[:])
	s.mu.Lock()
	s.blobs[p] = &blob{file: f.Name(), size: n, contact: contact, reupload: reupload}
	s.mu.Unlock()
	return p + "?ccb=11-4", nil
}

// blobAt is the upload at a direct path (its query ignored).
func (s *Server) blobAt(directPath string) (*blob, bool) {
	path, _, _ := strings.Cut(directPath, "?")
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[path]
	return b, ok
}

// readBlob returns the encrypted file at a direct path (its query ignored).
func (s *Server) readBlob(directPath string) ([]byte, error) {
	b, ok := s.blobAt(directPath)
	if !ok {
		return nil, fmt.Errorf("wasim: no uploaded media at %s", directPath)
	}
	return os.ReadFile(b.file)
}

// newBlobDir makes the directory uploads are kept in; Close removes it.
func newBlobDir() (string, error) {
	return os.MkdirTemp("", "wasim-media-*")
}

func removeBlobDir(dir string) error {
	if dir == "" || !strings.HasPrefix(filepath.Base(dir), "wasim-media-") {
		return nil
	}
	return os.RemoveAll(dir)
}

func mediaKeys(key []byte, info string) (iv, cipherKey, macKey []byte) {
	x := hkdfutil.SHA256(key, nil, []byte(info), 112)
	return x[:16], x[16:48], x[48:80]
}

func encryptMedia(plain, key []byte, info string) ([]byte, error) {
	iv, ck, mk := mediaKeys(key, info)
	block, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := make([]byte, len(plain)+pad, len(plain)+pad+10)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)
	h := hmac.New(sha256.New, mk)
	h.Write(iv)
	h.Write(out)
	return append(out, h.Sum(nil)[:10]...), nil
}

// decryptMedia decrypts file in place and returns the plain bytes.
func decryptMedia(file, key []byte, info string) ([]byte, error) {
	if len(file) < 10+aes.BlockSize || (len(file)-10)%aes.BlockSize != 0 {
		return nil, errors.New("wasim: media file has a bad length")
	}
	iv, ck, mk := mediaKeys(key, info)
	ct, mac := file[:len(file)-10], file[len(file)-10:]
	h := hmac.New(sha256.New, mk)
	h.Write(iv)
	h.Write(ct)
	if !hmac.Equal(h.Sum(nil)[:10], mac) {
		return nil, errors.New("wasim: media MAC mismatch")
	}
	block, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(ct, ct)
	pad := int(ct[len(ct)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errors.New("wasim: bad media padding")
	}
	return ct[:len(ct)-pad], nil
}

// Media is what a contact sends with SendMedia. Kind is one of KindImage,
// KindVideo, KindAudio, KindDocument, KindSticker. Caption applies to
// images, videos and documents; Filename to documents; Voice makes audio a
// voice note (PTT, with WhatsApp's ogg/opus type when Mimetype is empty or
// plain audio/ogg; other kinds default to image/jpeg, video/mp4,
// audio/ogg, application/octet-stream, image/webp); VideoNote makes a video a round video note
// (PtvMessage). Thumbnail (a small JPEG) and Seconds are optional.
type Media struct {
	Kind      string `json:"kind"`
	Data      []byte `json:"data"` // base64 in JSON
	Mimetype  string `json:"mimetype,omitempty"`
	Caption   string `json:"caption,omitempty"`
	Filename  string `json:"filename,omitempty"`
	Voice     bool   `json:"voice,omitempty"`
	VideoNote bool   `json:"video_note,omitempty"`
	Thumbnail []byte `json:"thumbnail,omitempty"`
	Seconds   uint32 `json:"seconds,omitempty"`
}

// kindInfo is the HKDF info of a media kind.
func kindInfo(kind string) (string, bool) {
	switch kind {
	case KindImage, KindSticker:
		return imageInfo, true
	case KindVideo:
		return videoInfo, true
	case KindAudio:
		return audioInfo, true
	case KindDocument:
		return documentInfo, true
	}
	return "", false
}

// downloadable is what every media message has.
type downloadable interface {
	GetDirectPath() string
	GetMediaKey() []byte
	GetFileEncSHA256() []byte
	GetFileSHA256() []byte
}

// mediaOf returns the media part of a message, its kind and key info, or
// ok false when it has none. A video note (PtvMessage) is a KindVideo.
func mediaOf(m *waE2E.Message) (d downloadable, kind, info string, ok bool) {
	switch {
	case m.GetImageMessage() != nil:
		return m.GetImageMessage(), KindImage, imageInfo, true
	case m.GetVideoMessage() != nil:
		return m.GetVideoMessage(), KindVideo, videoInfo, true
	case m.GetPtvMessage() != nil:
		return m.GetPtvMessage(), KindVideo, videoInfo, true
	case m.GetAudioMessage() != nil:
		return m.GetAudioMessage(), KindAudio, audioInfo, true
	case m.GetDocumentMessage() != nil:
		return m.GetDocumentMessage(), KindDocument, documentInfo, true
	case m.GetDocumentWithCaptionMessage().GetMessage().GetDocumentMessage() != nil:
		return m.GetDocumentWithCaptionMessage().GetMessage().GetDocumentMessage(), KindDocument, documentInfo, true
	case m.GetStickerMessage() != nil:
		return m.GetStickerMessage(), KindSticker, imageInfo, true
	}
	return nil, "", "", false
}

// Media downloads and decrypts the media (image, video, video note, audio,
// document or sticker) a received message carries, checking both hashes
// and FileLength.
func (ct *Contact) Media(r Received) ([]byte, error) {
	d, kind, info, ok := mediaOf(r.Message)
	if !ok {
		return nil, errors.New("wasim: not a media message")
	}
	return ct.srv.openMedia(d, kind, info)
}

func (s *Server) openMedia(d downloadable, kind, info string) ([]byte, error) {
	file, err := s.readBlob(d.GetDirectPath())
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(file); !hmac.Equal(sum[:], d.GetFileEncSHA256()) {
		return nil, fmt.Errorf("wasim: encrypted %s hash mismatch", kind)
	}
	plain, err := decryptMedia(file, d.GetMediaKey(), info)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(plain); !hmac.Equal(sum[:], d.GetFileSHA256()) {
		return nil, fmt.Errorf("wasim: %s hash mismatch", kind)
	}
	if l, ok := d.(interface{ GetFileLength() uint64 }); ok && l.GetFileLength() != uint64(len(plain)) {
		return nil, fmt.Errorf("wasim: %s of %d bytes says FileLength %d", kind, len(plain), l.GetFileLength())
	}
	return plain, nil
}

// Image returns the decrypted image a received message carries.
func (ct *Contact) Image(r Received) ([]byte, error) {
	if r.Message.GetImageMessage() == nil {
		return nil, errors.New("wasim: not an image message")
	}
	return ct.Media(r)
}

// SendImage makes the contact send an image (encrypted and stored as an
// upload would be) with a caption.
func (ct *Contact) SendImage(ctx context.Context, to types.JID, data []byte, mimetype, caption string) (string, error) {
	return ct.SendMedia(ctx, to, Media{Kind: KindImage, Data: data, Mimetype: mimetype, Caption: caption})
}

// uploaded is a contact's encrypted upload.
type uploaded struct {
	path, url          string
	key, encSum, plain []byte
	length             uint64
}

// upload encrypts data with a fresh media key and stores it as the
// contact's phone would upload it.
func (ct *Contact) upload(data []byte, info string) (uploaded, error) {
	key := make([]byte, 32)
	rand.Read(key)
	file, err := encryptMedia(data, key, info)
	if err != nil {
		return uploaded{}, err
	}
	encSum, sum := sha256.Sum256(file), sha256.Sum256(data)
	path, err := ct.srv.putBlob(bytes.NewReader(file), true, false)
	if err != nil {
		return uploaded{}, err
	}
	return uploaded{path: path, url: "https://mmg.whatsapp.net" + path, key: key, encSum: encSum[:], plain: sum[:], length: uint64(len(data))}, nil
}

// SendMedia makes the contact send media of any kind to the account to:
// the bytes encrypted with a fresh media key under the kind's key info,
// stored as the phone's upload, and the message with WhatsApp's fields
// (URL, direct path, media key, both hashes, length, type, and the kind's
// own: caption, file name, PTT, seconds, thumbnail). It returns the id.
func (ct *Contact) SendMedia(ctx context.Context, to types.JID, m Media) (string, error) {
	msg, err := ct.mediaMessage(m)
	if err != nil {
		return "", err
	}
	return ct.SendMessage(ctx, to, msg)
}

// mediaMessage uploads m and builds its message.
func (ct *Contact) mediaMessage(m Media) (*waE2E.Message, error) {
	info, ok := kindInfo(m.Kind)
	if !ok {
		return nil, fmt.Errorf("%w: unknown media kind %q", ErrInvalid, m.Kind)
	}
	if len(m.Data) == 0 {
		return nil, fmt.Errorf("%w: no media bytes", ErrInvalid)
	}
	mt := m.Mimetype
	switch {
	case m.Kind == KindAudio && m.Voice && (mt == "" || mt == "audio/ogg"):
		mt = voiceMimetype
	case mt == "":
		mt = defaultMimetype[m.Kind]
	}
	up, err := ct.upload(m.Data, info)
	if err != nil {
		return nil, err
	}
	now := proto.Int64(time.Now().Unix())
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return proto.String(s)
	}
	secs := func() *uint32 {
		if m.Seconds == 0 {
			return nil
		}
		return proto.Uint32(m.Seconds)
	}
	switch m.Kind {
	case KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: &up.url, DirectPath: &up.path, MediaKey: up.key,
			FileEncSHA256: up.encSum, FileSHA256: up.plain, FileLength: &up.length, Mimetype: &mt, MediaKeyTimestamp: now,
			Caption: opt(m.Caption), JPEGThumbnail: m.Thumbnail}}, nil
	case KindVideo:
		v := &waE2E.VideoMessage{URL: &up.url, DirectPath: &up.path, MediaKey: up.key,
			FileEncSHA256: up.encSum, FileSHA256: up.plain, FileLength: &up.length, Mimetype: &mt, MediaKeyTimestamp: now,
			Caption: opt(m.Caption), JPEGThumbnail: m.Thumbnail, Seconds: secs()}
		if m.VideoNote {
			v.Caption = nil // round video notes have none
			return &waE2E.Message{PtvMessage: v}, nil
		}
		return &waE2E.Message{VideoMessage: v}, nil
	case KindAudio:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{URL: &up.url, DirectPath: &up.path, MediaKey: up.key,
			FileEncSHA256: up.encSum, FileSHA256: up.plain, FileLength: &up.length, Mimetype: &mt, MediaKeyTimestamp: now,
			PTT: proto.Bool(m.Voice), Seconds: secs()}}, nil
	case KindDocument:
		name := m.Filename
		if name == "" {
			name = "file"
		}
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{URL: &up.url, DirectPath: &up.path, MediaKey: up.key,
			FileEncSHA256: up.encSum, FileSHA256: up.plain, FileLength: &up.length, Mimetype: &mt, MediaKeyTimestamp: now,
			FileName: &name, Title: &name, Caption: opt(m.Caption), JPEGThumbnail: m.Thumbnail}}, nil
	default: // KindSticker
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{URL: &up.url, DirectPath: &up.path, MediaKey: up.key,
			FileEncSHA256: up.encSum, FileSHA256: up.plain, FileLength: &up.length, Mimetype: &mt, MediaKeyTimestamp: now}}, nil
	}
}
