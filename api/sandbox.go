package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Errors a Sandbox returns for the client's mistakes.
var (
	// ErrSandboxNotFound is returned for an unknown simulated contact, and
	// for a message a contact should edit, delete or vote in that it did
	// not send or does not know.
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
	// ContactSend makes a contact send a message of one kind to the
	// session's account; it returns the WhatsApp message id.
	ContactSend(ctx context.Context, phone string, m SandboxMessage) (string, error)
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

// SandboxMaxMedia is the most media bytes a sandbox contact sends inline
// (3 MiB: a phone's photo or a long voice note). A sandbox contact has no
// access to the appliance's media store; larger media are for tests that
// drive wasim directly.
const SandboxMaxMedia = 3 << 20

// sandboxMaxBody is the body limit of a sandbox contact's send: the media
// base64-encoded (4 MiB) and the usual 64 KiB for the rest. Not more: the
// body is read whole, and decoding and strict checking allocate about 10x
// the body (measured: 43 MiB for 4 MiB), some half of it live at once,
// before wasim's encryption copies the media again. So the sends are also
// taken one at a time (sandboxSends): ~20 MiB is the most this route
// holds however many connections its peer opens. 16 MiB would be ~80 MiB
// for one send, more than serve's --memory-limit 64MiB.
const sandboxMaxBody = 4<<20 + maxBody

// SandboxMessage is what a sandbox contact sends: exactly one content
// field, as in a send (POST /v1/sessions/{session}/messages), with media
// inline. Message references (reply_to, and the message of a reaction,
// edit, delete or vote) are WhatsApp message ids: those the contact's
// inbox shows, or those this route returned.
type SandboxMessage struct {
	Session  string           `json:"session"`
	ReplyTo  string           `json:"reply_to,omitempty"`
	Text     *string          `json:"text,omitempty"`
	Image    *SandboxMedia    `json:"image,omitempty"`
	Video    *SandboxMedia    `json:"video,omitempty"`
	Audio    *SandboxMedia    `json:"audio,omitempty"`
	Document *SandboxMedia    `json:"document,omitempty"`
	Sticker  *SandboxMedia    `json:"sticker,omitempty"`
	Location *SandboxLocation `json:"location,omitempty"`
	Contacts []SandboxCard    `json:"contacts,omitempty"`
	Poll     *SandboxPoll     `json:"poll,omitempty"`
	Reaction *SandboxReaction `json:"reaction,omitempty"`
	Edit     *SandboxChange   `json:"edit,omitempty"`
	Delete   *SandboxChange   `json:"delete,omitempty"`
	Vote     *SandboxVote     `json:"vote,omitempty"`
}

// SandboxMedia is inline media: data is base64 (at most SandboxMaxMedia
// bytes decoded); mimetype defaults by kind.
type SandboxMedia struct {
	Data      []byte `json:"data"`
	Mimetype  string `json:"mimetype,omitempty"`
	Caption   string `json:"caption,omitempty"`
	Filename  string `json:"filename,omitempty"`
	Voice     bool   `json:"voice,omitempty"`
	VideoNote bool   `json:"video_note,omitempty"`
}

// SandboxLocation is a pin.
type SandboxLocation struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Name      string   `json:"name,omitempty"`
	Address   string   `json:"address,omitempty"`
}

// SandboxCard is a contact card: a vCard, or a name and phone numbers to
// build one from.
type SandboxCard struct {
	VCard  string   `json:"vcard,omitempty"`
	Name   string   `json:"name,omitempty"`
	Phones []string `json:"phones,omitempty"`
}

// SandboxPoll is a poll; selectable 0 lets a voter choose any number.
type SandboxPoll struct {
	Question   string   `json:"question"`
	Options    []string `json:"options"`
	Selectable int      `json:"selectable,omitempty"`
}

// SandboxReaction is an emoji on a message ("" removes the reaction).
type SandboxReaction struct {
	Message string  `json:"message"`
	Emoji   *string `json:"emoji"`
}

// SandboxChange names a message the contact sent (edit: with its new text).
type SandboxChange struct {
	Message string `json:"message"`
	Text    string `json:"text,omitempty"`
}

// SandboxVote chooses options, by name, in a poll.
type SandboxVote struct {
	Message string   `json:"message"`
	Options []string `json:"options"`
}

