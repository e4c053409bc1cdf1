package wasim

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	signalsession "go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

var pb = store.SignalProtobufSerializer

// ReceiptPolicy says how a contact acknowledges what it receives: a
// delivered receipt at once (unless NoDelivered), a read receipt after
// ReadAfter (never when negative).
type ReceiptPolicy struct {
	NoDelivered bool
	ReadAfter   time.Duration
}

// Contact is a simulated WhatsApp user with one device (its phone) that
// decrypts what clients send it and can send messages back.
type Contact struct {
	srv  *Server
	acc  *account
	Name string

	mu        sync.Mutex
	policy    ReceiptPolicy
	byPhone   bool // addresses the account by phone number (SetAddressing)
	noRetries bool // ignores retry receipts (IgnoreRetries)
	inbox     []Received
	seenIDs   map[string]bool
	// deliveries counts every decrypted copy of each id, retries included.
	deliveries map[string]int
	// sent keeps the latest messages the contact sent (sentOrder bounds it
	// to maxKeptForRetry), so that a retry receipt can be answered.
	sent      map[string]sentMessage
	sentOrder []string
	// polls are the polls the contact knows the secret of, by id.
	polls map[string]*poll
	// reads and chatStates are what the client told the contact (chat.go).
	reads, chatStates []string
	// sums are the checked hashes of received media (InboxOf).
	sums map[string]mediaSum
}

// maxKeptForRetry is how many sent messages a contact can still resend.
const maxKeptForRetry = 1000

type sentMessage struct {
	plaintext []byte
	ts        int64
}

// Deliveries is how many times the contact received message id (a second
// send of the same id counts; Inbox lists it once).
func (ct *Contact) Deliveries(id string) int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.deliveries[id]
}

// Received is one message a contact decrypted.
type Received struct {
	ID      string
	From    types.JID // sender device
	At      time.Time
	Message *waE2E.Message
	Type    string // pkmsg or msg
}

// Text returns the message's text (conversation or extended text).
func (r Received) Text() string {
	if t := r.Message.GetConversation(); t != "" {
		return t
	}
	return r.Message.GetExtendedTextMessage().GetText()
}

// Addressing is how a contact addresses the accounts it writes to.
type Addressing int

const (
	// AddressingLID, the default, is WhatsApp's today: the contact's
	// messages come from its LID with its phone number beside it
	// (sender_pn), so a client decrypts them on its LID session.
	AddressingLID Addressing = iota
	// AddressingPN is the older form: from the phone number, with the LID
	// beside it (sender_lid).
	AddressingPN
)

// SetAddressing sets the address form of the contact's messages (and of
// receipts for messages it was sent by phone number; receipts otherwise
// answer in the form the sender used).
func (ct *Contact) SetAddressing(a Addressing) {
	ct.mu.Lock()
	ct.byPhone = a == AddressingPN
	ct.mu.Unlock()
	ct.srv.save()
}

// IgnoreRetries makes the contact's phone ignore retry receipts (true), as
// one that is offline or no longer has the message: a client that cannot
// decrypt a message then gets it only from its own phone (a placeholder
// resend request, which wasim's phone answers).
func (ct *Contact) IgnoreRetries(ignore bool) {
	ct.mu.Lock()
	ct.noRetries = ignore
	ct.mu.Unlock()
}

// fromAttrs are the from attribute of a node the account sends in the
// form of like (LID or phone number), and the other form beside it
// (sender_pn or sender_lid).
func (a *account) fromAttrs(like types.JID) waBinary.Attrs {
	if like.Server == types.HiddenUserServer {
		return waBinary.Attrs{"from": a.lid, "sender_pn": a.jid}
	}
	return waBinary.Attrs{"from": a.jid, "sender_lid": a.lid}
}

// messageAttrs are the attributes of a message the contact sends.
func (ct *Contact) messageAttrs(id string, ts int64, pt []byte) waBinary.Attrs {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.messageAttrsLocked(id, ts, pt)
}

