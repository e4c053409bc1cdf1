package wasim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// The other kinds a contact sends and understands: locations, contact
// cards, polls and their encrypted votes, reactions, edits and revokes.

// nodeType is the type attribute of a message node, as WhatsApp sets it
// (whatsmeow's getTypeFromMessage).
func nodeType(m *waE2E.Message) string {
	switch {
	case m.GetReactionMessage() != nil || m.GetEncReactionMessage() != nil:
		return "reaction"
	case m.GetPollCreationMessage() != nil || m.GetPollCreationMessageV2() != nil || m.GetPollCreationMessageV3() != nil || m.GetPollUpdateMessage() != nil:
		return "poll"
	case hasMedia(m):
		return "media"
	}
	return "text"
}

func hasMedia(m *waE2E.Message) bool {
	_, _, _, ok := mediaOf(m)
	return ok || m.GetContactMessage() != nil || m.GetContactsArrayMessage() != nil
}

// editAttr is the edit attribute of a message node (whatsmeow's
// getEditAttribute): 1 for an edit, 7 for a revoke by its sender (and the
// removal of a reaction).
func editAttr(m *waE2E.Message) string {
	if inner := m.GetEditedMessage().GetMessage(); inner != nil {
		m = inner
	}
	switch pm := m.GetProtocolMessage(); {
	case pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey().GetFromMe():
		return string(types.EditAttributeSenderRevoke)
	case pm.GetType() == waE2E.ProtocolMessage_REVOKE && pm.GetKey() != nil:
		return string(types.EditAttributeAdminRevoke)
	case pm.GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT && pm.GetEditedMessage() != nil:
		return string(types.EditAttributeMessageEdit)
	case m.GetReactionMessage() != nil && m.GetReactionMessage().GetText() == "":
		return string(types.EditAttributeSenderRevoke)
	}
	return ""
}

// chatWith is the account to as the contact names their chat in message
// keys: by LID, unless the contact addresses by phone number.
func (ct *Contact) chatWith(to types.JID) (types.JID, error) {
	a, ok := ct.srv.lookupJID(to)
	if !ok {
		return types.JID{}, fmt.Errorf("%w: %s", errUnknown, to.User)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.byPhone {
		return a.jid, nil
	}
	return a.lid, nil
}

// self is the contact's own JID in the form it sends from.
func (ct *Contact) self() types.JID {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.byPhone {
		return ct.acc.jid
	}
	return ct.acc.lid
}

// sentByContact reports whether the contact sent message id (one it keeps).
func (ct *Contact) sentByContact(id string) bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	_, ok := ct.sent[id]
	return ok
}

// keyFor is the message key of id in the contact's chat with to, as the
// contact's phone builds it: FromMe when the contact sent it.
func (ct *Contact) keyFor(to types.JID, id string) (*waCommon.MessageKey, error) {
	chat, err := ct.chatWith(to)
	if err != nil {
		return nil, err
	}
	return &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(ct.sentByContact(id)), ID: proto.String(id)}, nil
}

// React sends an emoji reaction to message id of the chat with to (one the
// account sent the contact, or one the contact sent); "" removes it.
func (ct *Contact) React(ctx context.Context, to types.JID, msgID, emoji string) (string, error) {
	key, err := ct.keyFor(to, msgID)
	if err != nil {
		return "", err
	}
	return ct.SendMessage(ctx, to, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
		Key: key, Text: proto.String(emoji), SenderTimestampMS: proto.Int64(time.Now().UnixMilli())}})
}

// Edit replaces the text of message id, which the contact sent to, as
// whatsmeow's BuildEdit makes it with the contact as sender: a
// MESSAGE_EDIT protocol message inside EditedMessage, edit="1" on the node.
func (ct *Contact) Edit(ctx context.Context, to types.JID, id, newText string) (string, error) {
	if !ct.sentByContact(id) {
		return "", fmt.Errorf("%w: edit of %s, which contact %s did not send", ErrUnknownMessage, id, ct.acc.phone)
	}
	key, err := ct.keyFor(to, id)
	if err != nil {
		return "", err
	}
	return ct.SendMessage(ctx, to, &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
		ProtocolMessage: &waE2E.ProtocolMessage{Key: key, Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: &waE2E.Message{Conversation: proto.String(newText)}, TimestampMS: proto.Int64(time.Now().UnixMilli())}}}})
}

