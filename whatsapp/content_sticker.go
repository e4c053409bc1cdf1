package whatsapp

import (
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// StickerContent is a sticker (WebP; WhatsApp's are 512×512). No caption.
type StickerContent struct {
	Media string `json:"media"`
}

func (b *StickerContent) fields() *MediaFields { return &MediaFields{Media: b.Media} }
func (b *StickerContent) Validate() error {
	f := MediaFields{Media: b.Media}
	return f.validate(KindSticker, false)
}
func (b *StickerContent) mediaKind() string            { return KindSticker }
func (b *StickerContent) appInfo() whatsmeow.MediaType { return whatsmeow.MediaImage }

func (b *StickerContent) build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	st, up, err := uploaded(c)
	if err != nil {
		return nil, err
	}
	return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(st.Type), Width: optUint32(st.Width), Height: optUint32(st.Height), ContextInfo: ci,
	}}, nil
}