// messageAttrsLocked is messageAttrs with ct.mu held.
// The node's type and edit attributes follow the message (pt, its
// protobuf), as WhatsApp's do: media, poll, reaction or text; edit 1 for
// an edit, 7 for a revoke by its sender.
func (ct *Contact) messageAttrsLocked(id string, ts int64, pt []byte) waBinary.Attrs {
	like, name := ct.acc.lid, ct.Name
	if ct.byPhone {
		like = ct.acc.jid
	}
	attrs := ct.acc.fromAttrs(like)
	var msg waE2E.Message
	proto.Unmarshal(pt, &msg)
	attrs["id"], attrs["t"], attrs["type"], attrs["notify"] = id, ts, nodeType(&msg), name
	if e := editAttr(&msg); e != "" {
		attrs["edit"] = e
	}
	return attrs
}

// Contact returns the simulated contact of number, creating it on first use.
func (s *Server) Contact(number string) (*Contact, error) {
	a, err := s.account(context.Background(), number)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.contact != nil {
		return a.contact, nil
	}
	a.contact = &Contact{srv: s, acc: a, Name: "Contact " + a.phone, policy: ReceiptPolicy{ReadAfter: 500 * time.Millisecond}, seenIDs: map[string]bool{}, deliveries: map[string]int{}, sent: map[string]sentMessage{}}
	go s.save()
	return a.contact, nil
}

// SetName sets the push name the contact's messages carry.
func (ct *Contact) SetName(name string) {
	ct.mu.Lock()
	ct.Name = name
	ct.mu.Unlock()
	ct.srv.save()
}

// HasContact reports whether number is a simulated contact.
func (s *Server) HasContact(number string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[digits(number)]
	return ok && a.contact != nil
}

// JID is the contact's user JID.
func (ct *Contact) JID() types.JID { return ct.acc.jid }

// LID is the contact's LID.
func (ct *Contact) LID() types.JID { return ct.acc.lid }

// SetReceipts changes how the contact acknowledges messages.
func (ct *Contact) SetReceipts(p ReceiptPolicy) {
	ct.mu.Lock()
	ct.policy = p
	ct.mu.Unlock()
	ct.srv.save()
}

// Inbox returns what the contact received, oldest first. A message resent
// with the same id (a retry) is listed once.
func (ct *Contact) Inbox() []Received {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return append([]Received(nil), ct.inbox...)
}

// receive decrypts one enc node addressed to the contact's phone.
func (ct *Contact) receive(ctx context.Context, from types.JID, id string, enc waBinary.Node) error {
	ct.mu.Lock() // Signal state is not safe for concurrent use per device
	defer ct.mu.Unlock()
	content, _ := enc.Content.([]byte)
	addr := from.SignalAddress()
	builder := signalsession.NewBuilderFromSignal(ct.acc.primary, addr, pb)
	cipher := signalsession.NewCipher(builder, addr)
	var pt []byte
	var err error
	typ := attr(&enc, "type")
	switch typ {
	case "pkmsg":
		var m *protocol.PreKeySignalMessage
		if m, err = protocol.NewPreKeySignalMessageFromBytes(content, pb.PreKeySignalMessage, pb.SignalMessage); err == nil {
			pt, err = cipher.DecryptMessage(ctx, m)
		}
	case "msg":
		var m *protocol.SignalMessage
		if m, err = protocol.NewSignalMessageFromBytes(content, pb.SignalMessage); err == nil {
			pt, err = cipher.Decrypt(ctx, m)
		}
	default:
		err = fmt.Errorf("unsupported enc type %q", typ)
	}
	if err != nil {
		return fmt.Errorf("wasim: contact %s decrypting %s from %s: %w", ct.acc.phone, typ, from, err)
	}
	if len(pt) == 0 || int(pt[len(pt)-1]) > len(pt) {
		return errors.New("wasim: bad padding")
	}
	pt = pt[:len(pt)-int(pt[len(pt)-1])]
	var msg waE2E.Message
	if err := proto.Unmarshal(pt, &msg); err != nil {
		return fmt.Errorf("wasim: message protobuf: %w", err)
	}
	if !inboxWorthy(&msg) {
		return nil
	}
	ct.deliveries[id]++
	if ct.seenIDs[id] {
		return nil
	}
	ct.seenIDs[id] = true
	ct.notePollLocked(id, &msg)
	r := Received{ID: id, From: from, At: time.Now(), Message: &msg, Type: typ}
	ct.inbox = append(ct.inbox, r)
	ct.srv.emit(Event{Kind: EventContactReceived, Device: from, Contact: ct.acc.jid, MessageID: id, Message: &msg})
	return nil
}

