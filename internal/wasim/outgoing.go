package wasim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// ErrUnknownMessage is returned for an edit, revoke or vote that names a
// message the contact did not send (or, for votes, a poll it does not know).
var ErrUnknownMessage = errors.New("wasim: unknown message")

// ErrInvalid is returned for a message a contact cannot send as asked (no
// content field or two, an unknown media kind, a poll option that is not
// one, coordinates out of range).
var ErrInvalid = errors.New("wasim: invalid message")

// Outgoing is one message of any kind a contact sends, as the control API
// and Backend.ContactSendKind take it: exactly one of the content fields.
// ReplyTo quotes a message of the chat (text, media, location, contacts
// and polls).
type Outgoing struct {
	ReplyTo  string    `json:"reply_to,omitempty"`
	Text     *string   `json:"text,omitempty"`
	Media    *Media    `json:"media,omitempty"`
	Location *Location `json:"location,omitempty"`
	Contacts []Card    `json:"contacts,omitempty"`
	Poll     *Poll     `json:"poll,omitempty"`
	Reaction *Reaction `json:"reaction,omitempty"`
	Edit     *Change   `json:"edit,omitempty"`
	Delete   *Change   `json:"delete,omitempty"` // Message only
	Vote     *Vote     `json:"vote,omitempty"`
}

// Location is a pin.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

// Poll is a poll to create; Selectable 0 lets a voter choose any number.
type Poll struct {
	Question   string   `json:"question"`
	Options    []string `json:"options"`
	Selectable int      `json:"selectable,omitempty"`
}

// Reaction is an emoji on message Message ("" removes it).
type Reaction struct {
	Message string `json:"message"`
	Emoji   string `json:"emoji"`
}

// Change names a message the contact sent, and the new text of an edit.
type Change struct {
	Message string `json:"message"`
	Text    string `json:"text,omitempty"`
}

// Vote chooses options (by name) in poll Message.
type Vote struct {
	Message string   `json:"message"`
	Options []string `json:"options"`
}

// fields lists the content fields o sets.
func (o Outgoing) fields() []string {
	var f []string
	add := func(set bool, name string) {
		if set {
			f = append(f, name)
		}
	}
	add(o.Text != nil, "text")
	add(o.Media != nil, "media")
	add(o.Location != nil, "location")
	add(o.Contacts != nil, "contacts")
	add(o.Poll != nil, "poll")
	add(o.Reaction != nil, "reaction")
	add(o.Edit != nil, "edit")
	add(o.Delete != nil, "delete")
	add(o.Vote != nil, "vote")
	return f
}