// contentFields are the content fields m sets.
func (m SandboxMessage) contentFields() []string {
	var f []string
	for _, c := range []struct {
		name string
		set  bool
	}{{"text", m.Text != nil}, {"image", m.Image != nil}, {"video", m.Video != nil}, {"audio", m.Audio != nil},
		{"document", m.Document != nil}, {"sticker", m.Sticker != nil}, {"location", m.Location != nil},
		{"contacts", m.Contacts != nil}, {"poll", m.Poll != nil}, {"reaction", m.Reaction != nil},
		{"edit", m.Edit != nil}, {"delete", m.Delete != nil}, {"vote", m.Vote != nil}} {
		if c.set {
			f = append(f, c.name)
		}
	}
	return f
}

// check refuses what no contact could send: none or two content fields,
// media without data or over SandboxMaxMedia, missing coordinates or
// references, a poll without two options.
func (m SandboxMessage) check() error {
	f := m.contentFields()
	if len(f) != 1 {
		return badArg("want exactly one content field (text, image, video, audio, document, sticker, location, contacts, poll, reaction, edit, delete, vote), got %d: %s", len(f), strings.Join(f, ", "))
	}
	if err := cleanNames("session", m.Session, "reply_to", m.ReplyTo); err != nil {
		return err
	}
	for _, md := range []*SandboxMedia{m.Image, m.Video, m.Audio, m.Document, m.Sticker} {
		if md == nil {
			continue
		}
		if len(md.Data) == 0 {
			return badArg("%s.data: base64 media bytes required", f[0])
		}
		if len(md.Data) > SandboxMaxMedia {
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "%s.data: %d bytes, a sandbox contact sends at most %d inline", f[0], len(md.Data), SandboxMaxMedia)
		}
		if err := cleanNames("mimetype", md.Mimetype, "filename", md.Filename); err != nil {
			return err
		}
	}
	ref := func(field, id string) error {
		if id == "" {
			return badArg("%s.message: the id of the message required", field)
		}
		return cleanName(field+".message", id)
	}
	switch {
	case m.Location != nil:
		l := m.Location
		if l.Latitude == nil || l.Longitude == nil || *l.Latitude < -90 || *l.Latitude > 90 || *l.Longitude < -180 || *l.Longitude > 180 {
			return badArg("location: latitude (-90..90) and longitude (-180..180) required")
		}
	case m.Contacts != nil:
		if len(m.Contacts) == 0 {
			return badArg("contacts: one card or more")
		}
		for i, c := range m.Contacts {
			if c.VCard == "" && (c.Name == "" || len(c.Phones) == 0) {
				return badArg("contacts[%d]: a vcard, or a name and phones", i)
			}
		}
	case m.Poll != nil:
		if strings.TrimSpace(m.Poll.Question) == "" || len(m.Poll.Options) < 2 || m.Poll.Selectable < 0 || m.Poll.Selectable > len(m.Poll.Options) {
			return badArg("poll: a question, two options or more, selectable 0..the number of options")
		}
	case m.Reaction != nil:
		if m.Reaction.Emoji == nil {
			return badArg("reaction.emoji required (\"\" removes the reaction)")
		}
		return ref("reaction", m.Reaction.Message)
	case m.Edit != nil:
		if strings.TrimSpace(m.Edit.Text) == "" {
			return badArg("edit.text required")
		}
		return ref("edit", m.Edit.Message)
	case m.Delete != nil:
		return ref("delete", m.Delete.Message)
	case m.Vote != nil:
		return ref("vote", m.Vote.Message)
	}
	return nil
}

// SandboxInboxMessage is one message a contact received: its kind and
// that kind's fields (media: the SHA-256 and size of the bytes the contact
// downloaded and decrypted; error when they did not).
type SandboxInboxMessage struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	Kind    string `json:"kind"`
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to,omitempty"`
	// ReplyFrom is the quoted message's sender, as the quote names it.
	ReplyFrom string           `json:"reply_from,omitempty"`
	At        string           `json:"at"`
	SHA256    string           `json:"sha256,omitempty"`
	Size      int64            `json:"size,omitempty"`
	Mimetype  string           `json:"mimetype,omitempty"`
	Caption   string           `json:"caption,omitempty"`
	Filename  string           `json:"filename,omitempty"`
	Voice     bool             `json:"voice,omitempty"`
	VideoNote bool             `json:"video_note,omitempty"`
	Location  *SandboxLocation `json:"location,omitempty"`
	Contacts  []SandboxCard    `json:"contacts,omitempty"`
	Poll      *SandboxPoll     `json:"poll,omitempty"`
	Reaction  *SandboxReaction `json:"reaction,omitempty"`
	Edit      *SandboxChange   `json:"edit,omitempty"`
	Delete    *SandboxChange   `json:"delete,omitempty"`
	Vote      *SandboxVote     `json:"vote,omitempty"`
	Error     string           `json:"error,omitempty"`
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
	select {
	case s.sandboxSends <- struct{}{}:
		defer func() { <-s.sandboxSends }()
	case <-r.Context().Done():
		return r.Context().Err()
	}
	var req SandboxMessage
	if err := decodeJSONUpTo(w, r, &req, sandboxMaxBody); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	id, err := s.sb.ContactSend(r.Context(), pathVar(r, "phone"), req)
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

