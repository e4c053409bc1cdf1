package wasim

import (
	"context"
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
)

// session is one websocket connection of a client.
type session struct {
	srv  *Server
	fc   *frameConn
	ctx  context.Context
	done chan struct{}
	once sync.Once

	jid     types.JID // device JID once logged in
	acc     *account
	comp    *companion
	reg     *waWa6.ClientPayload_DevicePairingRegistrationData
	refs    []string
	pairing *pendingPair
	ids     atomic.Int64
	unacked []waBinary.Node // messages sent but not acked (guarded by srv.mu)
}

func (c *session) nextID() string { return "wasim-" + strconv.FormatInt(c.ids.Add(1), 10) }

func (c *session) close() {
	c.once.Do(func() {
		close(c.done)
		c.fc.ws.CloseNow()
	})
}

func (c *session) send(n waBinary.Node) error {
	b, err := waBinary.Marshal(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.fc.writePlain(ctx, b)
}

// streamErrorGrace is how long the server keeps a connection open after a
// stream error for the client to act on it and hang up itself. whatsmeow
// reads the error into a handler queue but sees the end of the socket at
// once: closing right away would make a 515 or a 440 look like a network
// failure to it, and its auto-reconnect would race the intended handling.
const streamErrorGrace = 2 * time.Second

// streamError sends a stream error and closes the connection once the client
// has hung up, or after streamErrorGrace. It does not wait for that.
func (c *session) streamError(code, conflict string) {
	n := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{}}
	if code != "" {
		n.Attrs["code"] = code
	}
	if conflict != "" {
		n.Content = []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": conflict}}}
	}
	c.send(n)
	go c.hangUpAfterGrace()
}

// hangUpAfterGrace closes the connection after streamErrorGrace unless the
// client closed it first.
func (c *session) hangUpAfterGrace() {
	t := time.NewTimer(streamErrorGrace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
	c.close()
}

func (c *session) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ctx = ctx
	defer c.close()
	defer c.unregister()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	cp, err := c.fc.handshake(ctx, c.srv.static, c.srv.cert)
	if err != nil {
		c.srv.log.Debug("handshake failed", "err", err)
		return
	}
	if pd := cp.GetDevicePairingData(); pd != nil {
		c.reg = pd
		c.startPairing()
	} else if !c.login(cp) {
		return
	}
	for {
		p, err := c.fc.readPlain(ctx)
		if err != nil {
			return
		}
		u, err := waBinary.Unpack(p)
		if err != nil {
			return
		}
		n, err := waBinary.Unmarshal(u)
		if err != nil {
			return
		}
		c.handle(n)
	}
}

func (c *session) unregister() {
	s := c.srv
	s.mu.Lock()
	for _, r := range c.refs {
		if s.pending[r] == c {
			delete(s.pending, r)
		}
	}
	if !c.jid.IsEmpty() && s.sessions[c.jid] == c {
		delete(s.sessions, c.jid)
	}
	var handOver []waBinary.Node
	if len(c.unacked) > 0 && !c.jid.IsEmpty() {
		if s.sessions[c.jid] != nil {
			// Replaced by a newer connection of the same device, which may
			// already have flushed the offline queue: it gets them now.
			handOver = c.unacked
		} else {
			s.offline[c.jid] = append(c.unacked, s.offline[c.jid]...)
		}
		c.unacked = nil
	}
	s.mu.Unlock()
	for _, n := range handOver {
		s.deliver(c.jid, n)
	}
	if !c.jid.IsEmpty() {
		s.emit(Event{Kind: EventDisconnected, Device: c.jid})
	}
}

func (c *session) startPairing() {
	s := c.srv
	refs := []string{s.newRef(), s.newRef(), s.newRef()}
	s.mu.Lock()
	for _, r := range refs {
		s.pending[r] = c
	}
	c.refs = refs
	s.mu.Unlock()
	content := make([]waBinary.Node, len(refs))
	for i, r := range refs {
		content[i] = waBinary.Node{Tag: "ref", Content: []byte(r)}
	}
	c.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "set", "id": c.nextID(), "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: content}}})
}

