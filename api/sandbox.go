package api

import (
	"context"
	"errors"
	"net/http"
)

// Errors a Sandbox returns for the client's mistakes.
var (
	// ErrSandboxNotFound is returned for an unknown simulated contact.
	ErrSandboxNotFound = errors.New("not found")
	// ErrSandboxBadRequest is returned for an invalid sandbox request.
	ErrSandboxBadRequest = errors.New("invalid sandbox request")
)

// Sandbox plays the other side of WhatsApp in sandbox mode (wasim inside
// the appliance). It is an interface so the API does not depend on the
// simulator.
type Sandbox interface {
	// Scan completes the pending QR pairing of session as the phone number.
	Scan(ctx context.Context, session, phone string) error
	// AddContact creates a simulated contact.
	AddContact(ctx context.Context, c SandboxContact) (SandboxContact, error)
	// ContactSend makes a contact send text to the session's account; it
	// returns the WhatsApp message id.
	ContactSend(ctx context.Context, phone, session, text, replyTo string) (string, error)
	// Inbox lists what the contact received, decrypted, oldest first.
	Inbox(ctx context.Context, phone string) ([]SandboxInboxMessage, error)
}

// SandboxContact is a simulated contact. ReadAfter is a duration such as
// "2s" after which it sends a read receipt, or "never"; delivered receipts
// are sent at once.
type SandboxContact struct {
	Phone     string `json:"phone"`
	Name      string `json:"name,omitempty"`
	ReadAfter string `json:"read_after,omitempty"`
}

// SandboxInboxMessage is one message a contact received.
type SandboxInboxMessage struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to,omitempty"`
	// ReplyFrom is the quoted message's sender, as the quote names it.
	ReplyFrom string `json:"reply_from,omitempty"`
	At        string `json:"at"`
}

func (s *server) sandboxScan(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Session string `json:"session"`
		Phone   string `json:"phone"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := cleanNames("session", req.Session, "phone", req.Phone); err != nil {
		return err
	}
	if err := s.sb.Scan(r.Context(), req.Session, req.Phone); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"session": req.Session, "phone": req.Phone, "status": "scanned"})
	return nil
}

func (s *server) sandboxAddContact(w http.ResponseWriter, r *http.Request) error {
	var req SandboxContact
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := cleanNames("phone", req.Phone, "name", req.Name, "read_after", req.ReadAfter); err != nil {
		return err
	}
	c, err := s.sb.AddContact(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *server) sandboxContactSend(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Session string `json:"session"`
		Text    string `json:"text"`
		ReplyTo string `json:"reply_to"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := cleanNames("session", req.Session, "reply_to", req.ReplyTo); err != nil {
		return err
	}
	id, err := s.sb.ContactSend(r.Context(), pathVar(r, "phone"), req.Session, req.Text, req.ReplyTo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
	return nil
}

func (s *server) sandboxInbox(w http.ResponseWriter, r *http.Request) error {
	msgs, err := s.sb.Inbox(r.Context(), pathVar(r, "phone"))
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []SandboxInboxMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
	return nil
}