// inboxWorthy reports whether a decrypted message is one a user sees: not
// a protocol message other than a revoke or an edit, and not a bare
// sender key distribution.
func inboxWorthy(msg *waE2E.Message) bool {
	if pm := msg.GetProtocolMessage(); pm != nil {
		t := pm.GetType()
		return t == waE2E.ProtocolMessage_REVOKE || t == waE2E.ProtocolMessage_MESSAGE_EDIT
	}
	rest := proto.Clone(msg).(*waE2E.Message)
	rest.SenderKeyDistributionMessage, rest.MessageContextInfo = nil, nil
	return proto.Size(rest) > 0
}

// Send makes the contact send text to every device of the account to.
// It returns the message id. Devices that are offline get it when they
// next log in.
func (ct *Contact) Send(ctx context.Context, to types.JID, text string) (string, error) {
	return ct.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String(text)})
}

// Reply sends text quoting the message id (of to's account).
func (ct *Contact) Reply(ctx context.Context, to types.JID, quotedID, text string) (string, error) {
	return ct.SendMessage(ctx, to, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text),
		ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String(quotedID), Participant: proto.String(to.ToNonAD().String())}}})
}

// SendMessage encrypts msg for each linked device of the account to.
// It returns the message id.
func (ct *Contact) SendMessage(ctx context.Context, to types.JID, msg *waE2E.Message) (string, error) {
	pt, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	id := newMessageID()
	ts := time.Now().Unix()
	if err := ct.sendTo(ctx, to, id, pt, ts, func() { ct.remember(id, pt, ts) }); err != nil {
		return "", err
	}
	ct.srv.emit(Event{Kind: EventContactSent, Contact: ct.acc.jid, MessageID: id, Message: msg})
	return id, nil
}

// Resend sends message id, which the contact sent to the account to
// before, to every linked device of to once more, acked or not: the same id
// and timestamp, encrypted anew on the current Signal session (a fresh
// message counter and ciphertext), as a phone resends. A client can tell
// the copy from the first only by its id — the case of WhatsApp delivering
// a message again after the client's ack was lost. Devices that are offline
// get it when they next log in.
func (ct *Contact) Resend(ctx context.Context, to types.JID, id string) error {
	ct.mu.Lock()
	m, ok := ct.sent[id]
	ct.mu.Unlock()
	if !ok {
		return fmt.Errorf("wasim: resend of %s, which contact %s did not send or no longer has", id, ct.acc.phone)
	}
	if err := ct.sendTo(ctx, to, id, m.plaintext, m.ts, nil); err != nil {
		return err
	}
	ct.srv.emit(Event{Kind: EventContactResent, Contact: ct.acc.jid, MessageID: id})
	return nil
}

// sendTo encrypts pt for each linked device of the account to and delivers
// it as message id with timestamp ts; before sends, when set, runs once the
// devices are known and before the first delivery.
func (ct *Contact) sendTo(ctx context.Context, to types.JID, id string, pt []byte, ts int64, before func()) error {
	a, ok := ct.srv.lookupJID(to)
	if !ok {
		return fmt.Errorf("%w: %s", errUnknown, to.User)
	}
	a.mu.Lock()
	var comps []*companion
	for _, c := range a.companions {
		if !c.removed {
			comps = append(comps, c)
		}
	}
	a.mu.Unlock()
	if len(comps) == 0 {
		return fmt.Errorf("wasim: %s has no linked device", to.User)
	}
	if before != nil {
		before()
	}
	for _, comp := range comps {
		dev := a.jid
		dev.Device = comp.id
		enc, err := ct.encryptFor(ctx, dev, comp, pt)
		if err != nil {
			return err
		}
		node := waBinary.Node{Tag: "message", Attrs: ct.messageAttrs(id, ts, pt), Content: []waBinary.Node{enc}}
		ct.srv.deliver(dev, node)
	}
	return nil
}

