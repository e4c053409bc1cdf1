// Package media is the appliance's media store: the bytes of uploads
// (POST /v1/media) and of inbound attachments, with their rows in the
// media table.
//
// An item is durable before anything acknowledges it. On SQLite its bytes
// are a file named by its id in the store's directory (0700; files 0600),
// written to a temporary file, fsynced, renamed and the directory fsynced
// before the row commits. On PostgreSQL they are media_chunks rows of
// ChunkSize bytes, so that every appliance sharing the database reads
// them, written with the upload's row in one transaction outside the
// appliance's write lock, then made ready under the quota in a short write
// transaction. Uploads are streamed: no item is ever held whole in memory.
//
// Under the quota (Options.MaxBytes) the oldest ready items are evicted
// first to make room; Prune ages items out with the event retention.
// Neither ever removes an item a queued outbox row references (its
// media_id), nor a pending one.
package media

import (
	"errors"
	"mime"
	"strings"
	"time"
)

// The kinds of WhatsApp media.
const (
	KindImage    = "image"
	KindVideo    = "video"
	KindAudio    = "audio"
	KindDocument = "document"
	KindSticker  = "sticker"
)

// The states of an item.
const (
	StateReady   = "ready"   // its bytes are stored
	StatePending = "pending" // inbound, reserved, not yet downloaded
	StateFailed  = "failed"  // inbound, the download gave up (Error says why)
)

// Item is one stored (or reserved) media item.
type Item struct {
	ID        string    `json:"id"`
	SHA256    string    `json:"sha256"` // hex, of the plain bytes
	Size      int64     `json:"size"`
	Type      string    `json:"type"` // media type, e.g. image/jpeg (no parameters)
	Filename  string    `json:"filename,omitempty"`
	State     string    `json:"state"`
	Error     string    `json:"error,omitempty"`   // why it failed
	Session   string    `json:"session,omitempty"` // inbound media: the session it came to
	Peer      string    `json:"-"`                 // uploads: the peer that uploaded it
	CreatedAt time.Time `json:"created_at"`
	// What the store learned from the bytes, where it could:
	Width     int    `json:"width,omitempty"`   // images (stdlib decoders: jpeg, png, gif)
	Height    int    `json:"height,omitempty"`  // images
	Seconds   int    `json:"seconds,omitempty"` // audio (ogg/opus granule) and video (mp4 mvhd)
	Thumbnail []byte `json:"-"`                 // small JPEG for images, nil when not made
}

// Errors of the store. Each says who returns it.
var (
	// ErrNotFound is returned by Get, Open, Complete, Fail and SetSource
	// for an id that is not stored (or not well-formed: ids never reach a
	// file path unchecked).
	ErrNotFound = errors.New("media: not found")
	// ErrPending is returned by Open for an item not yet downloaded.
	ErrPending = errors.New("media: not downloaded yet")
	// ErrFailed is returned by Open (and Complete) for an item whose
	// download failed.
	ErrFailed = errors.New("media: download failed")
	// ErrTooLarge is returned by Put when the size is over MaxSize of the
	// type's kind.
	ErrTooLarge = errors.New("media: too large for its kind")
	// ErrTypeMismatch is returned by Put when the bytes' signature is not
	// the declared type's.
	ErrTypeMismatch = errors.New("media: the content is not of the declared type")
	// ErrUnsupportedType is returned by Put for a media type the store
	// does not accept (see Types).
	ErrUnsupportedType = errors.New("media: unsupported media type")
	// ErrQuota is returned by Put and Complete when the item does not fit
	// under the quota even after every evictable item is evicted.
	ErrQuota = errors.New("media: quota exceeded")
	// ErrShortBody is returned by Put when the body ends (or fails)
	// before size bytes: the client hung up. Nothing is left behind.
	ErrShortBody = errors.New("media: body shorter than its declared size")
	// ErrBadFilename is returned by Put for a file name with control
	// characters, a path separator, or over MaxFilename bytes.
	ErrBadFilename = errors.New("media: bad file name")
	// ErrEmpty is returned by Put for a size of 0.
	ErrEmpty = errors.New("media: empty")
	// ErrNoSpace is returned by Put and Complete when the disk is full
	// (before the quota is: --media-max-bytes is larger than the disk).
	ErrNoSpace = errors.New("media: no space left on the disk")
)

// MaxFilename is the longest file name Put takes, in bytes.
const MaxFilename = 255

// The per-kind limits (MaxSize), close to WhatsApp's own: images and
// audio 16 MiB (WhatsApp's long-standing media limit), stickers 1 MiB
// (WhatsApp wants 100 KiB static / 500 KiB animated; a little headroom),
// video 64 MiB (WhatsApp takes larger videos only by compressing them on
// the phone, which the appliance does not do), documents 2 GiB (WhatsApp's
// document limit). The quota (Options.MaxBytes) applies on top.
var limits = map[string]int64{
	KindImage:    16 << 20,
	KindSticker:  1 << 20,
	KindAudio:    16 << 20,
	KindVideo:    64 << 20,
	KindDocument: 2 << 30,
}

// MaxSize is the per-kind limit in bytes (0 for an unknown kind).
func MaxSize(kind string) int64 { return limits[kind] }

// KindOf is the kind a media type belongs to (image/webp → image; anything
// unknown → document). Parameters and case are ignored.
func KindOf(mediaType string) string {
	if t, ok := types[Normalize(mediaType)]; ok {
		return t.kind
	}
	return KindDocument
}

// fits lists, per kind, the types WhatsApp takes as that kind.
var fits = map[string][]string{
	KindImage:   {"image/jpeg", "image/png"},
	KindSticker: {"image/webp"},
	KindVideo:   {"video/mp4", "video/3gpp"},
	KindAudio:   {"audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr"},
}

// Fits reports whether an item of type t may be sent as kind k (image:
// jpeg/png; sticker: webp; video: mp4/3gpp; audio: ogg/mpeg/mp4/aac/amr;
// document: anything). Sends check it (400).
func Fits(kind, t string) bool {
	if kind == KindDocument {
		return true
	}
	t = Normalize(t)
	for _, f := range fits[kind] {
		if f == t {
			return true
		}
	}
	return false
}

// Normalize is a media type without parameters, lower case, under its own
// name for the aliases clients use (image/jpg → image/jpeg, audio/x-m4a →
// audio/mp4, …); "" when it does not parse.
func Normalize(t string) string {
	mt, _, err := mime.ParseMediaType(t)
	if err != nil {
		return ""
	}
	mt = strings.ToLower(mt)
	if a, ok := aliases[mt]; ok {
		return a
	}
	return mt
}
