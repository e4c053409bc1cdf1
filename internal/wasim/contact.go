package wasim

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	signalsession "go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
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

	mu      sync.Mutex
	policy  ReceiptPolicy
	inbox   []Received
	seenIDs map[string]bool
	// deliveries counts every decrypted copy of each id, retries included.
	deliveries map[string]int
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
	a.contact = &Contact{srv: s, acc: a, Name: "Contact " + a.phone, policy: ReceiptPolicy{ReadAfter: 500 * time.Millisecond}, seenIDs: map[string]bool{}, deliveries: map[string]int{}}
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
	if msg.GetProtocolMessage() != nil || (msg.GetSenderKeyDistributionMessage() != nil && msg.Conversation == nil && msg.ExtendedTextMessage == nil) {
		return nil
	}
	ct.deliveries[id]++
	if ct.seenIDs[id] {
		return nil
	}
	ct.seenIDs[id] = true
	r := Received{ID: id, From: from, At: time.Now(), Message: &msg, Type: typ}
	ct.inbox = append(ct.inbox, r)
	ct.srv.emit(Event{Kind: EventContactReceived, Device: from, Contact: ct.acc.jid, MessageID: id, Message: &msg})
	return nil
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

// React sends an emoji reaction to a message the account sent the contact.
func (ct *Contact) React(ctx context.Context, to types.JID, msgID, emoji string) (string, error) {
	return ct.SendMessage(ctx, to, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
		Key:  &waCommon.MessageKey{RemoteJID: proto.String(to.ToNonAD().String()), FromMe: proto.Bool(false), ID: proto.String(msgID)},
		Text: proto.String(emoji), SenderTimestampMS: proto.Int64(time.Now().UnixMilli())}})
}

// SendMessage encrypts msg for each linked device of the account to.
func (ct *Contact) SendMessage(ctx context.Context, to types.JID, msg *waE2E.Message) (string, error) {
	a, ok := ct.srv.lookup(to.User)
	if !ok {
		return "", fmt.Errorf("%w: %s", errUnknown, to.User)
	}
	pt, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	id := newMessageID()
	a.mu.Lock()
	var comps []*companion
	for _, c := range a.companions {
		if !c.removed {
			comps = append(comps, c)
		}
	}
	a.mu.Unlock()
	if len(comps) == 0 {
		return "", fmt.Errorf("wasim: %s has no linked device", to.User)
	}
	ts := time.Now().Unix()
	for _, comp := range comps {
		dev := a.jid
		dev.Device = comp.id
		enc, err := ct.encryptFor(ctx, dev, comp, pt)
		if err != nil {
			return "", err
		}
		node := waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"from": ct.acc.jid, "id": id, "t": ts, "type": "text", "notify": ct.Name},
			Content: []waBinary.Node{enc}}
		ct.srv.deliver(dev, node)
	}
	ct.srv.emit(Event{Kind: EventContactSent, Contact: ct.acc.jid, MessageID: id, Message: msg})
	return id, nil
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
		comp.mu().Lock()
		var pk *prekey_
		if len(comp.prekeys) > 0 {
			pk = &prekey_{comp.prekeys[0]}
			comp.prekeys = comp.prekeys[1:]
		}
		reg, skID, skPub, skSig, ident := comp.regID, comp.skeyID, comp.skeyPub, comp.skeySig, comp.identity
		comp.mu().Unlock()
		if pk != nil {
			defer func() { go ct.srv.save() }()
		}
		var b *prekey.Bundle
		if pk != nil {
			b = prekey.NewBundle(reg, uint32(dev.Device), optional.NewOptionalUint32(pk.id), skID,
				ecc.NewDjbECPublicKey(pk.pub), ecc.NewDjbECPublicKey(skPub), skSig, identity.NewKey(ecc.NewDjbECPublicKey(ident)))
		} else {
			b = prekey.NewBundle(reg, uint32(dev.Device), optional.NewEmptyUint32(), skID,
				nil, ecc.NewDjbECPublicKey(skPub), skSig, identity.NewKey(ecc.NewDjbECPublicKey(ident)))
		}
		if err := builder.ProcessBundle(ctx, b); err != nil {
			return waBinary.Node{}, fmt.Errorf("wasim: prekey bundle of %s: %w", dev, err)
		}
	}
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

type prekey_ struct{ preKeyRec }

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
