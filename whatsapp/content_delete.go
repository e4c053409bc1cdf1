package whatsapp

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
)

// DeleteWindow is how long after sending WhatsApp lets a message be
// deleted for everyone (two days and 12 hours since 2022).
const DeleteWindow = 60 * time.Hour

// DeleteContent revokes one of our messages for everyone.
type DeleteContent struct {
	Message string `json:"message"`
}

// Validate wants a message id.
func (d *DeleteContent) Validate() error {
	if d.Message == "" {
		return fmt.Errorf("%w: delete: message (the id of the message to delete) is required", ErrBadContent)
	}
	return nil
}

func (d *DeleteContent) ref() string { return d.Message }

// check: our own message (not a reaction, edit or delete) within DeleteWindow.
func (d *DeleteContent) check(t target, nowMS int64) error {
	if !t.ref.FromMe {
		return fmt.Errorf("%w: only the session's own messages can be deleted for everyone", ErrNotOwnMessage)
	}
	if isChange(t.kind) {
		return fmt.Errorf("%w: a %s cannot be deleted (a reaction is taken back with emoji \"\")", ErrWrongMessageKind, t.kind)
	}
	if nowMS-t.atMS > DeleteWindow.Milliseconds() {
		return fmt.Errorf("%w: the message was sent %s ago; WhatsApp allows deleting for everyone for %s", ErrDeleteWindowPassed,
			(time.Duration(nowMS-t.atMS) * time.Millisecond).Round(time.Minute), DeleteWindow)
	}
	return nil
}

// build is whatsmeow's BuildRevoke of our own message.
func (d *DeleteContent) build(c *Content, _ *waE2E.ContextInfo) (*waE2E.Message, error) {
	if c.Target == nil {
		return nil, fmt.Errorf("delete without its resolved message")
	}
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: c.Target.key()}}, nil
}
