package whatsapp

import (
	"fmt"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Content kinds. Each kind lives in its own file (content_<kind>.go) with
// Validate and build; Content dispatches on Kind, so the outbox and the
// sender never look at one.
const (
	KindText = "text"
)

// Content is what a message says: a tagged union of one kind's body. The
// outbox stores it as JSON in its content column; the sender rebuilds the
// WhatsApp message from it (and so does a retry receipt, after a restart).
type Content struct {
	Kind string       `json:"kind"`
	Text *TextContent `json:"text,omitempty"`
	// ReplyTo quotes an earlier message of the chat. In a SendRequest only
	// its ID is set (the id the API showed); Send resolves Chat and Sender
	// from the outbox or the event log before the content is stored.
	ReplyTo *MessageRef `json:"reply_to,omitempty"`
}

// MessageRef names one WhatsApp message the way WhatsApp keys it: the chat
// it is in, who sent it, and its id (unique per sender). Replies quote one;
// reactions, edits and revokes will name one too.
type MessageRef struct {
	Chat   string `json:"chat,omitempty"`
	Sender string `json:"sender,omitempty"`
	ID     string `json:"id"`
}

// body is one kind's part of a Content.
type body interface {
	// Validate checks what the API accepted before it is committed.
	Validate() error
	// build makes the WhatsApp message, quoting ci when it is not nil
	// (whatsmeow's Build* style: no network, no state).
	build(ci *waE2E.ContextInfo) (*waE2E.Message, error)
}

func (c Content) body() (body, error) {
	var b body
	switch c.Kind {
	case KindText:
		if c.Text != nil {
			b = c.Text
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, c.Kind)
	}
	if b == nil {
		return nil, fmt.Errorf("%w: kind %s without its %s body", ErrUnknownKind, c.Kind, c.Kind)
	}
	return b, nil
}

// Validate checks the content of one kind.
func (c Content) Validate() error {
	b, err := c.body()
	if err != nil {
		return err
	}
	return b.Validate()
}

// build makes the WhatsApp message of c, with the quote of its reply.
func (c Content) build() (*waE2E.Message, error) {
	b, err := c.body()
	if err != nil {
		return nil, err
	}
	var ci *waE2E.ContextInfo
	if r := c.ReplyTo; r != nil {
		ci = &waE2E.ContextInfo{StanzaID: proto.String(r.ID)}
		if r.Sender != "" {
			ci.Participant = proto.String(r.Sender)
		}
		if chat, err := types.ParseJID(r.Chat); err == nil && chat.Server == types.GroupServer {
			ci.RemoteJID = proto.String(r.Chat) // only a group's quote names its chat
		}
	}
	return b.build(ci)
}

// id is r's message id, "" for nil.
func (r *MessageRef) id() string {
	if r == nil {
		return ""
	}
	return r.ID
}