// The OpenAPI schemas of the sandbox's send and inbox.
var (
	sandboxMediaSchema = obj(map[string]any{
		"data":       map[string]any{"type": "string", "contentEncoding": "base64", "description": "the bytes, base64; at most 3 MiB decoded (this route's request body limit is 4 MiB + 64 KiB, with a Content-Length)"},
		"mimetype":   map[string]any{"type": "string", "description": "defaults: image/jpeg, video/mp4, audio/ogg (voice: audio/ogg; codecs=opus), application/octet-stream, image/webp"},
		"caption":    map[string]any{"type": "string", "description": "image, video, document"},
		"filename":   map[string]any{"type": "string", "description": "document"},
		"voice":      map[string]any{"type": "boolean", "description": "audio: a voice note (PTT)"},
		"video_note": map[string]any{"type": "boolean", "description": "video: a round video note"}}, "data")
	sandboxLocationSchema = obj(map[string]any{"latitude": number, "longitude": number, "name": str, "address": str}, "latitude", "longitude")
	sandboxCardSchema     = obj(map[string]any{"vcard": str, "name": str, "phones": strList})
	sandboxPollSchema     = obj(map[string]any{"question": str, "options": strList, "selectable": map[string]any{"type": "integer", "description": "how many a voter may choose; 0: any"}}, "question", "options")
	sandboxMsgRef         = map[string]any{"type": "string", "description": "a WhatsApp message id (the inbox's, or one this route returned)"}
	sandboxReactionSchema = obj(map[string]any{"message": sandboxMsgRef, "emoji": map[string]any{"type": "string", "description": "\"\" removes the reaction"}}, "message", "emoji")
	sandboxChangeSchema   = obj(map[string]any{"message": sandboxMsgRef, "text": map[string]any{"type": "string", "description": "edit: the new text"}}, "message")
	sandboxVoteSchema     = obj(map[string]any{"message": sandboxMsgRef, "options": map[string]any{"type": "array", "items": str, "description": "option names; [] withdraws the vote"}}, "message", "options")

	sandboxSendSchema = map[string]any{
		"type": "object",
		"description": "Exactly one content field (none or two: 400). Media are inline (a sandbox contact has no access to the media store); " +
			"references are WhatsApp message ids. Edits, deletes name messages the contact sent; votes a poll it sent or received (404 otherwise).",
		"required": []string{"session"},
		"properties": map[string]any{
			"session":  str,
			"reply_to": map[string]any{"type": "string", "description": "quote a message by its WhatsApp id"},
			"text":     str, "image": sandboxMediaSchema, "video": sandboxMediaSchema, "audio": sandboxMediaSchema,
			"document": sandboxMediaSchema, "sticker": sandboxMediaSchema, "location": sandboxLocationSchema,
			"contacts": map[string]any{"type": "array", "items": sandboxCardSchema, "minItems": 1},
			"poll":     sandboxPollSchema, "reaction": sandboxReactionSchema, "edit": sandboxChangeSchema,
			"delete": sandboxChangeSchema, "vote": sandboxVoteSchema},
	}
	sandboxInboxSchema = obj(map[string]any{"messages": map[string]any{"type": "array", "items": obj(map[string]any{
		"id": str, "from": str, "text": str, "reply_to": str, "reply_from": str, "at": str,
		"kind":   map[string]any{"type": "string", "enum": []string{"text", "image", "video", "audio", "document", "sticker", "location", "contacts", "poll", "reaction", "edit", "delete", "vote", "unsupported"}},
		"sha256": map[string]any{"type": "string", "description": "media: hex SHA-256 of the bytes the contact downloaded and decrypted"},
		"size":   integer, "mimetype": str, "caption": str, "filename": str, "voice": boolean, "video_note": boolean,
		"location": sandboxLocationSchema, "contacts": map[string]any{"type": "array", "items": sandboxCardSchema},
		"poll": sandboxPollSchema, "reaction": sandboxReactionSchema, "edit": sandboxChangeSchema, "delete": sandboxChangeSchema,
		"vote":  map[string]any{"type": "object", "properties": map[string]any{"message": str, "options": strList}, "description": "the chosen option names, decrypted"},
		"error": map[string]any{"type": "string", "description": "why media did not download or a vote did not decrypt"}},
		"id", "from", "kind", "at")}}, "messages")
)
