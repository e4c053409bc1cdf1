package wasim

import (
	"context"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// sendKey names one client send: WhatsApp's servers de-duplicate by the
// sender device and the message id.
type sendKey struct {
	from types.JID
	id   string
}

// acceptedSend is what the server remembers of a send it took.
type acceptedSend struct {
	ts      time.Time // the server timestamp its ack carries (again)
	resends int       // how often it came again
}

// maxAccepted bounds how many sends the server remembers for
// de-duplication (in memory only): a resend after a lost ack comes within
// minutes, and an in-process sandbox should stay small.
const maxAccepted = 10000

// accept records a send the server takes and reports whether it took the
// same one before; a duplicate keeps its first timestamp.
func (s *Server) accept(k sendKey) (ts time.Time, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accepted[k]; ok {
		a.resends++
		return a.ts, true
	}
	ts = time.Now()
	s.accepted[k] = &acceptedSend{ts: ts}
	s.acceptedOrder = append(s.acceptedOrder, k)
	if len(s.acceptedOrder) > maxAccepted {
		delete(s.accepted, s.acceptedOrder[0])
		s.acceptedOrder = s.acceptedOrder[1:]
	}
	return ts, false
}

// Resends is how many times a client sent message id again after the
// server had accepted it (from any device): each was acked again and not
// delivered again.
func (s *Server) Resends(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, a := range s.accepted {
		if k.id == id {
			n += a.resends
		}
	}
	return n
}

// resendsFrom is Resends for the sends of one device.
func (s *Server) resendsFrom(dev types.JID, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accepted[sendKey{dev, id}]; ok {
		return a.resends
	}
	return 0
}

// handleMessage routes a client's send: every enc addressed to a
// simulated contact's phone is decrypted by that contact; then the server
// acks with its timestamp (or a fault) and the contact sends receipts. A
// message id the same device sent before is acked again (with the first
// timestamp) and not delivered twice, as WhatsApp does for a client that
// resends after a lost ack; a resend a contact asked for with a retry
// receipt (its enc carries a count) is not a duplicate.
func (c *session) handleMessage(n *waBinary.Node) {
	if c.comp == nil {
		return
	}
	id := attr(n, "id")
	to, _ := n.Attrs["to"].(types.JID)
	s := c.srv
	mode := s.ackMode.Load()
	if mode == ackDrop {
		s.emit(Event{Kind: EventSendDropped, Device: c.jid, MessageID: id})
		return
	}
	if mode == ackRefuse {
		c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "message", "id": id, "from": to, "error": strconv.Itoa(int(s.ackErr.Load())), "t": strconv.FormatInt(time.Now().Unix(), 10)}})
		s.emit(Event{Kind: EventSendRefused, Device: c.jid, MessageID: id})
		return
	}
	// Envelopes come per device in <participants>, or directly for one.
	type addressed struct {
		dev types.JID
		enc waBinary.Node
	}
	var encs []addressed
	retry := false
	collect := func(dev types.JID, children []waBinary.Node) {
		for _, e := range children {
			if e.Tag == "enc" {
				encs = append(encs, addressed{dev, e})
				retry = retry || attr(&e, "count") != ""
			}
		}
	}
	if parts, ok := n.GetOptionalChildByTag("participants"); ok {
		for _, p := range parts.GetChildren() {
			j, _ := p.Attrs["jid"].(types.JID)
			collect(j, p.GetChildren())
		}
	}
	collect(to, n.GetChildren())
	var ts time.Time
	var dup bool
	if retry {
		ts = time.Now()
	} else {
		ts, dup = s.accept(sendKey{c.jid, id})
	}
	var contact *Contact
	if dup {
		s.emit(Event{Kind: EventDuplicateSend, Device: c.jid, MessageID: id})
		encs = nil
	}
	for _, e := range encs {
		a, ok := s.lookupJID(e.dev)
		if ok && a == c.acc && e.dev.Device == 0 {
			// The sender's own phone: its copy of the send, or a peer message.
			if err := s.phoneReceive(context.Background(), a, c.jid, id, e.enc); err != nil {
				s.log.Debug("phone could not decrypt", "err", err)
			}
			continue
		}
		if !ok || a.contact == nil || e.dev.Device != 0 {
			continue // the sender's own phone or other devices: not simulated beyond key exchange
		}
		if err := a.contact.receive(context.Background(), c.jid, id, e.enc); err != nil {
			s.log.Warn("contact could not decrypt", "err", err)
			continue
		}
		contact = a.contact
	}
	if mode == ackWithhold {
		s.emit(Event{Kind: EventAckWithheld, Device: c.jid, MessageID: id})
	} else {
		if d := time.Duration(s.ackDelay.Load()); d > 0 {
			time.Sleep(d)
		}
		s.emit(Event{Kind: EventServerAck, Device: c.jid, MessageID: id})
		c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "message", "id": id, "from": to, "t": strconv.FormatInt(ts.Unix(), 10)}})
	}
	if contact != nil {
		go contact.sendReceipts(c.acc.jid, to, id)
	}
}

