package api

import (
	"net/http"
)

// Chat actions: read receipts and typing/recording presence. Nothing goes
// through the outbox (both are idempotent and only mean something now),
// so each answers once WhatsApp took it, and a session that is not
// connected is refused instead of queued.

// markRead sends a read receipt for message ids received in {chat}.
func (s *server) markRead(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	for _, id := range req.IDs {
		if err := cleanName("ids", id); err != nil {
			return err
		}
	}
	if err := s.wa.MarkRead(r.Context(), name, pathVar(r, "chat"), req.IDs); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"chat": pathVar(r, "chat"), "read": req.IDs})
	return nil
}

// chatPresence shows typing, recording or paused in {chat}.
func (s *server) chatPresence(w http.ResponseWriter, r *http.Request) error {
	name, err := s.sessionFor(r)
	if err != nil {
		return err
	}
	var req struct {
		State string `json:"state"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.wa.ChatPresence(r.Context(), name, pathVar(r, "chat"), req.State); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"chat": pathVar(r, "chat"), "state": req.State})
	return nil
}