func (ct *Contact) encryptFor(ctx context.Context, dev types.JID, comp *companion, pt []byte) (waBinary.Node, error) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	addr := dev.SignalAddress()
	builder := signalsession.NewBuilderFromSignal(ct.acc.primary, addr, pb)
	has, err := ct.acc.primary.ContainsSession(ctx, addr)
	if err != nil {
		return waBinary.Node{}, err
	}
	if !has {
		if err := builder.ProcessBundle(ctx, ct.srv.takeBundle(dev, comp)); err != nil {
			return waBinary.Node{}, fmt.Errorf("wasim: prekey bundle of %s: %w", dev, err)
		}
	}
	return ct.encryptLocked(ctx, builder, addr, pt)
}

// encryptLocked encrypts with the session the builder stands for; ct.mu is held.
func (ct *Contact) encryptLocked(ctx context.Context, builder *signalsession.Builder, addr *protocol.SignalAddress, pt []byte) (waBinary.Node, error) {
	cipher := signalsession.NewCipher(builder, addr)
	ct2, err := cipher.Encrypt(ctx, pad(pt))
	if err != nil {
		return waBinary.Node{}, err
	}
	typ := "msg"
	if ct2.Type() == protocol.PREKEY_TYPE {
		typ = "pkmsg"
	}
	return waBinary.Node{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": typ}, Content: ct2.Serialize()}, nil
}

// takeBundle is the device's prekey bundle as a key fetch returns it: the
// signed prekey and the next one-time prekey, which is never handed out twice.
func (s *Server) takeBundle(dev types.JID, comp *companion) *prekey.Bundle {
	comp.mu().Lock()
	var pk *preKeyRec
	if len(comp.prekeys) > 0 {
		pk = &comp.prekeys[0]
		comp.prekeys = comp.prekeys[1:]
	}
	reg, skID, skPub, skSig, ident := comp.regID, comp.skeyID, comp.skeyPub, comp.skeySig, comp.identity
	comp.mu().Unlock()
	if pk == nil {
		return prekey.NewBundle(reg, uint32(dev.Device), optional.NewEmptyUint32(), skID,
			nil, ecc.NewDjbECPublicKey(skPub), skSig, identity.NewKey(ecc.NewDjbECPublicKey(ident)))
	}
	go s.save()
	return prekey.NewBundle(reg, uint32(dev.Device), optional.NewOptionalUint32(pk.id), skID,
		ecc.NewDjbECPublicKey(pk.pub), ecc.NewDjbECPublicKey(skPub), skSig, identity.NewKey(ecc.NewDjbECPublicKey(ident)))
}

func (ct *Contact) remember(id string, pt []byte, ts int64) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if _, ok := ct.sent[id]; !ok {
		ct.sentOrder = append(ct.sentOrder, id)
	}
	ct.sent[id] = sentMessage{plaintext: pt, ts: ts}
	for len(ct.sentOrder) > maxKeptForRetry {
		delete(ct.sent, ct.sentOrder[0])
		ct.sentOrder = ct.sentOrder[1:]
	}
}