// Revoke deletes message id, which the contact sent to, for everyone, as
// whatsmeow's BuildRevoke makes it: a REVOKE protocol message, edit="7".
func (ct *Contact) Revoke(ctx context.Context, to types.JID, id string) (string, error) {
	if !ct.sentByContact(id) {
		return "", fmt.Errorf("%w: revoke of %s, which contact %s did not send", ErrUnknownMessage, id, ct.acc.phone)
	}
	key, err := ct.keyFor(to, id)
	if err != nil {
		return "", err
	}
	return ct.SendMessage(ctx, to, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key, Type: waE2E.ProtocolMessage_REVOKE.Enum()}})
}

// SendLocation sends a location pin.
func (ct *Contact) SendLocation(ctx context.Context, to types.JID, lat, lon float64, name, address string) (string, error) {
	l := &waE2E.LocationMessage{DegreesLatitude: proto.Float64(lat), DegreesLongitude: proto.Float64(lon)}
	if name != "" {
		l.Name = proto.String(name)
	}
	if address != "" {
		l.Address = proto.String(address)
	}
	return ct.SendMessage(ctx, to, &waE2E.Message{LocationMessage: l})
}

// Card is one contact card: a display name and its vCard.
type Card struct {
	Name  string `json:"name"`
	VCard string `json:"vcard"`
}

// SendContacts sends one contact card (ContactMessage) or several
// (ContactsArrayMessage), as WhatsApp does.
func (ct *Contact) SendContacts(ctx context.Context, to types.JID, cards []Card) (string, error) {
	if len(cards) == 0 {
		return "", fmt.Errorf("%w: no contact cards", ErrInvalid)
	}
	cms := make([]*waE2E.ContactMessage, len(cards))
	for i, c := range cards {
		cms[i] = &waE2E.ContactMessage{DisplayName: proto.String(c.Name), Vcard: proto.String(c.VCard)}
	}
	if len(cms) == 1 {
		return ct.SendMessage(ctx, to, &waE2E.Message{ContactMessage: cms[0]})
	}
	return ct.SendMessage(ctx, to, &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{
		DisplayName: proto.String(fmt.Sprintf("%d contacts", len(cms))), Contacts: cms}})
}

// poll is a poll the contact knows the secret of: one it sent, or one it
// received with its MessageContextInfo.MessageSecret.
type poll struct {
	secret  []byte
	options []string
	byMe    bool // the contact created it
}

// pollOf reads a poll creation (any version) and its secret.
func pollOf(m *waE2E.Message) (options []string, secret []byte, ok bool) {
	pc := m.GetPollCreationMessage()
	if pc == nil {
		pc = m.GetPollCreationMessageV2()
	}
	if pc == nil {
		pc = m.GetPollCreationMessageV3()
	}
	if pc == nil {
		return nil, nil, false
	}
	for _, o := range pc.GetOptions() {
		options = append(options, o.GetOptionName())
	}
	return options, m.GetMessageContextInfo().GetMessageSecret(), true
}

// notePollLocked remembers a poll the contact received (ct.mu held).
func (ct *Contact) notePollLocked(id string, m *waE2E.Message) {
	opts, secret, ok := pollOf(m)
	if !ok || len(secret) != 32 {
		return
	}
	if ct.polls == nil {
		ct.polls = map[string]*poll{}
	}
	ct.polls[id] = &poll{secret: secret, options: opts}
}

// SendPoll makes the contact create a poll, with a fresh 32-byte message
// secret as whatsmeow's BuildPollCreation does (selectable 0: any number).
func (ct *Contact) SendPoll(ctx context.Context, to types.JID, question string, options []string, selectable int) (string, error) {
	if len(options) < 2 {
		return "", fmt.Errorf("%w: a poll needs two options or more", ErrInvalid)
	}
	if selectable < 0 || selectable > len(options) {
		selectable = 0
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	opts := make([]*waE2E.PollCreationMessage_Option, len(options))
	for i, o := range options {
		opts[i] = &waE2E.PollCreationMessage_Option{OptionName: proto.String(o)}
	}
	msg := &waE2E.Message{
		PollCreationMessage: &waE2E.PollCreationMessage{Name: proto.String(question), Options: opts, SelectableOptionsCount: proto.Uint32(uint32(selectable))},
		MessageContextInfo:  &waE2E.MessageContextInfo{MessageSecret: secret},
	}
	pt, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	id, ts := newMessageID(), time.Now().Unix()
	remember := func() {
		ct.remember(id, pt, ts)
		ct.mu.Lock()
		if ct.polls == nil {
			ct.polls = map[string]*poll{}
		}
		ct.polls[id] = &poll{secret: secret, options: append([]string(nil), options...), byMe: true}
		ct.mu.Unlock()
	}
	if err := ct.sendTo(ctx, to, id, pt, ts, remember); err != nil {
		return "", err
	}
	ct.srv.emit(Event{Kind: EventContactSent, Contact: ct.acc.jid, MessageID: id, Message: msg})
	return id, nil
}

// pollKey is the HKDF key and GCM additional data of a vote (whatsmeow's
// generateMsgSecretKey for "Poll Vote"): the poll's secret expanded with
// its id, its creator and the voter; the additional data is the id and the
// voter.
func pollKey(secret []byte, pollID string, creator, voter types.JID) (key, ad []byte) {
	c, v := creator.ToNonAD().String(), voter.ToNonAD().String()
	info := append(append(append([]byte(pollID), c...), v...), "Poll Vote"...)
	return hkdfutil.SHA256(secret, nil, info, 32), fmt.Appendf(nil, "%s\x00%s", pollID, v)
}

// hashOptions are the SHA-256 hashes of option names, as votes carry them.
func hashOptions(names []string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		h := sha256.Sum256([]byte(n))
		out[i] = h[:]
	}
	return out
}