// login answers a returning companion with <success>, <failure 401>, or
// <failure 402> during a TemporaryBan.
func (c *session) login(cp *waWa6.ClientPayload) bool {
	s := c.srv
	phone := strconv.FormatUint(cp.GetUsername(), 10)
	acc, ok := s.lookup(phone)
	var comp *companion
	if ok {
		acc.mu.Lock()
		comp = acc.companions[uint16(cp.GetDevice())]
		acc.mu.Unlock()
	}
	if comp == nil || comp.removed {
		c.send(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": "401", "location": "wasim"}})
		go c.hangUpAfterGrace()
		for { // ignore whatever comes until one side hangs up
			if _, err := c.fc.readFrame(c.ctx); err != nil {
				return false
			}
		}
	}
	if ban, banned := s.banOf(phone); banned {
		left := (time.Until(ban.until) + time.Second - 1) / time.Second
		c.send(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": "402", "code": strconv.Itoa(ban.code),
			"expire": strconv.FormatInt(int64(left), 10), "location": "wasim"}})
		s.emit(Event{Kind: EventTemporaryBan, Device: types.JID{User: phone, Server: types.DefaultUserServer, Device: comp.id}})
		go c.hangUpAfterGrace()
		for {
			if _, err := c.fc.readFrame(c.ctx); err != nil {
				return false
			}
		}
	}
	c.acc, c.comp = acc, comp
	c.jid = types.JID{User: phone, Server: types.DefaultUserServer, Device: comp.id}
	s.mu.Lock()
	old := s.sessions[c.jid]
	s.sessions[c.jid] = c
	s.mu.Unlock()
	if old != nil {
		old.streamError("", "replaced")
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	lid := acc.lid
	lid.Device = comp.id
	c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{"t": now, "props": "1", "abprops": "1", "location": "wasim", "creation": now, "lid": lid}})
	s.emit(Event{Kind: EventLoggedIn, Device: c.jid})
	go s.flushOffline(c)
	go func(dev types.JID) {
		if err := s.openPhoneSession(context.Background(), acc, comp, dev); err != nil {
			s.log.Warn("phone could not open a session with its companion", "device", dev, "err", err)
		}
	}(c.jid)
	return true
}

func (c *session) handle(n *waBinary.Node) {
	switch n.Tag {
	case "iq":
		c.handleIQ(n)
	case "message":
		c.handleMessage(n)
	case "receipt":
		c.handleReceipt(n)
	case "chatstate":
		c.srv.chatStateToContact(c.jid, n)
	case "ack":
		c.srv.ackedByClient(c, attr(n, "id"))
		c.srv.emit(Event{Kind: EventClientAck, Device: c.jid, MessageID: attr(n, "id"), Class: attr(n, "class")})
	}
}

func attr(n *waBinary.Node, k string) string {
	v, _ := n.Attrs[k].(string)
	return v
}

func (c *session) result(n *waBinary.Node, content ...waBinary.Node) {
	r := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": attr(n, "id"), "type": "result", "from": types.ServerJID}}
	if len(content) > 0 {
		r.Content = content
	}
	c.send(r)
}

