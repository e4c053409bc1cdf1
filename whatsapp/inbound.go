package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/reflect/protoreflect"

	"waappliance/events"
)

// Receiving. A whatsmeow events.Message goes through the table of
// translators (inbound_kinds.go: what becomes a message.received, one
// translator per kind; inbound_changes.go: reactions, edits, deletes and
// poll votes, each its own event type). The event is committed before
// whatsmeow acks the message (SynchronousAck), de-duplicated by (session,
// chat, sender, message id) per type; a received message's media is
// reserved in the same transaction and downloaded afterwards
// (download.go), so the ack never waits for a download.

// InboundMessage is the data of a message.received event. Kind says which
// of the kind fields are set (OpenAPI: one schema per kind).
type InboundMessage struct {
	origin
	// Kind is text, image, video, audio, document, sticker, location,
	// contacts, poll, or unsupported (WhatsAppType then names what came).
	Kind         string `json:"kind"`
	WhatsAppType string `json:"whatsapp_type,omitempty"`
	Text         string `json:"text,omitempty"`
	Caption      string `json:"caption,omitempty"`
	// Mentions are the JIDs the text or caption mentions (phone-number
	// form when known).
	Mentions []string `json:"mentions,omitempty"`
	// ReplyTo is the id of the message this one quotes; Quoted says more.
	ReplyTo   string        `json:"reply_to,omitempty"`
	Quoted    *Quoted       `json:"quoted,omitempty"`
	Forwarded bool          `json:"forwarded,omitempty"`
	ViewOnce  bool          `json:"view_once,omitempty"`
	Media     *InboundMedia `json:"media,omitempty"`
	Location  *Location     `json:"location,omitempty"`
	Contacts  []ContactCard `json:"contacts,omitempty"`
	Poll      *PollContent  `json:"poll,omitempty"`
	src       *mediaSource  // what the download needs; reserved with the event
}

// origin is who sent a message, where and when: the fields every event
// about a received message starts with.
type origin struct {
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
}

func originOf(info *types.MessageInfo) origin {
	from, chat, fromLID, chatLID := addresses(info)
	return origin{ID: info.ID, From: from.ToNonAD().String(), Chat: chat.String(), FromLID: fromLID, ChatLID: chatLID,
		FromMe: info.IsFromMe, PushName: info.PushName, Timestamp: info.Timestamp.UTC()}
}

func (o origin) key() string { return messageKey(o.Chat, o.From, o.ID) }

// inbound is one message being translated.
type inbound struct {
	ctx     context.Context
	e       *Engine
	cli     *whatsmeow.Client // nil in some tests
	session string
	m       *waEvents.Message
	msg     *waE2E.Message // unwrapped (ephemeral, view once, edits …)
	o       origin
}

// record is what a translator makes of a message: an event of typ with
// data, de-duplicated by key. ok false: protocol traffic, nothing to record.
type record struct {
	typ  string
	key  string
	data any
}

// translator is one entry of the table: has reports whether a message is
// of its kind, translate makes its record.
type translator struct {
	name      string
	has       func(*waE2E.Message) bool
	translate func(*inbound) record
}

// recordInbound commits a message's event and only then lets whatsmeow
// ack the message (SynchronousAck). false = not durable, no ack.
//
// The event is written once per (session, chat, sender, message id): a
// message WhatsApp delivers again — the appliance stopped after the commit
// and before the ack went out, or the sender's phone resent it — finds its
// event already in the log and is acked without a second one (nor a
// second media item), so WhatsApp stops redelivering it and a reader of
// the log sees it once.
func (e *Engine) recordInbound(ctx context.Context, cli *whatsmeow.Client, session string, m *waEvents.Message) bool {
	if m.Message == nil {
		return true
	}
	if m.Info.Chat.Server == types.StatusBroadcastJID.Server && m.Info.Chat.User == types.StatusBroadcastJID.User {
		if on, err := e.StatusBroadcasts(ctx); err != nil {
			e.log.Error("reading the status broadcasts setting failed; withholding the ack", "session", session, "err", err)
			return false
		} else if !on {
			return true // left out unless the status_broadcasts setting is on
		}
	}
	in := &inbound{ctx: ctx, e: e, cli: cli, session: session, m: m, msg: unwrap(m.Message), o: originOf(&m.Info)}
	rec, ok := in.translate()
	if !ok {
		return true // protocol traffic, not a user message
	}
	ev, appended, err := e.appendInbound(ctx, session, rec)
	if err != nil {
		e.log.Error("inbound message not recorded; withholding the ack so WhatsApp redelivers it", "session", session, "id", m.Info.ID, "type", rec.typ, "err", err)
		return false
	}
	if !appended {
		e.log.Info("inbound message delivered again; already in the event log, acking it without a second event", "session", session, "id", m.Info.ID, "event", ev.ID)
	}
	return true
}

// errRepeat rolls back what appendInbound wrote for a message whose
// event is in the log already.
var errRepeat = errors.New("whatsapp: inbound message already recorded")

