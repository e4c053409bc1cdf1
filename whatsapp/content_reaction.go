package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// maxEmojiBytes caps a reaction (one emoji, family sequences included).
const maxEmojiBytes = 64

// ReactionContent reacts to a message of the chat with an emoji; "" takes
// the reaction back.
type ReactionContent struct {
	Message string `json:"message"`
	Emoji   string `json:"emoji"`
}

// Validate wants a message id and a short emoji on one line.
func (r *ReactionContent) Validate() error {
	if r.Message == "" {
		return fmt.Errorf("%w: reaction: message (the id of the message to react to) is required", ErrBadContent)
	}
	if len(r.Emoji) > maxEmojiBytes || strings.ContainsAny(r.Emoji, "\r\n") {
		return fmt.Errorf("%w: reaction: emoji must be one emoji (at most %d bytes), or \"\" to remove the reaction", ErrBadContent, maxEmojiBytes)
	}
	return nil
}

func (r *ReactionContent) ref() string { return r.Message }

// check: any message of the chat but another reaction, edit or delete.
func (r *ReactionContent) check(t target, _ int64) error {
	if isChange(t.kind) {
		return fmt.Errorf("%w: a %s cannot be reacted to", ErrWrongMessageKind, t.kind)
	}
	return nil
}

// build is whatsmeow's BuildReaction with the timestamp Send fixed.
func (r *ReactionContent) build(c *Content, _ *waE2E.ContextInfo) (*waE2E.Message, error) {
	if c.Target == nil {
		return nil, fmt.Errorf("reaction without its resolved message")
	}
	return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
		Key: c.Target.key(), Text: proto.String(r.Emoji), SenderTimestampMS: proto.Int64(c.AtMS)}}, nil
}

// isChange reports whether kind changes another message (and so cannot be
// the target of one).
func isChange(kind string) bool {
	return kind == KindReaction || kind == KindEdit || kind == KindDelete
}
