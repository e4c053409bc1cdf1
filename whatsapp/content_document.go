package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// DocumentContent is a file of any type, shown with its file name
// (Filename, else the one it was uploaded with, else "file").
type DocumentContent struct {
	MediaFields
	Filename string `json:"filename,omitempty"`
}

func (b *DocumentContent) Validate() error {
	if len(b.Filename) > 255 || strings.ContainsAny(b.Filename, "/\\\x00\r\n") {
		return fmt.Errorf("%w: document: filename must be at most 255 bytes without / or \\", ErrBadContent)
	}
	return b.validate(KindDocument, true)
}
func (b *DocumentContent) mediaKind() string            { return KindDocument }
func (b *DocumentContent) appInfo() whatsmeow.MediaType { return whatsmeow.MediaDocument }

func (b *DocumentContent) build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	st, up, err := uploaded(c)
	if err != nil {
		return nil, err
	}
	name := b.Filename
	if name == "" {
		name = st.Filename
	}
	if name == "" {
		name = "file"
	}
	return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(st.Type), Caption: optString(b.Caption), FileName: proto.String(name), Title: proto.String(name),
		JPEGThumbnail: st.Thumbnail, ContextInfo: ci,
	}}, nil
}