// appendInbound appends rec's event once per key; a received message's
// media is reserved in the same transaction (and its id put into the
// event), and the downloader is woken after the commit.
func (e *Engine) appendInbound(ctx context.Context, session string, rec record) (events.Event, bool, error) {
	in, _ := rec.data.(*InboundMessage)
	if in == nil || in.src == nil || !e.hasMedia() {
		if in != nil && in.Media != nil && in.src != nil {
			in.Media.State, in.Media.Error = mediaFailed, "this appliance has no media store"
		}
		return e.cfg.Events.AppendOnce(ctx, session, rec.typ, rec.key, rec.data)
	}
	var ev events.Event
	err := e.cfg.DB.Batch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := e.reserveMediaTx(ctx, tx, session, in); err != nil {
			return err
		}
		var appended bool
		var err error
		if ev, appended, err = e.cfg.Events.AppendOnceTx(ctx, tx, session, rec.typ, rec.key, rec.data); err != nil {
			return err
		} else if !appended {
			return errRepeat
		}
		return nil
	})
	if errors.Is(err, errRepeat) {
		old, _, err := e.cfg.Events.ByKey(ctx, session, rec.typ, rec.key)
		return old, false, err
	}
	if err != nil {
		return events.Event{}, false, err
	}
	e.cfg.Events.Notify()
	e.mediaReserved(session, in)
	return ev, true, nil
}

// translate runs the table: the first translator whose kind the message
// has makes its record. A message of no known kind is "unsupported" with
// WhatsApp's name for what it holds; one that holds nothing a user sent
// (a sender key distribution, a protocol message other than an edit or a
// revoke, bare context info) is protocol traffic.
func (in *inbound) translate() (record, bool) {
	for _, t := range translators {
		if t.has(in.msg) {
			return t.translate(in), true
		}
	}
	if in.msg.ProtocolMessage != nil {
		return record{}, false
	}
	name := whatsAppType(in.msg)
	if name == "" {
		return record{}, false
	}
	msg := in.message("unsupported")
	msg.WhatsAppType = name
	return in.received(msg), true
}

// message starts a message.received of kind.
func (in *inbound) message(kind string) *InboundMessage {
	return &InboundMessage{origin: in.o, Kind: kind, ViewOnce: in.m.IsViewOnce}
}

// received is the record of a message.received.
func (in *inbound) received(msg *InboundMessage) record {
	return record{typ: events.TypeMessageReceived, key: msg.key(), data: msg}
}

// unwrap takes the content out of the wrappers whatsmeow's UnwrapRaw
// leaves or a test builds by hand.
func unwrap(msg *waE2E.Message) *waE2E.Message {
	for range 4 {
		switch {
		case msg.GetEphemeralMessage().GetMessage() != nil:
			msg = msg.GetEphemeralMessage().GetMessage()
		case msg.GetViewOnceMessage().GetMessage() != nil:
			msg = msg.GetViewOnceMessage().GetMessage()
		case msg.GetViewOnceMessageV2().GetMessage() != nil:
			msg = msg.GetViewOnceMessageV2().GetMessage()
		case msg.GetDocumentWithCaptionMessage().GetMessage() != nil:
			msg = msg.GetDocumentWithCaptionMessage().GetMessage()
		case msg.GetEditedMessage().GetMessage() != nil:
			msg = msg.GetEditedMessage().GetMessage()
		default:
			return msg
		}
	}
	return msg
}

// whatsAppType is the protobuf name of the first content field set in msg
// (e.g. eventMessage), "" when it holds only protocol fields.
func whatsAppType(msg *waE2E.Message) string {
	var name string
	msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "messageContextInfo", "senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage":
			return true
		}
		name = string(fd.Name())
		return false
	})
	return name
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
	key := messageKey(u.Chat, u.From, u.ID)
	if _, appended, err := e.cfg.Events.AppendOnce(ctx, session, events.TypeMessageUndecryptable, key, u); err != nil {
		e.log.Error("undecryptable message not recorded", "session", session, "id", m.Info.ID, "err", err)
		return false
	} else if appended {
		e.log.Info("message not decryptable yet; asked for it again", "session", session, "id", m.Info.ID, "reason", u.Reason)
	}
	return true
}

// messageKey identifies an inbound message for the event log's
// de-duplication: WhatsApp's id is unique per sender, and a redelivery
// carries the same chat, sender and id. JIDs hold no spaces, so the key
// cannot be read two ways.
func messageKey(chat, from, id string) string { return chat + " " + from + " " + id }

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

// translate is the message.received (or other event) of m without a
// client: what the tests of addresses look at.
func translate(m *waEvents.Message) (InboundMessage, bool) {
	if m.Message == nil {
		return InboundMessage{}, false
	}
	in := &inbound{ctx: context.Background(), m: m, msg: unwrap(m.Message), o: originOf(&m.Info)}
	rec, ok := in.translate()
	if !ok {
		return InboundMessage{}, false
	}
	if msg, ok := rec.data.(*InboundMessage); ok {
		return *msg, true
	}
	return InboundMessage{origin: origin{ID: in.o.ID, From: in.o.From, Chat: in.o.Chat}, Kind: rec.typ}, true
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
