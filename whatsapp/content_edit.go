package whatsapp

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// EditWindow is how long after sending WhatsApp lets a message be edited
// (its apps say 15 minutes; whatsmeow's EditWindow allows 20).
const EditWindow = 15 * time.Minute

// EditContent replaces the text of one of our messages, or the caption of
// one of our images, videos or documents.
type EditContent struct {
	Message string `json:"message"`
	Text    string `json:"text"`
}

// Validate wants a message id and the new text.
func (e *EditContent) Validate() error {
	if e.Message == "" {
		return fmt.Errorf("%w: edit: message (the id of the message to edit) is required", ErrBadContent)
	}
	return validText(e.Text)
}

func (e *EditContent) ref() string { return e.Message }

// check: our own text or captioned message, within EditWindow.
func (e *EditContent) check(t target, nowMS int64) error {
	if !t.ref.FromMe {
		return fmt.Errorf("%w: only the session's own messages can be edited", ErrNotOwnMessage)
	}
	switch t.kind {
	case KindText, KindImage, KindVideo, KindDocument, "":
	default:
		return fmt.Errorf("%w: only text and captions can be edited, not a %s", ErrWrongMessageKind, t.kind)
	}
	if nowMS-t.atMS > EditWindow.Milliseconds() {
		return fmt.Errorf("%w: the message was sent %s ago; WhatsApp allows edits for %s", ErrEditWindowPassed,
			(time.Duration(nowMS-t.atMS) * time.Millisecond).Round(time.Second), EditWindow)
	}
	return nil
}

// build is whatsmeow's BuildEdit with the timestamp Send fixed. The new
// text goes as a plain text (what WhatsApp's apps send for a caption too).
func (e *EditContent) build(c *Content, _ *waE2E.ContextInfo) (*waE2E.Message, error) {
	if c.Target == nil {
		return nil, fmt.Errorf("edit without its resolved message")
	}
	return &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
		ProtocolMessage: &waE2E.ProtocolMessage{
			Key:           &waCommon.MessageKey{FromMe: proto.Bool(true), ID: proto.String(c.Target.ID), RemoteJID: proto.String(c.Target.Chat)},
			Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: &waE2E.Message{Conversation: proto.String(e.Text)},
			TimestampMS:   proto.Int64(c.AtMS),
		}}}}, nil
}
