package whatsapp

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/types"
)

// ParseRecipient turns "+4915123456789" (spaces, dashes, dots and
// parentheses allowed) or a user JID ("4915123456789@s.whatsapp.net") into a
// user JID. Phone numbers must be E.164: a '+', a country code not starting
// with 0, 8 to 15 digits in all.
func ParseRecipient(s string) (types.JID, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") {
		jid, err := types.ParseJID(s)
		if err != nil || jid.User == "" || jid.Device != 0 {
			return types.JID{}, fmt.Errorf("%w %q: not a user JID", ErrBadRecipient, s)
		}
		if jid.Server != types.DefaultUserServer && jid.Server != types.HiddenUserServer {
			return types.JID{}, fmt.Errorf("%w %q: only user chats (%s) are supported", ErrBadRecipient, s, types.DefaultUserServer)
		}
		if err := checkDigits(jid.User); err != nil && jid.Server == types.DefaultUserServer {
			return types.JID{}, fmt.Errorf("%w %q: %v", ErrBadRecipient, s, err)
		}
		return jid.ToNonAD(), nil
	}
	num, err := NormalizePhone(s)
	if err != nil {
		return types.JID{}, err
	}
	return types.NewJID(num, types.DefaultUserServer), nil
}

// NormalizePhone returns the digits of an E.164 number (without '+').
func NormalizePhone(s string) (string, error) {
	orig := s
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("%w %q: phone numbers must be in international E.164 form, starting with + and the country code", ErrBadRecipient, orig)
	}
	var b strings.Builder
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w %q: unexpected character %q", ErrBadRecipient, orig, r)
		}
	}
	if err := checkDigits(b.String()); err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadRecipient, orig, err)
	}
	return b.String(), nil
}

func checkDigits(d string) error {
	switch {
	case len(d) < 8:
		return fmt.Errorf("too short (%d digits; E.164 numbers have 8 to 15)", len(d))
	case len(d) > 15:
		return fmt.Errorf("too long (%d digits; E.164 numbers have at most 15)", len(d))
	case d[0] == '0':
		return fmt.Errorf("country codes never start with 0")
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return fmt.Errorf("not all digits")
		}
	}
	return nil
}

// recipientLID is the LID of to (a stored recipient JID) when to is one or
// the session's whatsmeow store maps its phone number to one, else "".
func (e *Engine) recipientLID(ctx context.Context, session, to string) string {
	j, err := types.ParseJID(to)
	if err != nil {
		return ""
	}
	if j.Server == types.HiddenUserServer {
		return j.ToNonAD().String()
	}
	e.mu.Lock()
	s := e.sessions[session]
	e.mu.Unlock()
	if s == nil {
		return ""
	}
	s.mu.Lock()
	cli := s.client
	s.mu.Unlock()
	if cli == nil || cli.Store == nil || cli.Store.LIDs == nil {
		return ""
	}
	lid, err := cli.Store.LIDs.GetLIDForPN(ctx, j.ToNonAD())
	if err != nil || lid.IsEmpty() {
		return ""
	}
	return lid.ToNonAD().String()
}