// VotePoll makes the contact vote for options (by name; none withdraws its
// vote) in poll pollID of the chat with to, one it received or sent,
// encrypted as WhatsApp does: a PollUpdateMessage whose vote is the
// SHA-256 hashes of the names, AES-GCM under the poll secret expanded with
// the poll id, its creator and the voter ("Poll Vote"), so that the
// client's DecryptPollVote opens it.
func (ct *Contact) VotePoll(ctx context.Context, to types.JID, pollID string, options []string) (string, error) {
	ct.mu.Lock()
	p := ct.polls[pollID]
	ct.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("%w: vote in %s, a poll contact %s does not know", ErrUnknownMessage, pollID, ct.acc.phone)
	}
	for _, o := range options {
		found := false
		for _, have := range p.options {
			found = found || have == o
		}
		if !found {
			return "", fmt.Errorf("%w: %q is not an option of poll %s", ErrInvalid, o, pollID)
		}
	}
	chat, err := ct.chatWith(to)
	if err != nil {
		return "", err
	}
	voter := ct.self()
	creator := chat // a poll the account created: the key names the chat
	if p.byMe {
		creator = voter
	}
	plain, err := proto.Marshal(&waE2E.PollVoteMessage{SelectedOptions: hashOptions(options)})
	if err != nil {
		return "", err
	}
	key, ad := pollKey(p.secret, pollID, creator, voter)
	iv := make([]byte, 12)
	rand.Read(iv)
	enc, err := gcmutil.Encrypt(key, iv, plain, ad)
	if err != nil {
		return "", err
	}
	return ct.SendMessage(ctx, to, &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{
		PollCreationMessageKey: &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(p.byMe), ID: proto.String(pollID)},
		Vote:                   &waE2E.PollEncValue{EncPayload: enc, EncIV: iv},
		SenderTimestampMS:      proto.Int64(time.Now().UnixMilli()),
	}})
}

// PollVote decrypts a vote the contact received from the client (a
// PollUpdateMessage) on a poll it knows, and returns the poll's id and the
// chosen option names. The client may name itself and the creator by LID
// or phone number; each form is tried.
func (ct *Contact) PollVote(r Received) (pollID string, options []string, err error) {
	u := r.Message.GetPollUpdateMessage()
	if u == nil {
		return "", nil, errors.New("wasim: not a poll vote")
	}
	pollID = u.GetPollCreationMessageKey().GetID()
	ct.mu.Lock()
	p := ct.polls[pollID]
	ct.mu.Unlock()
	if p == nil {
		return pollID, nil, fmt.Errorf("wasim: vote in %s, a poll contact %s does not know", pollID, ct.acc.phone)
	}
	a, ok := ct.srv.lookupJID(r.From)
	if !ok {
		return pollID, nil, fmt.Errorf("%w: %s", errUnknown, r.From.User)
	}
	voters := []types.JID{a.lid, a.jid}
	creators := voters
	if p.byMe {
		creators = []types.JID{ct.acc.lid, ct.acc.jid}
	}
	for _, v := range voters {
		for _, c := range creators {
			key, ad := pollKey(p.secret, pollID, c, v)
			plain, err := gcmutil.Decrypt(key, u.GetVote().GetEncIV(), u.GetVote().GetEncPayload(), ad)
			if err != nil {
				continue
			}
			var vote waE2E.PollVoteMessage
			if err := proto.Unmarshal(plain, &vote); err != nil {
				return pollID, nil, err
			}
			for _, h := range vote.GetSelectedOptions() {
				for i, hh := range hashOptions(p.options) {
					if string(h) == string(hh) {
						options = append(options, p.options[i])
					}
				}
			}
			return pollID, options, nil
		}
	}
	return pollID, nil, errors.New("wasim: poll vote does not decrypt")
}
