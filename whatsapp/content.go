package whatsapp

import (
	"fmt"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Content kinds. Each kind lives in its own file (content_<kind>.go) with
// Validate and build; Content dispatches on Kind, so the outbox and the
// sender never look at one.
const (
	KindText     = "text"
	KindImage    = "image"
	KindVideo    = "video"
	KindAudio    = "audio"
	KindDocument = "document"
	KindSticker  = "sticker"
	KindLocation = "location"
	KindContacts = "contacts"
	KindPoll     = "poll"
	KindReaction = "reaction"
	KindEdit     = "edit"
	KindDelete   = "delete"
)

// Kinds lists every kind Send takes, in the order the API names them.
var Kinds = []string{KindText, KindImage, KindVideo, KindAudio, KindDocument, KindSticker,
	KindLocation, KindContacts, KindPoll, KindReaction, KindEdit, KindDelete}

// Content is what a message says: a tagged union of one kind's body. The
// outbox stores it as JSON in its content column; the sender rebuilds the
// WhatsApp message from it (and so does a retry receipt, after a restart).
//
// The kind bodies hold what the API asked for, in its terms. The fields
// after ReplyTo are the appliance's own: Send (and the sender's upload
// step) set them, replacing whatever a caller put there, so a rebuilt
// message is the same message.
type Content struct {
	Kind     string           `json:"kind"`
	Text     *TextContent     `json:"text,omitempty"`
	Image    *ImageContent    `json:"image,omitempty"`
	Video    *VideoContent    `json:"video,omitempty"`
	Audio    *AudioContent    `json:"audio,omitempty"`
	Document *DocumentContent `json:"document,omitempty"`
	Sticker  *StickerContent  `json:"sticker,omitempty"`
	Location *LocationContent `json:"location,omitempty"`
	Contacts *ContactsContent `json:"contacts,omitempty"`
	Poll     *PollContent     `json:"poll,omitempty"`
	Reaction *ReactionContent `json:"reaction,omitempty"`
	Edit     *EditContent     `json:"edit,omitempty"`
	Delete   *DeleteContent   `json:"delete,omitempty"`
	// ReplyTo quotes an earlier message of the chat. In a SendRequest only
	// its ID is set (the id the API showed); Send resolves Chat and Sender
	// from the outbox or the event log before the content is stored.
	ReplyTo *MessageRef `json:"reply_to,omitempty"`

	// Target is the message a reaction, edit or delete changes, resolved
	// by Send from the body's message id.
	Target *MessageRef `json:"target,omitempty"`
	// Media is a media kind's item as Send found it in the media store,
	// and once the sender uploaded it, WhatsApp's upload result.
	Media *MediaState `json:"media_state,omitempty"`
	// Secret is a poll's message secret (votes are encrypted with it):
	// drawn once by Send, so a retry carries the same one.
	Secret []byte `json:"secret,omitempty"`
	// AtMS is the sender timestamp of a reaction or an edit (Unix ms),
	// fixed by Send for the same reason.
	AtMS int64 `json:"at_ms,omitempty"`
}

// MessageRef names one WhatsApp message the way WhatsApp keys it: the chat
// it is in, who sent it, and its id (unique per sender). Replies quote one;
// reactions, edits and deletes name one too.
type MessageRef struct {
	Chat   string `json:"chat,omitempty"`
	Sender string `json:"sender,omitempty"`
	ID     string `json:"id"`
	// FromMe: the message is the session's own (sent from here or from
	// the phone).
	FromMe bool `json:"from_me,omitempty"`
}

// body is one kind's part of a Content.
type body interface {
	// Validate checks what the API accepted before it is committed.
	Validate() error
	// build makes the WhatsApp message from c (its body is this one),
	// quoting ci when it is not nil (whatsmeow's Build* style: no network,
	// no state).
	build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error)
}

// refBody is a body that changes an earlier message (reaction, edit,
// delete): Send resolves ref() into Content.Target and asks check whether
// the target fits.
type refBody interface {
	ref() string
	check(t target, nowMS int64) error
}

func (c Content) body() (body, error) {
	var b body
	switch c.Kind {
	case KindText:
		b = nilOr(c.Text)
	case KindImage:
		b = nilOr(c.Image)
	case KindVideo:
		b = nilOr(c.Video)
	case KindAudio:
		b = nilOr(c.Audio)
	case KindDocument:
		b = nilOr(c.Document)
	case KindSticker:
		b = nilOr(c.Sticker)
	case KindLocation:
		b = nilOr(c.Location)
	case KindContacts:
		b = nilOr(c.Contacts)
	case KindPoll:
		b = nilOr(c.Poll)
	case KindReaction:
		b = nilOr(c.Reaction)
	case KindEdit:
		b = nilOr(c.Edit)
	case KindDelete:
		b = nilOr(c.Delete)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, c.Kind)
	}
	if b == nil {
		return nil, fmt.Errorf("%w: kind %s without its %s body", ErrUnknownKind, c.Kind, c.Kind)
	}
	return b, nil
}

// nilOr turns a nil *T into a nil interface (not a non-nil one holding nil).
func nilOr[T any, P interface {
	*T
	body
}](p P) body {
	if p == nil {
		return nil
	}
	return p
}

// Validate checks the content of one kind.
func (c Content) Validate() error {
	b, err := c.body()
	if err != nil {
		return err
	}
	if c.ReplyTo != nil {
		if _, ok := b.(refBody); ok {
			return fmt.Errorf("%w: reply_to does not go with %s", ErrBadContent, c.Kind)
		}
	}
	return b.Validate()
}

// MediaID is the media store id a media kind sends, "" for other kinds.
func (c Content) MediaID() string {
	b, err := c.body()
	if err != nil {
		return ""
	}
	if m, ok := b.(mediaBody); ok {
		return m.fields().Media
	}
	return ""
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
	return b.build(&c, ci)
}

// public is c as a caller asked for it: without what Send and the sender
// add (the request hash covers this).
func (c Content) public() Content {
	c.Target, c.Media, c.Secret, c.AtMS = nil, nil, nil, 0
	if c.ReplyTo != nil {
		c.ReplyTo = &MessageRef{ID: c.ReplyTo.ID}
	}
	return c
}

// id is r's message id, "" for nil.
func (r *MessageRef) id() string {
	if r == nil {
		return ""
	}
	return r.ID
}

// key is r as WhatsApp's MessageKey (whatsmeow's BuildMessageKey, from the
// resolved ref instead of the client's own JID).
func (r *MessageRef) key() *waCommon.MessageKey {
	k := &waCommon.MessageKey{FromMe: proto.Bool(r.FromMe), ID: proto.String(r.ID), RemoteJID: proto.String(r.Chat)}
	if chat, err := types.ParseJID(r.Chat); err == nil && !r.FromMe && chat.Server == types.GroupServer && r.Sender != "" {
		k.Participant = proto.String(r.Sender)
	}
	return k
}

// target is what Send knows of the message a refBody names.
type target struct {
	ref  MessageRef
	kind string // its content kind ("" when the event did not say)
	atMS int64  // when it was sent (Unix ms)
	// failed: one of our sends that failed (WhatsApp never had it).
	failed bool
}