func (c *session) handleIQ(n *waBinary.Node) {
	typ := attr(n, "type")
	children := n.GetChildren()
	if typ == "result" || typ == "error" {
		if len(children) > 0 && children[0].Tag == "pair-device-sign" {
			c.finishPairing()
		}
		return
	}
	first := ""
	if len(children) > 0 {
		first = children[0].Tag
	}
	switch attr(n, "xmlns") {
	case "md":
		if first == "link_code_companion_reg" {
			c.handleLinkCode(n, children[0])
			return
		}
		c.result(n)
	case "encrypt":
		c.handleEncrypt(n, typ, first)
	case "usync":
		c.handleUsync(n)
	case "w:m":
		if first == "media_conn" {
			c.result(n, waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{"auth": "wasim", "ttl": "3600", "auth_ttl": "3600", "max_buckets": "1"},
				Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": "wasim"}}}})
			return
		}
		c.result(n)
	case "abt":
		c.result(n, waBinary.Node{Tag: "props", Attrs: waBinary.Attrs{"protocol": "1", "hash": "wasim"}})
	case "w":
		c.result(n, waBinary.Node{Tag: "props", Attrs: waBinary.Attrs{"protocol": "2", "hash": "wasim"}})
	case "privacy":
		if first == "tokens" {
			// A client issues a trusted-contact token after its first send
			// to a user; wasim gives none back and checks none.
			c.result(n)
			c.srv.emit(Event{Kind: EventPrivacyTokens, Device: c.jid})
			return
		}
		if first == "privacy" || first == "" {
			c.result(n, waBinary.Node{Tag: "privacy"})
			return
		}
		c.result(n)
	default:
		c.result(n)
	}
}

// finishPairing records the linked device and restarts the stream (515).
func (c *session) finishPairing() {
	p := c.pairing
	if p == nil || c.reg == nil {
		return
	}
	comp := &companion{id: p.device, identity: p.identity}
	comp.regID = binary.BigEndian.Uint32(pad4(c.reg.GetERegid()))
	comp.skeyID = binary.BigEndian.Uint32(pad4(c.reg.GetESkeyID()))
	copy(comp.skeyPub[:], c.reg.GetESkeyVal())
	copy(comp.skeySig[:], c.reg.GetESkeySig())
	p.account.mu.Lock()
	p.account.companions[p.device] = comp
	p.account.mu.Unlock()
	j := p.account.jid
	j.Device = p.device
	c.srv.save()
	c.srv.emit(Event{Kind: EventPaired, Device: j})
	c.streamError("515", "")
}

func pad4(b []byte) []byte {
	if len(b) >= 4 {
		return b[len(b)-4:]
	}
	return append(make([]byte, 4-len(b)), b...)
}

// ackedByClient ends the redelivery of a message the client acked (an ack,
// or the delivery receipt whatsmeow sends instead).
func (s *Server) ackedByClient(c *session, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range c.unacked {
		if attr(&n, "id") == id {
			c.unacked = append(c.unacked[:i], c.unacked[i+1:]...)
			return
		}
	}
}

func (c *session) handleReceipt(n *waBinary.Node) {
	c.srv.ackedByClient(c, attr(n, "id"))
	c.srv.emit(Event{Kind: EventClientReceipt, Device: c.jid, MessageID: attr(n, "id"), Class: attr(n, "type")})
	a := waBinary.Attrs{"class": "receipt", "id": attr(n, "id"), "from": n.Attrs["to"]}
	if t := attr(n, "type"); t != "" {
		a["type"] = t
	}
	c.send(waBinary.Node{Tag: "ack", Attrs: a})
	switch attr(n, "type") {
	case "retry":
		c.srv.retryToContact(c.jid, n)
	case "read", "read-self":
		c.srv.readToContact(n)
	case "server-error":
		c.srv.mediaRetryTo(c.jid, n)
	}
}

// retryToContact hands a retry receipt (the client could not decrypt a
// message) to the simulated contact that sent the message, which resends it.
func (s *Server) retryToContact(dev types.JID, n *waBinary.Node) {
	to, _ := n.Attrs["to"].(types.JID)
	a, ok := s.lookupJID(to)
	if !ok || a.contact == nil || dev.IsEmpty() {
		return
	}
	r, ok := n.GetOptionalChildByTag("retry")
	if !ok {
		return
	}
	count, _ := strconv.Atoi(attr(&r, "count"))
	id := attr(&r, "id")
	s.emit(Event{Kind: EventRetryRequested, Device: dev, Contact: a.jid, MessageID: id})
	go func() {
		if err := a.contact.retry(context.Background(), dev, id, count, n); err != nil {
			s.log.Warn("contact could not answer a retry receipt", "id", id, "err", err)
		}
	}()
}

func (s *Server) sessionOf(j types.JID) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[j]
}

// DropConnection closes the device's connection as a network failure would.
func (s *Server) DropConnection(device types.JID) bool {
	if c := s.sessionOf(device); c != nil {
		c.close()
		return true
	}
	return false
}

// Replace ends the device's connection with a 440 "replaced" conflict, as
// when another client connects with the same credentials.
func (s *Server) Replace(device types.JID) bool {
	if c := s.sessionOf(device); c != nil {
		c.streamError("440", "replaced")
		return true
	}
	return false
}
