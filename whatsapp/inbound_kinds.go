package whatsapp

import (
	"encoding/hex"
	"mime"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// The kinds of message.received, one translator each. A translator reads
// only the message and the client's stores (LIDs), never the network.

// Quoted is the message a reply quotes: its id and sender and, when the
// reply carried it, its kind and text or caption.
type Quoted struct {
	ID      string `json:"id"`
	From    string `json:"from,omitempty"`
	FromLID string `json:"from_lid,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Text    string `json:"text,omitempty"`
}

// InboundMedia is the media of a received message: an item of the media
// store (GET /v1/media/{id}) that is pending until the download is done
// (a media.ready or media.failed event follows).
type InboundMedia struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256,omitempty"` // hex, of the plain bytes, as the sender declared it
	Filename string `json:"filename,omitempty"`
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
	Seconds  int    `json:"seconds,omitempty"`
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`
	Pages    int    `json:"pages,omitempty"`
	// Voice: a voice note (push to talk); VideoNote: a round video
	// message; Animated: an animated sticker or a GIF-like video.
	Voice     bool `json:"voice,omitempty"`
	VideoNote bool `json:"video_note,omitempty"`
	Animated  bool `json:"animated,omitempty"`
}

// Media states in events (the media store's states).
const (
	mediaPending = "pending"
	mediaFailed  = "failed"
)

// Location is a shared location.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
	Live      bool    `json:"live,omitempty"`
}

// translators is the table, in the order it is tried; set in init (a
// translator's quote summary reads the table).
var translators []translator

func init() {
	translators = []translator{
		{"text", func(m *waE2E.Message) bool { return m.Conversation != nil || m.ExtendedTextMessage != nil }, (*inbound).text},
		{"image", func(m *waE2E.Message) bool { return m.ImageMessage != nil }, (*inbound).image},
		{"video", func(m *waE2E.Message) bool { return m.VideoMessage != nil || m.PtvMessage != nil }, (*inbound).video},
		{"audio", func(m *waE2E.Message) bool { return m.AudioMessage != nil }, (*inbound).audio},
		{"document", func(m *waE2E.Message) bool { return m.DocumentMessage != nil }, (*inbound).document},
		{"sticker", func(m *waE2E.Message) bool { return m.StickerMessage != nil }, (*inbound).sticker},
		{"location", func(m *waE2E.Message) bool { return m.LocationMessage != nil || m.LiveLocationMessage != nil }, (*inbound).location},
		{"contacts", func(m *waE2E.Message) bool { return m.ContactMessage != nil || m.ContactsArrayMessage != nil }, (*inbound).contacts},
		{"poll", func(m *waE2E.Message) bool { return pollOf(m) != nil }, (*inbound).poll},
		// Changes to other messages: their own event types (inbound_changes.go).
		{"reaction", func(m *waE2E.Message) bool { return m.ReactionMessage != nil || m.EncReactionMessage != nil }, (*inbound).reaction},
		{"edit", func(m *waE2E.Message) bool {
			return m.GetProtocolMessage().GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT && m.GetProtocolMessage().GetEditedMessage() != nil
		}, (*inbound).edit},
		{"revoke", func(m *waE2E.Message) bool {
			return m.ProtocolMessage != nil && m.ProtocolMessage.Type != nil && m.ProtocolMessage.GetType() == waE2E.ProtocolMessage_REVOKE
		}, (*inbound).revoke},
		{"poll vote", func(m *waE2E.Message) bool { return m.PollUpdateMessage != nil }, (*inbound).pollVote},
	}
}

func (in *inbound) text() record {
	msg := in.message("text")
	if t := in.msg.ExtendedTextMessage; t != nil {
		msg.Text = t.GetText()
		in.context(msg, t.GetContextInfo())
	} else {
		msg.Text = in.msg.GetConversation()
	}
	return in.received(msg)
}

// mediaMessage is what every downloadable message of whatsmeow has.
type mediaMessage interface {
	whatsmeow.DownloadableMessage
	GetMimetype() string
	GetFileLength() uint64
	GetContextInfo() *waE2E.ContextInfo
}

// withMedia fills msg's media object and the download's source from m.
func (in *inbound) withMedia(msg *InboundMedia, m mediaMessage) *InboundMedia {
	t := m.GetMimetype()
	if base, _, err := mime.ParseMediaType(t); err == nil {
		t = base
	}
	msg.Type, msg.Size, msg.State = t, int64(m.GetFileLength()), mediaPending
	if h := m.GetFileSHA256(); len(h) > 0 {
		msg.SHA256 = hex.EncodeToString(h)
	}
	return msg
}

// media makes the message.received of a media kind.
func (in *inbound) media(kind string, m mediaMessage, mt whatsmeow.MediaType, caption string, md InboundMedia) record {
	msg := in.message(kind)
	msg.Caption = caption
	msg.Media = in.withMedia(&md, m)
	msg.src = in.source(kind, m, mt)
	in.context(msg, m.GetContextInfo())
	return in.received(msg)
}

func (in *inbound) image() record {
	m := in.msg.ImageMessage
	return in.media("image", m, whatsmeow.MediaImage, m.GetCaption(), InboundMedia{Width: int(m.GetWidth()), Height: int(m.GetHeight())})
}

func (in *inbound) video() record {
	m, note := in.msg.VideoMessage, false
	if m == nil {
		m, note = in.msg.PtvMessage, true
	}
	return in.media("video", m, whatsmeow.MediaVideo, m.GetCaption(), InboundMedia{Seconds: int(m.GetSeconds()),
		Width: int(m.GetWidth()), Height: int(m.GetHeight()), VideoNote: note, Animated: m.GetGifPlayback()})
}

func (in *inbound) audio() record {
	m := in.msg.AudioMessage
	return in.media("audio", m, whatsmeow.MediaAudio, "", InboundMedia{Seconds: int(m.GetSeconds()), Voice: m.GetPTT()})
}

func (in *inbound) document() record {
	m := in.msg.DocumentMessage
	name := m.GetFileName()
	if name == "" {
		name = m.GetTitle()
	}
	return in.media("document", m, whatsmeow.MediaDocument, m.GetCaption(), InboundMedia{Filename: name, Pages: int(m.GetPageCount())})
}

func (in *inbound) sticker() record {
	m := in.msg.StickerMessage
	return in.media("sticker", m, whatsmeow.MediaImage, "", InboundMedia{Width: int(m.GetWidth()), Height: int(m.GetHeight()), Animated: m.GetIsAnimated()})
}

func (in *inbound) location() record {
	msg := in.message("location")
	if l := in.msg.LocationMessage; l != nil {
		msg.Location = &Location{Latitude: l.GetDegreesLatitude(), Longitude: l.GetDegreesLongitude(), Name: l.GetName(),
			Address: l.GetAddress(), URL: l.GetURL(), Live: l.GetIsLive()}
		in.context(msg, l.GetContextInfo())
	} else {
		l := in.msg.LiveLocationMessage
		msg.Location = &Location{Latitude: l.GetDegreesLatitude(), Longitude: l.GetDegreesLongitude(), Live: true}
		msg.Caption = l.GetCaption()
		in.context(msg, l.GetContextInfo())
	}
	return in.received(msg)
}

func (in *inbound) contacts() record {
	msg := in.message("contacts")
	if c := in.msg.ContactMessage; c != nil {
		msg.Contacts = []ContactCard{card(c)}
		in.context(msg, c.GetContextInfo())
	} else {
		a := in.msg.ContactsArrayMessage
		for _, c := range a.GetContacts() {
			msg.Contacts = append(msg.Contacts, card(c))
		}
		in.context(msg, a.GetContextInfo())
	}
	return in.received(msg)
}

func card(c *waE2E.ContactMessage) ContactCard {
	return ContactCard{Name: c.GetDisplayName(), VCard: c.GetVcard(), Phones: vcardPhones(c.GetVcard())}
}

// vcardPhones lists the TEL values of a vCard (item1.TEL;waid=…:+49 …).
func vcardPhones(v string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ";")
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		if strings.EqualFold(name, "TEL") && strings.TrimSpace(value) != "" {
			out = append(out, strings.TrimSpace(value))
		}
	}
	return out
}

// pollOf is the poll creation of m in whichever version WhatsApp used.
func pollOf(m *waE2E.Message) *waE2E.PollCreationMessage {
	for _, p := range []*waE2E.PollCreationMessage{m.PollCreationMessage, m.PollCreationMessageV2, m.PollCreationMessageV3, m.PollCreationMessageV5, m.PollCreationMessageV6} {
		if p != nil {
			return p
		}
	}
	return pollOfFuture(m.GetPollCreationMessageV4().GetMessage())
}

func pollOfFuture(m *waE2E.Message) *waE2E.PollCreationMessage {
	if m == nil {
		return nil
	}
	for _, p := range []*waE2E.PollCreationMessage{m.PollCreationMessage, m.PollCreationMessageV2, m.PollCreationMessageV3, m.PollCreationMessageV5, m.PollCreationMessageV6} {
		if p != nil {
			return p
		}
	}
	return nil
}

func (in *inbound) poll() record {
	p := pollOf(in.msg)
	msg := in.message("poll")
	msg.Poll = &PollContent{Question: p.GetName(), Options: []string{}, Selectable: int(p.GetSelectableOptionsCount())}
	for _, o := range p.GetOptions() {
		msg.Poll.Options = append(msg.Poll.Options, o.GetOptionName())
	}
	in.context(msg, p.GetContextInfo())
	return in.received(msg)
}

// context adds what a message's context info says: the quote, mentions,
// forwarded.
func (in *inbound) context(msg *InboundMessage, ci *waE2E.ContextInfo) {
	if ci == nil {
		return
	}
	msg.Forwarded = ci.GetIsForwarded()
	for _, j := range ci.GetMentionedJID() {
		if jid, err := types.ParseJID(j); err == nil {
			pn, _ := in.phoneAndLID(jid)
			msg.Mentions = append(msg.Mentions, pn.ToNonAD().String())
		}
	}
	if id := ci.GetStanzaID(); id != "" {
		msg.ReplyTo = id
		q := &Quoted{ID: id}
		if p, err := types.ParseJID(ci.GetParticipant()); err == nil && !p.IsEmpty() {
			pn, lid := in.phoneAndLID(p)
			q.From, q.FromLID = pn.ToNonAD().String(), lid
		}
		if qm := ci.GetQuotedMessage(); qm != nil {
			q.Kind, q.Text = summary(unwrap(qm))
		}
		msg.Quoted = q
	}
}

// summary is the kind of m and its text or caption, for a quote.
func summary(m *waE2E.Message) (kind, text string) {
	switch {
	case m.Conversation != nil:
		return "text", m.GetConversation()
	case m.ExtendedTextMessage != nil:
		return "text", m.GetExtendedTextMessage().GetText()
	case m.ImageMessage != nil:
		return "image", m.GetImageMessage().GetCaption()
	case m.VideoMessage != nil:
		return "video", m.GetVideoMessage().GetCaption()
	case m.DocumentMessage != nil:
		return "document", m.GetDocumentMessage().GetCaption()
	case pollOf(m) != nil:
		return "poll", pollOf(m).GetName()
	}
	for _, t := range translators[:9] { // the kinds of message.received
		if t.has(m) {
			return t.name, ""
		}
	}
	return "", ""
}

// phoneAndLID is j in the phone-number form (when whatsmeow knows it) and
// its LID ("" when unknown), like the sender of an event.
func (in *inbound) phoneAndLID(j types.JID) (types.JID, string) {
	j = j.ToNonAD()
	var alt types.JID
	if in.cli != nil && in.cli.Store != nil && in.cli.Store.LIDs != nil {
		switch j.Server {
		case types.HiddenUserServer:
			alt, _ = in.cli.Store.LIDs.GetPNForLID(in.ctx, j)
		case types.DefaultUserServer:
			alt, _ = in.cli.Store.LIDs.GetLIDForPN(in.ctx, j)
		}
	}
	return phoneForm(j, alt).ToNonAD(), lidForm(j, alt)
}

// ReceivedKinds are the kinds of message.received (the OpenAPI document
// has one schema each).
var ReceivedKinds = []string{KindText, KindImage, KindVideo, KindAudio, KindDocument, KindSticker, KindLocation, KindContacts, KindPoll, "unsupported"}