// sendReceipts sends the contact's delivered and read receipts for id to
// every device of the sender's account, from the address the sender sent
// to (chat: the contact's LID or phone number), with the other form beside
// it as WhatsApp does.
func (ct *Contact) sendReceipts(sender, chat types.JID, id string) {
	ct.mu.Lock()
	p := ct.policy
	ct.mu.Unlock()
	time.Sleep(30 * time.Millisecond) // a phone's receipt follows the server's ack
	send := func(typ string) {
		attrs := ct.acc.fromAttrs(chat)
		attrs["id"], attrs["t"] = id, strconv.FormatInt(time.Now().Unix(), 10)
		if typ != "" {
			attrs["type"] = typ
		}
		ct.srv.deliverAll(sender, waBinary.Node{Tag: "receipt", Attrs: attrs})
	}
	if !p.NoDelivered {
		send("")
	}
	if p.ReadAfter >= 0 {
		time.Sleep(p.ReadAfter)
		send("read")
		ct.srv.emit(Event{Kind: EventContactRead, Contact: ct.acc.jid, MessageID: id})
	}
}

// deliverAll sends a node to every linked device of the account.
func (s *Server) deliverAll(acc types.JID, n waBinary.Node) {
	a, ok := s.lookupJID(acc)
	if !ok {
		return
	}
	a.mu.Lock()
	var devs []types.JID
	for id, comp := range a.companions {
		if !comp.removed {
			d := a.jid
			d.Device = id
			devs = append(devs, d)
		}
	}
	a.mu.Unlock()
	for _, d := range devs {
		s.deliver(d, n)
	}
}

// deliver sends a node to a device now, or queues it until it logs in. A
// message stays pending until the client acks it; one not acked when the
// connection ends is delivered again at the next login, as WhatsApp does.
func (s *Server) deliver(dev types.JID, n waBinary.Node) {
	s.mu.Lock()
	c := s.sessions[dev]
	if c == nil {
		s.offline[dev] = append(s.offline[dev], n)
		s.mu.Unlock()
		return
	}
	if n.Tag == "message" {
		c.unacked = append(c.unacked, n)
	}
	s.mu.Unlock()
	if err := c.send(n); err != nil && n.Tag != "message" {
		s.mu.Lock()
		s.offline[dev] = append(s.offline[dev], n)
		s.mu.Unlock()
	}
}

// flushOffline delivers what was queued while the device was away.
func (s *Server) flushOffline(c *session) {
	time.Sleep(100 * time.Millisecond) // let the client finish its post-login queries first
	s.mu.Lock()
	if s.sessions[c.jid] != c {
		// The connection ended (or was replaced) during the pause: the queue
		// stays for the next login; taking it now would lose it.
		s.mu.Unlock()
		return
	}
	q := s.offline[c.jid]
	delete(s.offline, c.jid)
	for _, n := range q {
		if n.Tag == "message" {
			c.unacked = append(c.unacked, n)
		}
	}
	s.mu.Unlock()
	for _, n := range q {
		c.send(n)
	}
}
