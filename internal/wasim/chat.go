package wasim

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// What a client tells a contact about a chat besides messages: read
// receipts (MarkRead: <receipt type="read">, or "read-self" when the
// account hides its read receipts) and chat presence (SendChatPresence:
// <chatstate> with <composing/>, <composing media="audio"/> or
// <paused/>). The contact records them; other nodes wasim does not
// simulate (<presence> among them) are read and ignored.

// maxKeptChatState bounds the read receipts and chat states a contact keeps.
const maxKeptChatState = 1000

// contactOf is the simulated contact a node's "to" names (LID or number).
func (s *Server) contactOf(n *waBinary.Node) *Contact {
	to, _ := n.Attrs["to"].(types.JID)
	a, ok := s.lookupJID(to)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return a.contact
}

// readToContact records the message ids of a read receipt in the chat
// with the contact it is addressed to.
func (s *Server) readToContact(n *waBinary.Node) {
	ct := s.contactOf(n)
	if ct == nil {
		return
	}
	ids := []string{attr(n, "id")}
	if list, ok := n.GetOptionalChildByTag("list"); ok {
		for _, it := range list.GetChildren() {
			if id := attr(&it, "id"); it.Tag == "item" && id != "" {
				ids = append(ids, id)
			}
		}
	}
	ct.mu.Lock()
	ct.reads = keepLast(append(ct.reads, ids...), maxKeptChatState)
	ct.mu.Unlock()
	for _, id := range ids {
		s.emit(Event{Kind: EventClientRead, Contact: ct.acc.jid, MessageID: id})
	}
}

// chatStateToContact records a client's chat presence.
func (s *Server) chatStateToContact(dev types.JID, n *waBinary.Node) {
	ct := s.contactOf(n)
	children := n.GetChildren()
	if ct == nil || len(children) == 0 {
		return
	}
	state := children[0].Tag
	if state != "composing" && state != "paused" {
		return
	}
	if m := attr(&children[0], "media"); state == "composing" && m != "" {
		state += "/" + m
	}
	ct.mu.Lock()
	ct.chatStates = keepLast(append(ct.chatStates, state), maxKeptChatState)
	ct.mu.Unlock()
	s.emit(Event{Kind: EventChatPresence, Device: dev, Contact: ct.acc.jid, Class: state})
}

func keepLast(s []string, n int) []string {
	if len(s) > n {
		return append([]string(nil), s[len(s)-n:]...)
	}
	return s
}

// ReadReceipts are the ids the client marked read in its chat with the
// contact (MarkRead), oldest first (the newest 1000).
func (ct *Contact) ReadReceipts() []string {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return append([]string(nil), ct.reads...)
}

// ChatPresence are the chat states the client sent the contact, oldest
// first (the newest 1000): "composing", "composing/audio" (recording a
// voice note) or "paused".
func (ct *Contact) ChatPresence() []string {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return append([]string(nil), ct.chatStates...)
}
