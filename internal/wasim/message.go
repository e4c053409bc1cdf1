package wasim

import (
	"context"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleMessage routes a client's send: every enc addressed to a
// simulated contact's phone is decrypted by that contact; then the server
// acks with its timestamp (or a fault) and the contact sends receipts.
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
	collect := func(dev types.JID, children []waBinary.Node) {
		for _, e := range children {
			if e.Tag == "enc" {
				encs = append(encs, addressed{dev, e})
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
	var contact *Contact
	for _, e := range encs {
		a, ok := s.lookup(e.dev.User)
		if !ok || a.contact == nil || e.dev.Device != 0 {
			continue // the sender's own phone or other devices: not simulated beyond key exchange
		}
		if err := a.contact.receive(context.Background(), c.jid, id, e.enc); err != nil {
			s.log.Warn("contact could not decrypt", "err", err)
			continue
		}
		contact = a.contact
	}
	if d := time.Duration(s.ackDelay.Load()); d > 0 {
		time.Sleep(d)
	}
	ts := time.Now()
	s.emit(Event{Kind: EventServerAck, Device: c.jid, MessageID: id})
	c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "message", "id": id, "from": to, "t": strconv.FormatInt(ts.Unix(), 10)}})
	if contact != nil {
		go contact.sendReceipts(c.acc.jid, id)
	}
}

// sendReceipts sends the contact's delivered and read receipts for id to
// every device of the sender's account.
func (ct *Contact) sendReceipts(sender types.JID, id string) {
	ct.mu.Lock()
	p := ct.policy
	ct.mu.Unlock()
	time.Sleep(30 * time.Millisecond) // a phone's receipt follows the server's ack
	send := func(typ string) {
		attrs := waBinary.Attrs{"from": ct.acc.jid, "id": id, "t": strconv.FormatInt(time.Now().Unix(), 10)}
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
	a, ok := s.lookup(acc.User)
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
