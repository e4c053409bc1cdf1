package wasim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
)

// codePairing is a phone-code pairing between companion_hello and the
// phone entering the code.
type codePairing struct {
	sess       *session
	ref        string
	wrappedPub []byte // the companion's ephemeral key, encrypted with the code
	phoneEph   *keys.KeyPair
	code       string
}

func linkKey(code string, salt []byte) ([]byte, error) {
	return pbkdf2.Key(sha256.New, code, salt, 2<<16, 32)
}

// handleLinkCode serves the md iqs of phone-code pairing (PairPhone).
func (c *session) handleLinkCode(n *waBinary.Node, reg waBinary.Node) {
	s := c.srv
	j, _ := reg.Attrs["jid"].(types.JID)
	switch attr(&reg, "stage") {
	case "companion_hello":
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		if len(wrapped) != 80 || j.User == "" {
			c.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": attr(n, "id"), "type": "error", "from": types.ServerJID},
				Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "400", "text": "bad-request"}}}})
			return
		}
		ref := s.newRef()
		s.mu.Lock()
		s.codePairs[digits(j.User)] = &codePairing{sess: c, ref: ref, wrappedPub: wrapped}
		s.mu.Unlock()
		c.result(n, waBinary.Node{Tag: "link_code_companion_reg", Content: []waBinary.Node{{Tag: "link_code_pairing_ref", Content: []byte(ref)}}})
	case "companion_finish":
		s.mu.Lock()
		cp := s.codePairs[digits(j.User)]
		s.mu.Unlock()
		c.result(n)
		if cp == nil || cp.phoneEph == nil {
			return
		}
		if err := s.finishCodePairing(cp, j.User, reg); err != nil {
			s.log.Warn("wasim: phone-code pairing failed", "err", err)
		}
	default:
		c.result(n)
	}
}

// EnterCode is the user typing the 8-character code (with or without the
// dash) shown by PairPhone into the phone.
func (p *Phone) EnterCode(code string) error {
	s := p.srv
	code = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	s.mu.Lock()
	cp := s.codePairs[p.acc.phone]
	s.mu.Unlock()
	if cp == nil {
		return fmt.Errorf("wasim: no phone-code pairing pending for %s", p.acc.phone)
	}
	salt, iv := cp.wrappedPub[:32], cp.wrappedPub[32:48]
	key, err := linkKey(code, salt)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	companionEph := make([]byte, 32)
	cipher.NewCTR(block, iv).XORKeyStream(companionEph, cp.wrappedPub[48:80])
	// The phone answers with its own ephemeral key, wrapped the same way.
	eph := keys.NewKeyPair()
	psalt, piv := make([]byte, 32), make([]byte, 16)
	rand.Read(psalt)
	rand.Read(piv)
	pkey, err := linkKey(code, psalt)
	if err != nil {
		return err
	}
	pblock, _ := aes.NewCipher(pkey)
	enc := make([]byte, 32)
	cipher.NewCTR(pblock, piv).XORKeyStream(enc, eph.Pub[:])
	wrapped := append(append(append([]byte{}, psalt...), piv...), enc...)
	s.mu.Lock()
	cp.phoneEph, cp.code = eph, code
	cp.wrappedPub = append(cp.wrappedPub[:0:0], companionEph...) // now the plain companion key
	s.mu.Unlock()
	return cp.sess.send(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{"type": "link_code_companion_reg", "id": cp.sess.nextID(),
		"from": types.ServerJID, "t": strconv.FormatInt(time.Now().Unix(), 10)},
		Content: []waBinary.Node{{Tag: "link_code_companion_reg", Attrs: waBinary.Attrs{"stage": "primary_hello"}, Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(cp.ref)},
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrapped},
			{Tag: "primary_identity_pub", Content: p.acc.primary.IdentityKey.Pub[:]},
		}}}})
}

// finishCodePairing unwraps the companion's key bundle, derives the ADV
// secret as the companion did, and completes pairing as a QR scan would.
func (s *Server) finishCodePairing(cp *codePairing, phone string, reg waBinary.Node) error {
	wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
	if len(wrapped) < 32+12+16 {
		return errors.New("short key bundle")
	}
	shared, err := curve25519.X25519(cp.phoneEph.Priv[:], cp.wrappedPub)
	if err != nil {
		return err
	}
	key := hkdfutil.SHA256(shared, wrapped[:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	bundle, err := gcm.Open(nil, wrapped[32:44], wrapped[44:], nil)
	if err != nil || len(bundle) != 96 {
		return fmt.Errorf("key bundle: %v", err)
	}
	companionIdentity, advRandom := bundle[:32], bundle[64:96]
	phoneAcc := s.Phone(phone)
	idShared, err := curve25519.X25519(phoneAcc.acc.primary.IdentityKey.Priv[:], companionIdentity)
	if err != nil {
		return err
	}
	adv := hkdfutil.SHA256(append(append(append([]byte{}, shared...), idShared...), advRandom...), nil, []byte("adv_secret"), 32)
	s.mu.Lock()
	delete(s.codePairs, digits(phone))
	s.mu.Unlock()
	return phoneAcc.pair(cp.sess, [32]byte(companionIdentity), adv)
}
