package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"google.golang.org/protobuf/proto"
)

// maxCaptionBytes caps a caption (WhatsApp's apps allow 1,024 characters).
const maxCaptionBytes = 4 << 10

// MediaFields are what every media kind takes: the id of an item in the
// media store (POST /v1/media) and, where WhatsApp has one, a caption.
type MediaFields struct {
	Media   string `json:"media"`
	Caption string `json:"caption,omitempty"`
}

func (f *MediaFields) fields() *MediaFields { return f }

// mediaBody is a media kind's body: Send looks its item up, checks it
// fits kind, and records it in Content.Media.
type mediaBody interface {
	body
	fields() *MediaFields
	// mediaKind is the media store kind the item must fit (media.Fits).
	mediaKind() string
	// appInfo is whatsmeow's media type: the keys the upload is encrypted with.
	appInfo() whatsmeow.MediaType
}

func (f *MediaFields) validate(kind string, caption bool) error {
	if f.Media == "" {
		return fmt.Errorf("%w: %s: media (the id POST /v1/media answered) is required", ErrBadContent, kind)
	}
	if !caption && f.Caption != "" {
		return fmt.Errorf("%w: %s: WhatsApp has no caption for this kind", ErrBadContent, kind)
	}
	if len(f.Caption) > maxCaptionBytes {
		return fmt.Errorf("%w: %s: caption over %d bytes", ErrTextTooLong, kind, maxCaptionBytes)
	}
	return nil
}

// MediaState is what Send found of a media body's item, and, once the
// sender uploaded it to WhatsApp, the upload's result: recorded in the
// outbox row before the message goes, so a retry (or a retry receipt
// after a restart) rebuilds the same message without uploading again.
type MediaState struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Filename  string `json:"filename,omitempty"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	Seconds   int    `json:"seconds,omitempty"`
	Thumbnail []byte `json:"thumbnail,omitempty"`
	// AppInfo is whatsmeow's media type of the upload.
	AppInfo string       `json:"app_info"`
	Upload  *MediaUpload `json:"upload,omitempty"`
}

// MediaUpload is whatsmeow's UploadResponse, kept.
type MediaUpload struct {
	URL           string `json:"url"`
	DirectPath    string `json:"direct_path"`
	MediaKey      []byte `json:"media_key"`
	FileSHA256    []byte `json:"file_sha256"`
	FileEncSHA256 []byte `json:"file_enc_sha256"`
	FileLength    uint64 `json:"file_length"`
}

// uploaded is c's media state with its upload, or an error saying why not.
func uploaded(c *Content) (*MediaState, *MediaUpload, error) {
	if c.Media == nil {
		return nil, nil, fmt.Errorf("%s without its media item", c.Kind)
	}
	if c.Media.Upload == nil {
		return nil, nil, errNotUploaded
	}
	return c.Media, c.Media.Upload, nil
}

var errNotUploaded = fmt.Errorf("media not uploaded to WhatsApp yet")

// optString is nil for "".
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// optUint32 is nil for 0.
func optUint32(n int) *uint32 {
	if n <= 0 {
		return nil
	}
	return proto.Uint32(uint32(n))
}

// baseType is a media type without parameters.
func baseType(t string) string {
	t, _, _ = strings.Cut(t, ";")
	return strings.TrimSpace(t)
}
