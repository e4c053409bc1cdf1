package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// MaxTextBytes caps a text message (WhatsApp's own limit is about 65,536 characters).
const MaxTextBytes = 16 << 10

// maxMentions caps the mentions of one text.
const maxMentions = 64

// TextContent is a text message, optionally mentioning people.
type TextContent struct {
	Body string `json:"body"`
	// Mentions are E.164 phone numbers (as given; Validate checks them).
	// Each must appear in Body as @<digits> or @+<digits>; WhatsApp's
	// form, @<digits>, is what is sent.
	Mentions []string `json:"mentions,omitempty"`
}

// Text is the content of a text message.
func Text(s string) Content { return Content{Kind: KindText, Text: &TextContent{Body: s}} }

// Validate refuses empty text, text over MaxTextBytes, and mentions that
// are not phone numbers or are missing from the text.
func (t *TextContent) Validate() error {
	if err := validText(t.Body); err != nil {
		return err
	}
	if len(t.Mentions) > maxMentions {
		return fmt.Errorf("%w: mentions: at most %d", ErrBadContent, maxMentions)
	}
	for _, m := range t.Mentions {
		d, err := NormalizePhone(m)
		if err != nil {
			return fmt.Errorf("%w: mentions: %v", ErrBadContent, err)
		}
		if !mentions(t.Body, "@"+d) && !mentions(t.Body, "@+"+d) {
			return fmt.Errorf("%w: mentions: the text does not contain @%s (write the number after an @ where it should appear)", ErrBadContent, d)
		}
	}
	return nil
}

// validText is the check of every text a message carries.
func validText(s string) error {
	if strings.TrimSpace(s) == "" {
		return ErrEmptyText
	}
	if len(s) > MaxTextBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTextTooLong, len(s), MaxTextBytes)
	}
	return nil
}

// mentions reports whether s has tag not followed by another digit.
func mentions(s, tag string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], tag)
		if j < 0 {
			return false
		}
		end := i + j + len(tag)
		if end == len(s) || s[end] < '0' || s[end] > '9' {
			return true
		}
		i = end
	}
}

// build: a Conversation, or an ExtendedTextMessage when it quotes or mentions.
func (t *TextContent) build(_ *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	text := t.Body
	if len(t.Mentions) > 0 {
		if ci == nil {
			ci = &waE2E.ContextInfo{}
		}
		for _, m := range t.Mentions {
			d, err := NormalizePhone(m)
			if err != nil {
				return nil, err
			}
			text = strings.ReplaceAll(text, "@+"+d, "@"+d)
			ci.MentionedJID = append(ci.MentionedJID, types.NewJID(d, types.DefaultUserServer).String())
		}
	}
	if ci == nil {
		return &waE2E.Message{Conversation: proto.String(text)}, nil
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: ci}}, nil
}
