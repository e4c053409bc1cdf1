package whatsapp

import (
	"context"
	"encoding/json"
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
)

// Chat presence states a session can show in a chat.
const (
	PresenceTyping    = "typing"
	PresenceRecording = "recording"
	PresencePaused    = "paused"
)

// maxReadIDs caps one MarkRead call.
const maxReadIDs = 100

// ErrBadChatAction is returned by MarkRead and ChatPresence for arguments
// that are not valid (no ids, an unknown presence state).
var ErrBadChatAction = fmt.Errorf("%w: chat action", ErrBadContent)

// MarkRead sends WhatsApp's read receipt for messages the session received
// in its chat with chat (a phone number or JID), by the ids
// message.received showed. Nothing is stored: marking read twice is
// harmless. An id this chat never received is ErrTargetNotFound.
func (e *Engine) MarkRead(ctx context.Context, session, chat string, ids []string) error {
	if len(ids) == 0 || len(ids) > maxReadIDs {
		return fmt.Errorf("%w: ids: want 1 to %d message ids", ErrBadChatAction, maxReadIDs)
	}
	s, to, cli, err := e.chatAction(ctx, session, chat)
	if err != nil {
		return err
	}
	// The receipt goes to the chat as the messages came (by LID, these
	// days); all of them must be the contact's messages of this chat.
	dest := types.EmptyJID
	msgIDs := make([]types.MessageID, 0, len(ids))
	for _, id := range ids {
		ev, ok, err := e.cfg.Events.ByKey(ctx, session, events.TypeMessageReceived, messageKey(to.String(), to.String(), id))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %q (ids are of messages this session received in the chat)", ErrTargetNotFound, id)
		}
		var data struct {
			ChatLID string `json:"chat_lid"`
		}
		_ = json.Unmarshal(ev.Data, &data)
		if dest.IsEmpty() {
			dest = to
			if lid, err := types.ParseJID(data.ChatLID); err == nil && data.ChatLID != "" {
				dest = lid
			}
		}
		msgIDs = append(msgIDs, types.MessageID(id))
	}
	if err := cli.MarkRead(ctx, msgIDs, e.cfg.Now(), dest, types.EmptyJID); err != nil {
		return fmt.Errorf("whatsapp: marking read in session %s: %w", s.name, err)
	}
	return nil
}

// ChatPresence shows state (PresenceTyping, PresenceRecording or
// PresencePaused) to the contact chat. Nothing is stored.
func (e *Engine) ChatPresence(ctx context.Context, session, chat, state string) error {
	var cp types.ChatPresence
	var media types.ChatPresenceMedia
	switch state {
	case PresenceTyping:
		cp = types.ChatPresenceComposing
	case PresenceRecording:
		cp, media = types.ChatPresenceComposing, types.ChatPresenceMediaAudio
	case PresencePaused:
		cp = types.ChatPresencePaused
	default:
		return fmt.Errorf("%w: state: want %s, %s or %s", ErrBadChatAction, PresenceTyping, PresenceRecording, PresencePaused)
	}
	s, to, cli, err := e.chatAction(ctx, session, chat)
	if err != nil {
		return err
	}
	dest := to
	if lid := e.recipientLID(ctx, session, to.String()); lid != "" {
		if j, err := types.ParseJID(lid); err == nil {
			dest = j
		}
	}
	if err := cli.SendChatPresence(ctx, dest, cp, media); err != nil {
		return fmt.Errorf("whatsapp: chat presence in session %s: %w", s.name, err)
	}
	return nil
}

// chatAction finds the session, parses chat as a recipient and returns the
// connected client, or the error that says why there is none.
func (e *Engine) chatAction(ctx context.Context, session, chat string) (*session, types.JID, *whatsmeow.Client, error) {
	s, err := e.session(session)
	if err != nil {
		return nil, types.JID{}, nil, err
	}
	to, err := ParseRecipient(chat)
	if err != nil {
		return nil, types.JID{}, nil, err
	}
	if cli, ok := s.connected(); ok {
		return s, to, cli, nil
	}
	info := s.committed()
	switch {
	case info.State == StateLoggedOut:
		return nil, types.JID{}, nil, ErrLoggedOut
	case info.JID == "":
		return nil, types.JID{}, nil, ErrNotPaired
	case info.State == StateReplaced:
		return nil, types.JID{}, nil, ErrReplaced
	}
	return nil, types.JID{}, nil, ErrNotConnected
}
