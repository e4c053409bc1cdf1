package wasim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/libsignal/protocol"
	signalsession "go.mau.fi/libsignal/session"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// The simulated phone's own Signal traffic with its linked companions: a
// real phone starts a session with a companion right after linking it (it
// shares app state keys and history), and a companion that cannot decrypt
// a message asks its phone for it (a placeholder resend request), which
// the phone answers with the message as it has it. wasim's phone does the
// two: it opens a session at a companion's first login with a protocol
// message nothing acts on, and answers placeholder resend requests for
// messages wasim's contacts sent.

// openPhoneSession starts the phone's Signal session with a companion
// unless it has one.
func (s *Server) openPhoneSession(ctx context.Context, a *account, comp *companion, dev types.JID) error {
	a.phoneMu.Lock()
	defer a.phoneMu.Unlock()
	addr := dev.SignalAddress()
	if has, err := a.primary.ContainsSession(ctx, addr); err != nil || has {
		return err
	}
	builder := signalsession.NewBuilderFromSignal(a.primary, addr, pb)
	if err := builder.ProcessBundle(ctx, s.takeBundle(dev, comp)); err != nil {
		return fmt.Errorf("wasim: phone session with %s: %w", dev, err)
	}
	return s.phoneSendLocked(ctx, a, builder, dev, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:                                   waE2E.ProtocolMessage_INITIAL_SECURITY_NOTIFICATION_SETTING_SYNC.Enum(),
		InitialSecurityNotificationSettingSync: &waE2E.InitialSecurityNotificationSettingSync{SecurityNotificationEnabled: proto.Bool(false)},
	}})
}

// phoneSendLocked encrypts msg from the phone to one companion and delivers
// it as a peer message; a.phoneMu is held.
func (s *Server) phoneSendLocked(ctx context.Context, a *account, builder *signalsession.Builder, dev types.JID, msg *waE2E.Message) error {
	pt, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	c, err := signalsession.NewCipher(builder, dev.SignalAddress()).Encrypt(ctx, pad(pt))
	if err != nil {
		return err
	}
	typ := "msg"
	if c.Type() == protocol.PREKEY_TYPE {
		typ = "pkmsg"
	}
	s.deliver(dev, waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"from": a.jid, "id": newMessageID(), "t": strconv.FormatInt(time.Now().Unix(), 10), "type": "text", "category": "peer"},
		Content: []waBinary.Node{{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": typ}, Content: c.Serialize()}}})
	return nil
}

// phoneReceive decrypts what a companion sent its own phone (its copy of
// a message it sent, or a peer message) and answers a placeholder resend
// request.
func (s *Server) phoneReceive(ctx context.Context, a *account, from types.JID, id string, enc waBinary.Node) error {
	a.phoneMu.Lock()
	defer a.phoneMu.Unlock()
	addr := from.SignalAddress()
	builder := signalsession.NewBuilderFromSignal(a.primary, addr, pb)
	cipher := signalsession.NewCipher(builder, addr)
	content, _ := enc.Content.([]byte)
	var pt []byte
	var err error
	switch attr(&enc, "type") {
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
		return nil
	}
	if err != nil {
		return fmt.Errorf("wasim: phone %s decrypting from %s: %w", a.phone, from, err)
	}
	if len(pt) == 0 || int(pt[len(pt)-1]) > len(pt) {
		return fmt.Errorf("wasim: bad padding from %s", from)
	}
	var msg waE2E.Message
	if err := proto.Unmarshal(pt[:len(pt)-int(pt[len(pt)-1])], &msg); err != nil {
		return err
	}
	req := msg.GetProtocolMessage().GetPeerDataOperationRequestMessage()
	if req.GetPeerDataOperationRequestType() != waE2E.PeerDataOperationRequestType_PLACEHOLDER_MESSAGE_RESEND {
		return nil
	}
	resp := &waE2E.PeerDataOperationRequestResponseMessage{
		PeerDataOperationRequestType: waE2E.PeerDataOperationRequestType_PLACEHOLDER_MESSAGE_RESEND.Enum(),
		StanzaID:                     proto.String(id),
	}
	for _, r := range req.GetPlaceholderMessageResendRequest() {
		key := r.GetMessageKey()
		chat, err := types.ParseJID(key.GetRemoteJID())
		if err != nil {
			continue
		}
		web, ok := s.messageAsPhoneHasIt(chat, key.GetID())
		if !ok {
			continue
		}
		b, err := proto.Marshal(web)
		if err != nil {
			return err
		}
		resp.PeerDataOperationResult = append(resp.PeerDataOperationResult, &waE2E.PeerDataOperationRequestResponseMessage_PeerDataOperationResult{
			PlaceholderMessageResendResponse: &waE2E.PeerDataOperationRequestResponseMessage_PeerDataOperationResult_PlaceholderMessageResendResponse{WebMessageInfoBytes: b},
		})
	}
	s.emit(Event{Kind: EventPhoneResend, Device: from, MessageID: id})
	return s.phoneSendLocked(ctx, a, builder, from, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:                                    waE2E.ProtocolMessage_PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE.Enum(),
		PeerDataOperationRequestResponseMessage: resp,
	}})
}

// messageAsPhoneHasIt is message id of the chat with a contact as the
// account's phone received it: wasim's contacts keep what they sent.
func (s *Server) messageAsPhoneHasIt(chat types.JID, id string) (*waWeb.WebMessageInfo, bool) {
	a, ok := s.lookupJID(chat)
	if !ok || a.contact == nil {
		return nil, false
	}
	ct := a.contact
	ct.mu.Lock()
	m, ok := ct.sent[id]
	name := ct.Name
	ct.mu.Unlock()
	if !ok {
		return nil, false
	}
	var msg waE2E.Message
	if err := proto.Unmarshal(m.plaintext, &msg); err != nil {
		return nil, false
	}
	return &waWeb.WebMessageInfo{
		Key:              &waCommon.MessageKey{RemoteJID: proto.String(chat.ToNonAD().String()), FromMe: proto.Bool(false), ID: proto.String(id)},
		Message:          &msg,
		MessageTimestamp: proto.Uint64(uint64(m.ts)),
		PushName:         proto.String(name),
	}, true
}