// retry answers a retry receipt from a device that could not decrypt message
// id, as a phone does: it encrypts the message again for that device alone
// and sends it with the retry count. The session is built anew from the keys
// the receipt carries, or from a fresh bundle when it has none and the count
// is 2 or more (or there is no session); a first retry reuses the session.
func (ct *Contact) retry(ctx context.Context, dev types.JID, id string, count int, receipt *waBinary.Node) error {
	a, ok := ct.srv.lookupJID(dev)
	if !ok {
		return fmt.Errorf("%w: %s", errUnknown, dev.User)
	}
	a.mu.Lock()
	comp := a.companions[dev.Device]
	a.mu.Unlock()
	if comp == nil || comp.removed {
		return fmt.Errorf("wasim: retry from unknown device %s", dev)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.noRetries {
		return nil
	}
	m, ok := ct.sent[id]
	if !ok {
		return fmt.Errorf("wasim: retry for %s, which contact %s no longer has", id, ct.acc.phone)
	}
	addr := dev.SignalAddress()
	builder := signalsession.NewBuilderFromSignal(ct.acc.primary, addr, pb)
	has, err := ct.acc.primary.ContainsSession(ctx, addr)
	if err != nil {
		return err
	}
	var b *prekey.Bundle
	if keys, ok := receipt.GetOptionalChildByTag("keys"); ok {
		if b, err = retryBundle(dev, receipt, keys); err != nil {
			return err
		}
	} else if !has || count >= 2 {
		b = ct.srv.takeBundle(dev, comp)
	}
	if b != nil {
		if err := builder.ProcessBundle(ctx, b); err != nil {
			return fmt.Errorf("wasim: retry bundle of %s: %w", dev, err)
		}
	}
	enc, err := ct.encryptLocked(ctx, builder, addr, m.plaintext)
	if err != nil {
		return err
	}
	enc.Attrs["count"] = strconv.Itoa(count)
	ct.srv.deliver(dev, waBinary.Node{Tag: "message", Attrs: ct.messageAttrsLocked(id, m.ts, m.plaintext), Content: []waBinary.Node{enc}})
	return nil
}

// retryBundle reads the prekey bundle a retry receipt carries.
func retryBundle(dev types.JID, receipt *waBinary.Node, keys waBinary.Node) (*prekey.Bundle, error) {
	reg, _ := receipt.GetChildByTag("registration").Content.([]byte)
	ident, _ := keys.GetChildByTag("identity").Content.([]byte)
	sk := keys.GetChildByTag("skey")
	skID, _ := sk.GetChildByTag("id").Content.([]byte)
	skPub, _ := sk.GetChildByTag("value").Content.([]byte)
	skSig, _ := sk.GetChildByTag("signature").Content.([]byte)
	if len(reg) != 4 || len(ident) != 32 || len(skPub) != 32 || len(skSig) != 64 {
		return nil, fmt.Errorf("wasim: malformed keys in retry receipt from %s", dev)
	}
	idKey := identity.NewKey(ecc.NewDjbECPublicKey([32]byte(ident)))
	if pk, ok := keys.GetOptionalChildByTag("key"); ok {
		pkID, _ := pk.GetChildByTag("id").Content.([]byte)
		pkPub, _ := pk.GetChildByTag("value").Content.([]byte)
		if len(pkPub) != 32 {
			return nil, fmt.Errorf("wasim: malformed prekey in retry receipt from %s", dev)
		}
		return prekey.NewBundle(keyID(reg), uint32(dev.Device), optional.NewOptionalUint32(keyID(pkID)), keyID(skID),
			ecc.NewDjbECPublicKey([32]byte(pkPub)), ecc.NewDjbECPublicKey([32]byte(skPub)), [64]byte(skSig), idKey), nil
	}
	return prekey.NewBundle(keyID(reg), uint32(dev.Device), optional.NewEmptyUint32(), keyID(skID),
		nil, ecc.NewDjbECPublicKey([32]byte(skPub)), [64]byte(skSig), idKey), nil
}

func pad(p []byte) []byte {
	var b [1]byte
	rand.Read(b[:])
	n := b[0] & 0xf
	if n == 0 {
		n = 0xf
	}
	return append(append([]byte{}, p...), bytes.Repeat([]byte{n}, int(n))...)
}

func newMessageID() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("3EB0%X", b)
}

