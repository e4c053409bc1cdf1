package whatsapp

import (
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// maxContacts caps one contacts message; maxVCardBytes one vCard.
const (
	maxContacts   = 50
	maxVCardBytes = 8 << 10
)

// ContactsContent is one or more contact cards.
type ContactsContent []ContactCard

// ContactCard is a vCard as given, or a name and phone numbers (E.164)
// from which the appliance builds one (vCard 3.0 with WhatsApp's waid,
// so the recipient's phone offers to message them).
type ContactCard struct {
	VCard  string   `json:"vcard,omitempty"`
	Name   string   `json:"name,omitempty"`
	Phones []string `json:"phones,omitempty"`
}

// Validate wants 1..maxContacts cards, each either a vCard (BEGIN:VCARD …
// END:VCARD with an FN) or a name with at least one phone number.
func (cs *ContactsContent) Validate() error {
	if len(*cs) == 0 || len(*cs) > maxContacts {
		return fmt.Errorf("%w: contacts: want 1 to %d cards, got %d", ErrBadContent, maxContacts, len(*cs))
	}
	for i, c := range *cs {
		if err := c.validate(); err != nil {
			return fmt.Errorf("%w: contacts[%d]: %v", ErrBadContent, i, err)
		}
	}
	return nil
}

func (c ContactCard) validate() error {
	if c.VCard != "" {
		if c.Name != "" || len(c.Phones) > 0 {
			return fmt.Errorf("either vcard or name and phones, not both")
		}
		if len(c.VCard) > maxVCardBytes {
			return fmt.Errorf("vcard over %d bytes", maxVCardBytes)
		}
		v := strings.TrimSpace(c.VCard)
		if !strings.HasPrefix(strings.ToUpper(v), "BEGIN:VCARD") || !strings.HasSuffix(strings.ToUpper(v), "END:VCARD") {
			return fmt.Errorf("vcard must start with BEGIN:VCARD and end with END:VCARD")
		}
		if vcardName(v) == "" {
			return fmt.Errorf("vcard has no FN (formatted name) line")
		}
		return nil
	}
	if strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("want vcard, or name and phones")
	}
	if len(c.Name) > maxLabelBytes || strings.ContainsAny(c.Name, "\r\n") {
		return fmt.Errorf("name: at most %d bytes on one line", maxLabelBytes)
	}
	if len(c.Phones) == 0 || len(c.Phones) > 10 {
		return fmt.Errorf("phones: want 1 to 10 numbers")
	}
	for _, p := range c.Phones {
		if _, err := NormalizePhone(p); err != nil {
			return fmt.Errorf("phones: %v", err)
		}
	}
	return nil
}

// vcard is the card's vCard, as given or built.
func (c ContactCard) vcard() string {
	if c.VCard != "" {
		return strings.TrimSpace(c.VCard)
	}
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `;`, `\;`).Replace
	name := esc(strings.TrimSpace(c.Name))
	var b strings.Builder
	b.WriteString("BEGIN:VCARD\nVERSION:3.0\nN:;" + name + ";;;\nFN:" + name + "\n")
	for _, p := range c.Phones {
		d, _ := NormalizePhone(p)
		fmt.Fprintf(&b, "TEL;type=CELL;type=VOICE;waid=%s:+%s\n", d, d)
	}
	b.WriteString("END:VCARD")
	return b.String()
}

// displayName is the card's name (its FN when given as a vCard).
func (c ContactCard) displayName() string {
	if c.VCard != "" {
		return vcardName(c.VCard)
	}
	return strings.TrimSpace(c.Name)
}

// vcardName is the value of a vCard's FN line.
func vcardName(v string) string {
	for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
		k, val, ok := strings.Cut(line, ":")
		if ok && (strings.EqualFold(k, "FN") || strings.HasPrefix(strings.ToUpper(k), "FN;")) {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// build: a ContactMessage for one card, a ContactsArrayMessage for more.
func (cs *ContactsContent) build(_ *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	if len(*cs) == 1 {
		c := (*cs)[0]
		return &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String(c.displayName()), Vcard: proto.String(c.vcard()), ContextInfo: ci}}, nil
	}
	arr := &waE2E.ContactsArrayMessage{DisplayName: proto.String(fmt.Sprintf("%d contacts", len(*cs))), ContextInfo: ci}
	for _, c := range *cs {
		arr.Contacts = append(arr.Contacts, &waE2E.ContactMessage{DisplayName: proto.String(c.displayName()), Vcard: proto.String(c.vcard())})
	}
	return &waE2E.Message{ContactsArrayMessage: arr}, nil
}
