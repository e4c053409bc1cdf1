package whatsapp

import (
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// ImageContent is a photo (JPEG or PNG) with an optional caption.
type ImageContent struct{ MediaFields }

func (b *ImageContent) Validate() error              { return b.validate(KindImage, true) }
func (b *ImageContent) mediaKind() string            { return KindImage }
func (b *ImageContent) appInfo() whatsmeow.MediaType { return whatsmeow.MediaImage }

func (b *ImageContent) build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	st, up, err := uploaded(c)
	if err != nil {
		return nil, err
	}
	return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(st.Type), Caption: optString(b.Caption),
		Width: optUint32(st.Width), Height: optUint32(st.Height), JPEGThumbnail: st.Thumbnail,
		ContextInfo: ci,
	}}, nil
}
