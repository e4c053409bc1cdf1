package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/events"
)

// InboundMessage is the data of a message.received event.
type InboundMessage struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`
	Chat      string    `json:"chat"`
	FromMe    bool      `json:"from_me"`
	PushName  string    `json:"push_name,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// Kind is text, reaction, or a media kind (image, video, audio,
	// document, sticker, location, contact) or "unsupported".
	Kind     string    `json:"kind"`
	Text     string    `json:"text,omitempty"`
	ReplyTo  string    `json:"reply_to,omitempty"`
	Reaction *Reaction `json:"reaction,omitempty"`
	Caption  string    `json:"caption,omitempty"`
	Mimetype string    `json:"mimetype,omitempty"`
}

// Reaction is an emoji reaction to a message.
type Reaction struct {
	To    string `json:"to"`
	Emoji string `json:"emoji"`
}

// recordInbound commits a message.received event and only then lets
// whatsmeow ack the message (SynchronousAck). false = not durable, no ack.
//
// The event is written once per (session, chat, sender, message id): a
// message WhatsApp delivers again — the appliance stopped after the commit
// and before the ack went out, or the sender's phone resent it — finds its
// event already in the log and is acked without a second one, so WhatsApp
// stops redelivering it and a reader of the log sees it once.
func (e *Engine) recordInbound(ctx context.Context, session string, m *waEvents.Message) bool {
	in, ok := translate(m)
	if !ok {
		return true // protocol traffic, not a user message
	}
	ev, appended, err := e.cfg.Events.AppendOnce(ctx, session, events.TypeMessageReceived, inboundKey(in), in)
	if err != nil {
		e.log.Error("inbound message not recorded; withholding the ack so WhatsApp redelivers it", "session", session, "id", m.Info.ID, "err", err)
		return false
	}
	if !appended {
		e.log.Info("inbound message delivered again; already in the event log, acking it without a second event", "session", session, "id", m.Info.ID, "event", ev.ID)
	}
	return true
}

// inboundKey identifies an inbound message for the event log's
// de-duplication: WhatsApp's id is unique per sender, and a redelivery
// carries the same chat, sender and id. JIDs hold no spaces, so the key
// cannot be read two ways.
func inboundKey(in InboundMessage) string {
	return in.Chat + " " + in.From + " " + in.ID
}

// fillPhoneNumbers sets the phone number beside a LID-addressed sender
// (SenderAlt, RecipientAlt for our own other devices' sends) from
// whatsmeow's LID store when the message did not carry it: a message our
// phone resends on request, or a contact's without sender_pn. cli may be nil.
func fillPhoneNumbers(ctx context.Context, cli *whatsmeow.Client, m *waEvents.Message) {
	if cli == nil || cli.Store == nil || cli.Store.LIDs == nil || m.Info.IsGroup {
		return
	}
	fill := func(lid types.JID, alt *types.JID) {
		if lid.Server != types.HiddenUserServer || !alt.IsEmpty() {
			return
		}
		if pn, err := cli.Store.LIDs.GetPNForLID(ctx, lid.ToNonAD()); err == nil && !pn.IsEmpty() {
			*alt = pn
		}
	}
	if m.Info.IsFromMe {
		fill(m.Info.Chat, &m.Info.RecipientAlt)
	} else {
		fill(m.Info.Sender, &m.Info.SenderAlt)
	}
}

// phoneForm is the phone-number JID of j when j is a LID and whatsmeow
// knows the number (alt: the message's SenderAlt or RecipientAlt), else j.
// WhatsApp addresses most one-to-one chats by LID now; a user of the API
// knows the phone number, and a message delivered again under the other
// address form keeps its de-duplication key.
func phoneForm(j, alt types.JID) types.JID {
	if j.Server == types.HiddenUserServer && alt.Server == types.DefaultUserServer && alt.User != "" {
		alt.Device = j.Device
		return alt
	}
	return j
}

