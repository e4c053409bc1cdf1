package whatsapp

import (
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// AudioContent is an audio file; with Voice, a voice note (push to talk:
// WhatsApp plays it inline; Ogg/Opus is what its apps record).
// WhatsApp has no caption for audio.
type AudioContent struct {
	Media string `json:"media"`
	Voice bool   `json:"voice,omitempty"`
}

func (b *AudioContent) fields() *MediaFields { return &MediaFields{Media: b.Media} }
func (b *AudioContent) Validate() error {
	f := MediaFields{Media: b.Media}
	return f.validate(KindAudio, false)
}
func (b *AudioContent) mediaKind() string            { return KindAudio }
func (b *AudioContent) appInfo() whatsmeow.MediaType { return whatsmeow.MediaAudio }

func (b *AudioContent) build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	st, up, err := uploaded(c)
	if err != nil {
		return nil, err
	}
	am := &waE2E.AudioMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String(st.Type), Seconds: optUint32(st.Seconds), ContextInfo: ci,
	}
	if b.Voice {
		am.PTT = proto.Bool(true)
	}
	return &waE2E.Message{AudioMessage: am}, nil
}