// SendKind makes the contact send o to the account to.
func (ct *Contact) SendKind(ctx context.Context, to types.JID, o Outgoing) (string, error) {
	if f := o.fields(); len(f) != 1 {
		return "", fmt.Errorf("%w: want exactly one content field, got %d (%s)", ErrInvalid, len(f), strings.Join(f, ", "))
	}
	var quote *waE2E.ContextInfo
	if o.ReplyTo != "" {
		key, err := ct.keyFor(to, o.ReplyTo)
		if err != nil {
			return "", err
		}
		quote = &waE2E.ContextInfo{StanzaID: proto.String(o.ReplyTo), Participant: proto.String(to.ToNonAD().String())}
		if key.GetFromMe() {
			quote.Participant = proto.String(ct.acc.jid.String())
		}
	}
	switch {
	case o.Text != nil:
		if quote != nil {
			return ct.SendMessage(ctx, to, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: o.Text, ContextInfo: quote}})
		}
		return ct.Send(ctx, to, *o.Text)
	case o.Media != nil:
		msg, err := ct.mediaMessage(*o.Media)
		if err != nil {
			return "", err
		}
		return ct.SendMessage(ctx, to, withQuote(msg, quote))
	case o.Location != nil:
		l := o.Location
		if l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
			return "", fmt.Errorf("%w: latitude or longitude out of range", ErrInvalid)
		}
		msg := &waE2E.Message{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(l.Latitude), DegreesLongitude: proto.Float64(l.Longitude)}}
		if l.Name != "" {
			msg.LocationMessage.Name = proto.String(l.Name)
		}
		if l.Address != "" {
			msg.LocationMessage.Address = proto.String(l.Address)
		}
		return ct.SendMessage(ctx, to, withQuote(msg, quote))
	case o.Contacts != nil:
		if quote == nil {
			return ct.SendContacts(ctx, to, o.Contacts)
		}
		if len(o.Contacts) != 1 {
			return "", fmt.Errorf("%w: a reply with contact cards takes one", ErrInvalid)
		}
		return ct.SendMessage(ctx, to, withQuote(&waE2E.Message{ContactMessage: &waE2E.ContactMessage{
			DisplayName: proto.String(o.Contacts[0].Name), Vcard: proto.String(o.Contacts[0].VCard)}}, quote))
	case o.Poll != nil:
		return ct.SendPoll(ctx, to, o.Poll.Question, o.Poll.Options, o.Poll.Selectable)
	case o.Reaction != nil:
		return ct.React(ctx, to, o.Reaction.Message, o.Reaction.Emoji)
	case o.Edit != nil:
		return ct.Edit(ctx, to, o.Edit.Message, o.Edit.Text)
	case o.Delete != nil:
		return ct.Revoke(ctx, to, o.Delete.Message)
	default:
		return ct.VotePoll(ctx, to, o.Vote.Message, o.Vote.Options)
	}
}

// mediaSum is the hash and size of a received message's decrypted media,
// kept so that listing an inbox decrypts each file once.
type mediaSum struct {
	sha256 string
	size   int64
}

// withQuote sets the quote of a media, location or contact message.
func withQuote(m *waE2E.Message, q *waE2E.ContextInfo) *waE2E.Message {
	if q == nil {
		return m
	}
	switch {
	case m.ImageMessage != nil:
		m.ImageMessage.ContextInfo = q
	case m.VideoMessage != nil:
		m.VideoMessage.ContextInfo = q
	case m.PtvMessage != nil:
		m.PtvMessage.ContextInfo = q
	case m.AudioMessage != nil:
		m.AudioMessage.ContextInfo = q
	case m.DocumentMessage != nil:
		m.DocumentMessage.ContextInfo = q
	case m.StickerMessage != nil:
		m.StickerMessage.ContextInfo = q
	case m.LocationMessage != nil:
		m.LocationMessage.ContextInfo = q
	case m.ContactMessage != nil:
		m.ContactMessage.ContextInfo = q
	}
	return m
}

// Kind is the kind of a received message as the appliance names kinds:
// text, image, video, audio, document, sticker, location, contacts, poll,
// reaction, edit, delete, vote; anything else is "unsupported".
func (r Received) Kind() string {
	m := r.Message
	if _, kind, _, ok := mediaOf(m); ok {
		return kind
	}
	switch {
	case m.GetConversation() != "" || m.GetExtendedTextMessage() != nil:
		return "text"
	case m.GetLocationMessage() != nil:
		return "location"
	case m.GetContactMessage() != nil || m.GetContactsArrayMessage() != nil:
		return "contacts"
	case m.GetPollCreationMessage() != nil || m.GetPollCreationMessageV2() != nil || m.GetPollCreationMessageV3() != nil:
		return "poll"
	case m.GetReactionMessage() != nil:
		return "reaction"
	case m.GetEditedMessage().GetMessage().GetProtocolMessage().GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT:
		return "edit"
	case m.GetProtocolMessage().GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT:
		return "edit"
	case m.GetProtocolMessage().GetType() == waE2E.ProtocolMessage_REVOKE:
		return "delete"
	case m.GetPollUpdateMessage() != nil:
		return "vote"
	}
	return "unsupported"
}

