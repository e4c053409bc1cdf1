package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// MaxTextBytes caps a text message (WhatsApp's own limit is about 65,536 characters).
const MaxTextBytes = 16 << 10

// TextContent is a plain text message.
type TextContent struct {
	Body string `json:"body"`
}

// Text is the content of a text message.
func Text(s string) Content { return Content{Kind: KindText, Text: &TextContent{Body: s}} }

// Validate refuses empty text and text over MaxTextBytes.
func (t *TextContent) Validate() error {
	if strings.TrimSpace(t.Body) == "" {
		return ErrEmptyText
	}
	if len(t.Body) > MaxTextBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTextTooLong, len(t.Body), MaxTextBytes)
	}
	return nil
}

// build: a Conversation, or an ExtendedTextMessage when it quotes.
func (t *TextContent) build(ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	if ci == nil {
		return &waE2E.Message{Conversation: proto.String(t.Body)}, nil
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(t.Body), ContextInfo: ci}}, nil
}