func translate(m *waEvents.Message) (InboundMessage, bool) {
	msg := m.Message
	if msg == nil {
		return InboundMessage{}, false
	}
	if inner := msg.GetEphemeralMessage().GetMessage(); inner != nil {
		msg = inner
	}
	if inner := msg.GetViewOnceMessage().GetMessage(); inner != nil {
		msg = inner
	}
	from, chat := phoneForm(m.Info.Sender, m.Info.SenderAlt), m.Info.Chat
	if !m.Info.IsGroup {
		chatAlt := m.Info.SenderAlt
		if m.Info.IsFromMe {
			chatAlt = m.Info.RecipientAlt
		}
		chat = phoneForm(chat, chatAlt)
	}
	in := InboundMessage{ID: m.Info.ID, From: from.ToNonAD().String(), Chat: chat.String(),
		FromMe: m.Info.IsFromMe, PushName: m.Info.PushName, Timestamp: m.Info.Timestamp.UTC()}
	var ctxInfo *waE2E.ContextInfo
	switch {
	case msg.Conversation != nil:
		in.Kind, in.Text = "text", msg.GetConversation()
	case msg.ExtendedTextMessage != nil:
		in.Kind, in.Text = "text", msg.GetExtendedTextMessage().GetText()
		ctxInfo = msg.GetExtendedTextMessage().GetContextInfo()
	case msg.ReactionMessage != nil:
		r := msg.GetReactionMessage()
		in.Kind, in.Reaction = "reaction", &Reaction{To: r.GetKey().GetID(), Emoji: r.GetText()}
	case msg.ImageMessage != nil:
		in.Kind, in.Caption, in.Mimetype = "image", msg.GetImageMessage().GetCaption(), msg.GetImageMessage().GetMimetype()
		ctxInfo = msg.GetImageMessage().GetContextInfo()
	case msg.VideoMessage != nil:
		in.Kind, in.Caption, in.Mimetype = "video", msg.GetVideoMessage().GetCaption(), msg.GetVideoMessage().GetMimetype()
	case msg.AudioMessage != nil:
		in.Kind, in.Mimetype = "audio", msg.GetAudioMessage().GetMimetype()
	case msg.DocumentMessage != nil:
		in.Kind, in.Caption, in.Mimetype = "document", msg.GetDocumentMessage().GetCaption(), msg.GetDocumentMessage().GetMimetype()
	case msg.StickerMessage != nil:
		in.Kind, in.Mimetype = "sticker", msg.GetStickerMessage().GetMimetype()
	case msg.LocationMessage != nil:
		in.Kind = "location"
	case msg.ContactMessage != nil:
		in.Kind = "contact"
	case msg.ProtocolMessage != nil, msg.SenderKeyDistributionMessage != nil && msg.Conversation == nil,
		m.Info.Chat.Server == types.BroadcastServer:
		return in, false
	default:
		in.Kind = "unsupported"
	}
	if ctxInfo != nil && ctxInfo.GetStanzaID() != "" {
		in.ReplyTo = ctxInfo.GetStanzaID()
	}
	return in, true
}

// recordReceipt moves our sent messages to delivered or read. false means
// a status could not be committed: whatsmeow then withholds the ack
// (SynchronousAck) and WhatsApp redelivers the receipt.
func (e *Engine) recordReceipt(ctx context.Context, session string, r *waEvents.Receipt) bool {
	var status string
	switch r.Type {
	case types.ReceiptTypeDelivered:
		status = StatusDelivered
	case types.ReceiptTypeRead, types.ReceiptTypePlayed:
		status = StatusRead
	default:
		return true // read-self, retry, server-error … are not about our sends
	}
	if r.IsFromMe {
		return true // our own other device's receipt for an incoming message
	}
	ok := true
	for _, id := range r.MessageIDs {
		if err := e.setStatus(ctx, string(id), status, "", time.Time{}); err != nil {
			e.log.Error("receipt not recorded; withholding the ack so WhatsApp redelivers it", "session", session, "id", id, "err", err)
			ok = false
		}
	}
	return ok
}
