package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// Poll limits: WhatsApp's apps allow 12 options.
const (
	maxPollOptions  = 12
	maxPollQuestion = 255
	maxPollOption   = 100
)

// PollContent is a poll. Selectable is how many options a voter may
// choose: 1 for a single choice, up to len(Options); 0 means any number
// (WhatsApp's "allow multiple answers").
type PollContent struct {
	Question   string   `json:"question"`
	Options    []string `json:"options"`
	Selectable int      `json:"selectable"`
}

// Validate wants a question, 2..12 distinct options and a Selectable in range.
func (p *PollContent) Validate() error {
	if strings.TrimSpace(p.Question) == "" || len(p.Question) > maxPollQuestion {
		return fmt.Errorf("%w: poll: question must be 1 to %d bytes", ErrBadContent, maxPollQuestion)
	}
	if len(p.Options) < 2 || len(p.Options) > maxPollOptions {
		return fmt.Errorf("%w: poll: want 2 to %d options, got %d", ErrBadContent, maxPollOptions, len(p.Options))
	}
	seen := map[string]bool{}
	for _, o := range p.Options {
		if strings.TrimSpace(o) == "" || len(o) > maxPollOption {
			return fmt.Errorf("%w: poll: each option must be 1 to %d bytes", ErrBadContent, maxPollOption)
		}
		if seen[o] {
			return fmt.Errorf("%w: poll: option %q appears twice (votes name options by their text)", ErrBadContent, o)
		}
		seen[o] = true
	}
	if p.Selectable < 0 || p.Selectable > len(p.Options) {
		return fmt.Errorf("%w: poll: selectable must be 0 (any number) to %d", ErrBadContent, len(p.Options))
	}
	return nil
}

// build is whatsmeow's BuildPollCreation with the secret Send drew (the
// one SendMessage then keeps in its message secret store, to decrypt votes).
func (p *PollContent) build(c *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	if len(c.Secret) != 32 {
		return nil, fmt.Errorf("poll without its message secret")
	}
	pm := &waE2E.PollCreationMessage{Name: proto.String(p.Question), SelectableOptionsCount: proto.Uint32(uint32(p.Selectable)), ContextInfo: ci}
	for _, o := range p.Options {
		pm.Options = append(pm.Options, &waE2E.PollCreationMessage_Option{OptionName: proto.String(o)})
	}
	return &waE2E.Message{PollCreationMessage: pm, MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: c.Secret}}, nil
}
