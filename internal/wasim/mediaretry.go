package wasim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// Expired media and the phone's re-upload. WhatsApp's media links expire;
// a client that gets 404 or 410 asks its own phone to upload the file
// again with a media retry receipt (whatsmeow's SendMediaRetryReceipt):
//
//	<receipt id=… to=<own JID> type="server-error">
//	  <encrypt><enc_p/><enc_iv/></encrypt>   ServerErrorReceipt{StanzaID}, AES-GCM
//	  <rmr jid=<chat> from_me=…/>
//	</receipt>
//
// under HKDF(media key, "WhatsApp Media Retry Notification"), with the
// message id as additional data. The phone, which has the message and its
// media key, uploads it under a new direct path and answers with
//
//	<notification id=… from=<own JID> type="mediaretry">
//	  <encrypt><enc_p/><enc_iv/></encrypt>   MediaRetryNotification{StanzaID, DirectPath, Result}
//	  <rmr jid=<chat> from_me=…/>
//	</notification>
//
// or, for a message it does not have, <error code="2"/> in place of the
// encrypt (whatsmeow's ErrMediaNotAvailableOnPhone). wasim's phone knows
// what its contacts sent (their last 1000 messages), so it re-uploads
// those: the same encrypted file under a new path, which
// Faults.ExpiredMedia does not expire.

const mediaRetryInfo = "WhatsApp Media Retry Notification"

// ExpireMedia makes every media file a simulated contact sent answer 410
// Gone to downloads (true), until the client's phone re-uploads it for a
// media retry receipt; false serves them again.
func (s *Server) ExpireMedia(expire bool) { s.expiredMedia.Store(expire) }

// mediaRetry answers a client's media retry receipt (type server-error)
// from the phone of the client's account.
func (s *Server) mediaRetry(dev types.JID, n *waBinary.Node) {
	id := attr(n, "id")
	rmr, ok := n.GetOptionalChildByTag("rmr")
	if !ok || dev.IsEmpty() {
		return
	}
	answer := func(content waBinary.Node) {
		s.deliver(dev, waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{"id": id, "from": dev.ToNonAD(), "type": "mediaretry",
			"t": strconv.FormatInt(time.Now().Unix(), 10)}, Content: []waBinary.Node{content, {Tag: "rmr", Attrs: rmr.Attrs}}})
	}
	notAvailable := waBinary.Node{Tag: "error", Attrs: waBinary.Attrs{"code": "2"}}
	chat, _ := rmr.Attrs["jid"].(types.JID)
	a, ok := s.lookupJID(chat)
	fromMe := fmt.Sprint(rmr.Attrs["from_me"]) == "true"
	if !ok || a.contact == nil || fromMe {
		answer(notAvailable)
		return
	}
	ct := a.contact
	ct.mu.Lock()
	m, ok := ct.sent[id]
	ct.mu.Unlock()
	var msg waE2E.Message
	if !ok || proto.Unmarshal(m.plaintext, &msg) != nil {
		answer(notAvailable)
		return
	}
	d, _, _, ok := mediaOf(&msg)
	if !ok {
		answer(notAvailable)
		return
	}
	key := hkdfutil.SHA256(d.GetMediaKey(), nil, []byte(mediaRetryInfo), 32)
	encP, _ := n.GetChildByTag("encrypt", "enc_p").Content.([]byte)
	encIV, _ := n.GetChildByTag("encrypt", "enc_iv").Content.([]byte)
	result := waMmsRetry.MediaRetryNotification_SUCCESS
	var path string
	var req waMmsRetry.ServerErrorReceipt
	if plain, err := gcmutil.Decrypt(key, encIV, encP, []byte(id)); err != nil || proto.Unmarshal(plain, &req) != nil || req.GetStanzaID() != id {
		result = waMmsRetry.MediaRetryNotification_DECRYPTION_ERROR
	} else if path, err = s.reupload(d.GetDirectPath()); err != nil {
		s.log.Warn("phone could not re-upload media", "err", err)
		result = waMmsRetry.MediaRetryNotification_NOT_FOUND
	}
	notif := &waMmsRetry.MediaRetryNotification{StanzaID: proto.String(id), Result: result.Enum()}
	if path != "" {
		notif.DirectPath = proto.String(path)
	}
	plain, err := proto.Marshal(notif)
	if err != nil {
		return
	}
	iv := make([]byte, 12)
	rand.Read(iv)
	enc, err := gcmutil.Encrypt(key, iv, plain, []byte(id))
	if err != nil {
		return
	}
	if result == waMmsRetry.MediaRetryNotification_SUCCESS {
		s.emit(Event{Kind: EventMediaReuploaded, Device: dev, Contact: ct.acc.jid, MessageID: id, Class: path})
	}
	answer(waBinary.Node{Tag: "encrypt", Content: []waBinary.Node{{Tag: "enc_p", Content: enc}, {Tag: "enc_iv", Content: iv}}})
}

// reupload stores the encrypted file at directPath again under a new path,
// as a phone's re-upload, which expiry does not touch.
func (s *Server) reupload(directPath string) (string, error) {
	b, ok := s.blobAt(directPath)
	if !ok {
		return "", errors.New("wasim: no media at " + directPath)
	}
	f, err := os.Open(b.file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return s.putBlob(f, true, true)
}

// mediaRetryTo hands a media retry receipt to the phone (in the background:
// the re-upload copies the file).
func (s *Server) mediaRetryTo(dev types.JID, n *waBinary.Node) {
	go s.mediaRetry(dev, n)
}
