package wasim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// account is one WhatsApp number: its primary device (a simulated phone
// with real Signal keys, kept in a whatsmeow device store) and the
// companion devices linked to it (the clients under test).
type account struct {
	phone   string
	jid     types.JID
	lid     types.JID // the account's LID (…@lid), which WhatsApp addresses it by
	primary *store.Device
	contact *Contact // set for simulated contacts

	// phoneMu guards the primary's Signal state in its own traffic with
	// companions (phone.go); a contact's traffic holds Contact.mu.
	phoneMu sync.Mutex

	mu         sync.Mutex
	companions map[uint16]*companion
	nextDevice uint16
}

// companion is a linked device as the server knows it: what the client
// uploaded (identity, registration id, prekeys) for others to start
// Signal sessions with it.
type companion struct {
	lock     sync.Mutex
	id       uint16
	identity [32]byte
	regID    uint32
	skeyID   uint32
	skeyPub  [32]byte
	skeySig  [64]byte
	prekeys  []preKeyRec
	removed  bool
}

type preKeyRec struct {
	id  uint32
	pub [32]byte
}

// Phone returns the simulated phone of number (digits, with or without +),
// creating the account on first use.
func (s *Server) Phone(number string) *Phone {
	a, _ := s.account(context.Background(), number)
	return &Phone{srv: s, acc: a}
}

func digits(n string) string { return strings.TrimPrefix(strings.TrimSpace(n), "+") }

// account returns (and with create, makes) the account of a number.
func (s *Server) account(ctx context.Context, number string) (*account, error) {
	number = digits(number)
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[number]; ok {
		return a, nil
	}
	jid := types.NewJID(number, types.DefaultUserServer)
	dev, err := s.container.GetDevice(ctx, jid)
	if err != nil {
		return nil, err
	}
	if dev == nil {
		dev = s.container.NewDevice()
		dev.ID = &jid
		dev.PushName = "wasim " + number
		// A primary device signs its own identity; the store wants one.
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{}, AccountSignature: make([]byte, 64), AccountSignatureKey: dev.IdentityKey.Pub[:], DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil {
			return nil, fmt.Errorf("wasim: save phone %s: %w", number, err)
		}
	}
	a := &account{phone: number, jid: jid, lid: s.newLIDLocked(number), primary: dev, companions: map[uint16]*companion{}, nextDevice: 1}
	s.accounts[number] = a
	s.byLID[a.lid.User] = a
	return a, nil
}

// newLIDLocked picks the LID of a new account: 15 digits derived from the
// phone number, so a standalone wasim that lost its state gives the same
// number the same LID again; the next free one on a collision. s.mu is held.
func (s *Server) newLIDLocked(number string) types.JID {
	h := sha256.Sum256([]byte("wasim lid " + number))
	n := binary.BigEndian.Uint64(h[:8])%9e14 + 1e14
	for s.byLID[strconv.FormatUint(n, 10)] != nil {
		n++
	}
	return types.NewJID(strconv.FormatUint(n, 10), types.HiddenUserServer)
}

// setLID gives the account a LID it had before (a restored state).
func (s *Server) setLID(a *account, lid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lid == "" || lid == a.lid.User || s.byLID[lid] != nil {
		return
	}
	delete(s.byLID, a.lid.User)
	a.lid = types.NewJID(lid, types.HiddenUserServer)
	s.byLID[lid] = a
}

func (s *Server) lookup(number string) (*account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[digits(number)]
	return a, ok
}

