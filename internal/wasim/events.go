package wasim

import (
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// EventKind names what happened in the simulator.
type EventKind string

// What OnEvent hooks see.
const (
	EventPaired            EventKind = "paired"              // a client linked as Device
	EventLoggedIn          EventKind = "logged_in"           // Device logged in
	EventDisconnected      EventKind = "disconnected"        // Device's connection ended
	EventServerAck         EventKind = "server_ack"          // the server acked Device's send MessageID
	EventSendRefused       EventKind = "send_refused"        // the server refused it (FailSends)
	EventSendDropped       EventKind = "send_dropped"        // the server swallowed it whole (DropSends)
	EventAckWithheld       EventKind = "ack_withheld"        // the server delivered it but sent no ack (WithholdAcks)
	EventDuplicateSend     EventKind = "duplicate_send"      // Device sent MessageID again: acked again, not delivered again
	EventContactReceived   EventKind = "contact_received"    // Contact decrypted MessageID from Device
	EventContactRead       EventKind = "contact_read"        // Contact sent a read receipt for MessageID
	EventContactSent       EventKind = "contact_sent"        // Contact sent MessageID
	EventContactResent     EventKind = "contact_resent"      // Contact sent MessageID again, encrypted anew (Resend)
	EventClientAck         EventKind = "client_ack"          // Device acked a node (Class message, receipt…)
	EventClientReceipt     EventKind = "client_receipt"      // Device sent a receipt (Class = its type)
	EventRetryRequested    EventKind = "retry_requested"     // Device could not decrypt Contact's MessageID; Contact resends it
	EventContactAskedRetry EventKind = "contact_asked_retry" // Contact asked Device to resend MessageID (RequestRetry)
	EventPrivacyTokens     EventKind = "privacy_tokens"      // Device issued privacy tokens (after a first send to a user)
	EventPhoneResend       EventKind = "phone_resend"        // Device asked its phone for messages it could not decrypt (peer MessageID); the phone answers
	EventTemporaryBan      EventKind = "temporary_ban"       // Device tried to log in during a TemporaryBan and got <failure reason="402">
	EventMediaExpired      EventKind = "media_expired"       // a download of a contact's media was answered 410 (ExpireMedia; Class: the path)
	EventMediaReuploaded   EventKind = "media_reuploaded"    // Device's phone re-uploaded Contact's MessageID for a media retry receipt (Class: the new path)
	EventClientRead        EventKind = "client_read"         // the client marked Contact's MessageID read
	EventChatPresence      EventKind = "chat_presence"       // Device sent Contact a chat state (Class: composing, composing/audio, paused)
)

// Event is one thing the simulator observed.
type Event struct {
	Kind      EventKind
	Device    types.JID
	Contact   types.JID
	MessageID string
	Class     string
	Message   *waE2E.Message
}

// OnEvent registers a hook called (synchronously, keep it short) for every event.
func (s *Server) OnEvent(fn func(Event)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, fn)
	s.mu.Unlock()
}

func (s *Server) emit(e Event) {
	s.mu.Lock()
	hooks := append([]func(Event){}, s.hooks...)
	s.mu.Unlock()
	for _, h := range hooks {
		h(e)
	}
}