// entry is the control API's view of a received message: its kind and
// that kind's fields, media checked and hashed (sha256 of the decrypted
// bytes; Error says why when they do not download or decrypt, or a vote
// does not decrypt).
func (ct *Contact) entry(m Received) InboxEntry {
	e := InboxEntry{ID: m.ID, From: m.From.ToNonAD().String(), Kind: m.Kind(), Text: m.Text(), At: m.At, Deliveries: ct.Deliveries(m.ID),
		Resends: ct.srv.resendsFrom(m.From, m.ID)}
	msg := m.Message
	ci := msg.GetExtendedTextMessage().GetContextInfo()
	switch e.Kind {
	case KindImage, KindVideo, KindAudio, KindDocument, KindSticker:
		d, _, _, _ := mediaOf(msg)
		type described interface {
			GetMimetype() string
			GetContextInfo() *waE2E.ContextInfo
		}
		if x, ok := d.(described); ok {
			e.Mimetype, ci = x.GetMimetype(), x.GetContextInfo()
		}
		type captioned interface{ GetCaption() string }
		if x, ok := d.(captioned); ok {
			e.Caption = x.GetCaption()
		}
		e.Filename = msg.GetDocumentMessage().GetFileName()
		e.Voice = msg.GetAudioMessage().GetPTT()
		e.VideoNote = msg.GetPtvMessage() != nil
		ct.mu.Lock()
		sum, ok := ct.sums[m.ID]
		ct.mu.Unlock()
		if !ok {
			if b, err := ct.Media(m); err != nil {
				e.Error = err.Error()
			} else {
				h := sha256.Sum256(b)
				sum = mediaSum{hex.EncodeToString(h[:]), int64(len(b))}
				ct.mu.Lock()
				if ct.sums == nil {
					ct.sums = map[string]mediaSum{}
				}
				ct.sums[m.ID] = sum
				ct.mu.Unlock()
			}
		}
		e.SHA256, e.Size = sum.sha256, sum.size
	case "location":
		l := msg.GetLocationMessage()
		e.Location = &Location{Latitude: l.GetDegreesLatitude(), Longitude: l.GetDegreesLongitude(), Name: l.GetName(), Address: l.GetAddress()}
		ci = l.GetContextInfo()
	case "contacts":
		cards := msg.GetContactsArrayMessage().GetContacts()
		if c := msg.GetContactMessage(); c != nil {
			cards, ci = []*waE2E.ContactMessage{c}, c.GetContextInfo()
		}
		for _, c := range cards {
			e.Contacts = append(e.Contacts, Card{Name: c.GetDisplayName(), VCard: c.GetVcard()})
		}
	case "poll":
		opts, _, _ := pollOf(msg)
		pc := msg.GetPollCreationMessage()
		if pc == nil {
			pc = msg.GetPollCreationMessageV3()
		}
		e.Poll = &Poll{Question: pc.GetName(), Options: opts, Selectable: int(pc.GetSelectableOptionsCount())}
	case "reaction":
		r := msg.GetReactionMessage()
		e.Reaction = &Reaction{Message: r.GetKey().GetID(), Emoji: r.GetText()}
	case "edit":
		pm := msg.GetEditedMessage().GetMessage().GetProtocolMessage()
		if pm == nil {
			pm = msg.GetProtocolMessage()
		}
		em := pm.GetEditedMessage()
		text := em.GetConversation()
		if text == "" {
			text = em.GetExtendedTextMessage().GetText()
		}
		if text == "" {
			text = em.GetImageMessage().GetCaption() + em.GetVideoMessage().GetCaption() + em.GetDocumentMessage().GetCaption()
		}
		e.Edit, e.Text = &Change{Message: pm.GetKey().GetID(), Text: text}, text
	case "delete":
		e.Delete = &Change{Message: msg.GetProtocolMessage().GetKey().GetID()}
	case "vote":
		id, names, err := ct.PollVote(m)
		e.Vote = &Vote{Message: id, Options: names}
		if err != nil {
			e.Error = err.Error()
		}
	}
	e.ReplyTo, e.ReplyFrom = ci.GetStanzaID(), ci.GetParticipant()
	return e
}