// lookupJID finds the account a JID names, by phone number or by LID.
func (s *Server) lookupJID(j types.JID) (*account, bool) {
	if j.Server != types.HiddenUserServer {
		return s.lookup(j.User)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byLID[j.User]
	return a, ok
}

// addressOf is the account's user JID in the form of like (LID or phone
// number), with like's device.
func (a *account) addressOf(like types.JID) types.JID {
	j := a.jid
	if like.Server == types.HiddenUserServer {
		j = a.lid
	}
	j.Device = like.Device
	return j
}

// Phone is a simulated phone: the primary device of an account, which
// links companion devices by QR or phone code and can log them out.
type Phone struct {
	srv *Server
	acc *account
}

// JID is the phone's account JID.
func (p *Phone) JID() types.JID { return p.acc.jid }

// LID is the account's LID.
func (p *Phone) LID() types.JID { return p.acc.lid }

// qrLinkPrefix starts the QR text of current clients (whatsmeow since
// 2026), which a phone's camera opens as a link; older ones show the bare
// comma-separated fields.
const qrLinkPrefix = "https://wa.me/settings/linked_devices#"

// ScanQR completes the pairing of the client that shows code, as a phone
// scanning it would: it signs the device identity with the account key and
// sends pair-success. It reads both QR formats: ref, noise key, identity
// key and ADV secret, bare or after qrLinkPrefix and with the client type
// as a fifth field.
func (p *Phone) ScanQR(code string) error {
	link := strings.HasPrefix(code, qrLinkPrefix)
	parts := strings.Split(strings.TrimPrefix(code, qrLinkPrefix), ",")
	if len(parts) != 4 && !(link && len(parts) == 5) {
		return fmt.Errorf("wasim: not a WhatsApp pairing QR code: %d fields", len(parts))
	}
	p.srv.mu.Lock()
	sess := p.srv.pending[parts[0]]
	p.srv.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("wasim: QR ref %q is not pending (expired or already used)", parts[0])
	}
	ident, err1 := base64.StdEncoding.DecodeString(parts[2])
	adv, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(ident) != 32 {
		return errors.New("wasim: malformed QR code keys")
	}
	return p.pair(sess, [32]byte(ident), adv)
}

// pair links the client on sess as a new companion of the phone's account.
func (p *Phone) pair(sess *session, identity [32]byte, advSecret []byte) error {
	a := p.acc
	a.mu.Lock()
	devID := a.nextDevice
	a.nextDevice++
	a.mu.Unlock()
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{RawID: proto.Uint32(uint32(devID)), Timestamp: proto.Uint64(uint64(time.Now().Unix())), KeyIndex: proto.Uint32(uint32(devID))})
	if err != nil {
		return err
	}
	acctKey := a.primary.IdentityKey
	msg := append(append(append([]byte{}, 6, 0), details...), identity[:]...)
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*acctKey.Priv), msg)
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{Details: details, AccountSignatureKey: acctKey.Pub[:], AccountSignature: sig[:]})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
	if err != nil {
		return err
	}
	devJID, devLID := a.jid, a.lid
	devJID.Device, devLID.Device = devID, devID
	sess.pairing = &pendingPair{account: a, device: devID, identity: identity, accountKey: *acctKey.Pub, details: details}
	return sess.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "set", "id": sess.nextID(), "xmlns": "md", "t": strconv.FormatInt(time.Now().Unix(), 10)},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: container},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": "android"}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": devJID, "lid": devLID}},
			{Tag: "biz", Attrs: waBinary.Attrs{"name": ""}},
		}}}})
}

type pendingPair struct {
	account    *account
	device     uint16
	identity   [32]byte
	accountKey [32]byte
	details    []byte
}

// Companions lists the account's linked device ids.
func (p *Phone) Companions() []uint16 {
	p.acc.mu.Lock()
	defer p.acc.mu.Unlock()
	var out []uint16
	for id, c := range p.acc.companions {
		if !c.removed {
			out = append(out, id)
		}
	}
	return out
}

// LogOut removes every linked device, as "Log out" on the phone's
// linked-devices screen: connected clients get a 401 device_removed stream
// error, and later logins fail with 401.
func (p *Phone) LogOut() {
	p.acc.mu.Lock()
	var ids []uint16
	for id, c := range p.acc.companions {
		if !c.removed {
			c.removed = true
			ids = append(ids, id)
		}
	}
	p.acc.mu.Unlock()
	p.srv.save()
	for _, id := range ids {
		j := p.acc.jid
		j.Device = id
		if sess := p.srv.sessionOf(j); sess != nil {
			sess.streamError("401", "device_removed")
		}
	}
}

func (c *companion) mu() *sync.Mutex { return &c.lock }

func strconvU(v uint16) string { return strconv.Itoa(int(v)) }
