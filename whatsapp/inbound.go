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
	ID   string `json:"id"`
	From string `json:"from"`
	Chat string `json:"chat"`
	// FromLID and ChatLID are the LIDs of From and Chat when WhatsApp
	// addressed them by LID or whatsmeow knows it (From and Chat are then
	// the phone-number JIDs, when known).
	FromLID   string    `json:"from_lid,omitempty"`
	ChatLID   string    `json:"chat_lid,omitempty"`
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

// Undecryptable is the data of a message.undecryptable event: a message
// that arrived but could not be decrypted yet. The session has asked the
// sender (and our own phone) for it again; when it comes, it is a
// message.received with the same id.
type Undecryptable struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`
	Chat      string    `json:"chat"`
	FromLID   string    `json:"from_lid,omitempty"`
	ChatLID   string    `json:"chat_lid,omitempty"`
	FromMe    bool      `json:"from_me"`
	Timestamp time.Time `json:"timestamp"`
	// IsUnavailable: no ciphertext for this device was sent at all (as
	// opposed to one that failed to decrypt).
	IsUnavailable bool `json:"is_unavailable"`
	// Reason is decrypt_failed, unavailable, or unavailable_<type> (e.g.
	// unavailable_view_once, which never follows).
	Reason string `json:"reason"`
}

// recordUndecryptable commits a message.undecryptable event, once per
// message (whatsmeow may report it again while it retries).
func (e *Engine) recordUndecryptable(ctx context.Context, session string, m *waEvents.UndecryptableMessage) bool {
	from, chat, fromLID, chatLID := addresses(&m.Info)
	u := Undecryptable{ID: m.Info.ID, From: from.ToNonAD().String(), Chat: chat.String(), FromLID: fromLID, ChatLID: chatLID,
		FromMe: m.Info.IsFromMe, Timestamp: m.Info.Timestamp.UTC(), IsUnavailable: m.IsUnavailable, Reason: "decrypt_failed"}
	if m.IsUnavailable {
		u.Reason = "unavailable"
		if m.UnavailableType != "" {
			u.Reason += "_" + string(m.UnavailableType)
		}
	}
	key := inboundKey(InboundMessage{ID: u.ID, From: u.From, Chat: u.Chat})
	if _, appended, err := e.cfg.Events.AppendOnce(ctx, session, events.TypeMessageUndecryptable, key, u); err != nil {
		e.log.Error("undecryptable message not recorded", "session", session, "id", m.Info.ID, "err", err)
		return false
	} else if appended {
		e.log.Info("message not decryptable yet; asked for it again", "session", session, "id", m.Info.ID, "reason", u.Reason)
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
// phone resends on request, or a contact's without sender_pn. And the LID
// beside a phone-addressed one, when the store knows it. cli may be nil.
func fillPhoneNumbers(ctx context.Context, cli *whatsmeow.Client, info *types.MessageInfo) {
	if cli == nil || cli.Store == nil || cli.Store.LIDs == nil || info.IsGroup {
		return
	}
	fill := func(j types.JID, alt *types.JID) {
		if !alt.IsEmpty() {
			return
		}
		switch j.Server {
		case types.HiddenUserServer:
			if pn, err := cli.Store.LIDs.GetPNForLID(ctx, j.ToNonAD()); err == nil && !pn.IsEmpty() {
				*alt = pn
			}
		case types.DefaultUserServer:
			if lid, err := cli.Store.LIDs.GetLIDForPN(ctx, j.ToNonAD()); err == nil && !lid.IsEmpty() {
				*alt = lid
			}
		}
	}
	if info.IsFromMe {
		fill(info.Chat, &info.RecipientAlt)
	} else {
		fill(info.Sender, &info.SenderAlt)
	}
}

// lidForm is the LID (without device) of j or of its alt form, or "".
func lidForm(j, alt types.JID) string {
	switch {
	case j.Server == types.HiddenUserServer:
		return j.ToNonAD().String()
	case alt.Server == types.HiddenUserServer && alt.User != "":
		return alt.ToNonAD().String()
	}
	return ""
}

// addresses is the phone-number form (when known) and the LID (when
// known) of a message's sender and chat.
func addresses(info *types.MessageInfo) (from, chat types.JID, fromLID, chatLID string) {
	from, chat = phoneForm(info.Sender, info.SenderAlt), info.Chat
	fromLID = lidForm(info.Sender, info.SenderAlt)
	if !info.IsGroup {
		chatAlt := info.SenderAlt
		if info.IsFromMe {
			chatAlt = info.RecipientAlt
		}
		chat = phoneForm(chat, chatAlt)
		chatLID = lidForm(info.Chat, chatAlt)
	} else if info.Chat.Server == types.HiddenUserServer {
		chatLID = info.Chat.String()
	}
	return from, chat, fromLID, chatLID
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
	from, chat, fromLID, chatLID := addresses(&m.Info)
	in := InboundMessage{ID: m.Info.ID, From: from.ToNonAD().String(), Chat: chat.String(), FromLID: fromLID, ChatLID: chatLID,
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