// RequestRetry makes the contact's phone ask for message id again, as a
// phone that could not decrypt it does: a retry receipt (count 1, with its
// registration id) goes to the client device that sent the message, which
// should encrypt the original again and send it with a count (see
// Deliveries; Inbox still lists it once). It is how a test checks that a
// client answers a retry receipt after a restart has emptied its memory.
func (ct *Contact) RequestRetry(ctx context.Context, id string) error {
	ct.mu.Lock()
	var from types.JID
	for _, r := range ct.inbox {
		if r.ID == id {
			from = r.From
		}
	}
	like := ct.acc.lid
	if ct.byPhone {
		like = ct.acc.jid
	}
	ct.mu.Unlock()
	if from.IsEmpty() {
		return fmt.Errorf("wasim: retry of %s, which contact %s did not receive", id, ct.acc.phone)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	attrs := ct.acc.fromAttrs(like)
	attrs["id"], attrs["type"], attrs["t"] = id, "retry", now
	ct.srv.deliver(from, waBinary.Node{Tag: "receipt", Attrs: attrs, Content: []waBinary.Node{
		{Tag: "retry", Attrs: waBinary.Attrs{"count": "1", "id": id, "t": now, "v": "1"}},
		{Tag: "registration", Content: u32b(ct.acc.primary.RegistrationID)},
	}})
	ct.srv.emit(Event{Kind: EventContactAskedRetry, Device: from, Contact: ct.acc.jid, MessageID: id})
	return nil
}

// SendUndecryptable sends text as SendMessage does, except that the first
// copy every device gets is ciphertext no session opens — the lost first
// message of a new contact, whose client sees it undecryptable. Only the
// client's re-request makes it arrive: its retry receipt, which the
// contact answers with the message properly encrypted under the same id
// and timestamp (see retry).
func (ct *Contact) SendUndecryptable(ctx context.Context, to types.JID, text string) (string, error) {
	pt, err := proto.Marshal(&waE2E.Message{Conversation: proto.String(text)})
	if err != nil {
		return "", err
	}
	a, ok := ct.srv.lookupJID(to)
	if !ok {
		return "", fmt.Errorf("%w: %s", errUnknown, to.User)
	}
	devs := a.linkedDevices()
	if len(devs) == 0 {
		return "", fmt.Errorf("wasim: %s has no linked device", to.User)
	}
	id, ts := newMessageID(), time.Now().Unix()
	ct.remember(id, pt, ts)
	for _, dev := range devs {
		// A well-formed Signal message on a ratchet and MAC key of no
		// session: it fails in decryption, as a lost session does.
		bogus, macKey, body := keys.NewKeyPair(), make([]byte, 32), make([]byte, 48)
		rand.Read(macKey)
		rand.Read(body)
		a.mu.Lock()
		peer := a.companions[dev.Device].identity
		a.mu.Unlock()
		sm, err := protocol.NewSignalMessage(protocol.CurrentVersion, 0, 0, macKey, ecc.NewDjbECPublicKey(*bogus.Pub), body,
			identity.NewKey(ecc.NewDjbECPublicKey(*ct.acc.primary.IdentityKey.Pub)), identity.NewKey(ecc.NewDjbECPublicKey(peer)), pb.SignalMessage)
		if err != nil {
			return "", err
		}
		enc := waBinary.Node{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "msg"}, Content: sm.Serialize()}
		ct.srv.deliver(dev, waBinary.Node{Tag: "message", Attrs: ct.messageAttrs(id, ts, pt), Content: []waBinary.Node{enc}})
	}
	ct.srv.emit(Event{Kind: EventContactSent, Contact: ct.acc.jid, MessageID: id, Message: &waE2E.Message{Conversation: proto.String(text)}})
	return id, nil
}

// linkedDevices are the device JIDs of the account's linked companions.
func (a *account) linkedDevices() []types.JID {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []types.JID
	for id, c := range a.companions {
		if !c.removed {
			d := a.jid
			d.Device = id
			out = append(out, d)
		}
	}
	return out
}
