package whatsapp

import (
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// VideoContent is a video (MP4 or 3GPP) with an optional caption; with
// VideoNote, a round video note (WhatsApp's PTV, no caption).
type VideoContent struct {
	MediaFields
	VideoNote bool `json:"video_note,omitempty"`
}

func (b *VideoContent) Validate() error {
	if b.VideoNote && b.Caption != "" {
		return fmt.Errorf("%w: video: a video note has no caption", ErrBadContent)
	}
	return b.validate(KindVideo, true)
}
func (b *VideoContent) mediaKind() string            { return KindVideo }
func (b *VideoContent) appInfo() whatsmeow.MediaType { return whatsmeow.MediaVideo }

func (b *VideoContent) build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	st, up, err := uploaded(c)
	if err != nil {
		return nil, err
	}
	vm := &waE2E.VideoMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(st.Type), Caption: optString(b.Caption), Seconds: optUint32(st.Seconds),
		Width: optUint32(st.Width), Height: optUint32(st.Height), JPEGThumbnail: st.Thumbnail,
		ContextInfo: ci,
	}
	if b.VideoNote {
		return &waE2E.Message{PtvMessage: vm}, nil
	}
	return &waE2E.Message{VideoMessage: vm}, nil
}
