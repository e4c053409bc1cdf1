package whatsapp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRecipient(t *testing.T) {
	ok := map[string]string{
		"+4915123456789":               "4915123456789@s.whatsapp.net",
		" +49 151 2345-6789 ":          "4915123456789@s.whatsapp.net",
		"+1 (555) 000.1234":            "15550001234@s.whatsapp.net",
		"4915123456789@s.whatsapp.net": "4915123456789@s.whatsapp.net",
	}
	for in, want := range ok {
		jid, err := ParseRecipient(in)
		if err != nil || jid.String() != want {
			t.Errorf("ParseRecipient(%q) = %v, %v; want %s", in, jid, err, want)
		}
	}
	bad := map[string]string{
		"015123456789":                     "E.164",
		"+0151234567":                      "never start with 0",
		"+49151":                           "too short",
		"+4915123456789012345":             "too long",
		"+49 151 abc":                      "unexpected character",
		"":                                 "E.164",
		"12345@g.us":                       "only user chats",
		"4915123456789.0:3@s.whatsapp.net": "",
	}
	for in, want := range bad {
		_, err := ParseRecipient(in)
		if err == nil || !errors.Is(err, ErrBadRecipient) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRecipient(%q) = %v; want ErrBadRecipient mentioning %q", in, err, want)
		}
	}
}

func FuzzParseRecipient(f *testing.F) {
	for _, s := range []string{"+4915123456789", "+1 (555) 000-1234", "x@s.whatsapp.net", "@", "+", "1@lid"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		jid, err := ParseRecipient(s)
		if err != nil {
			if !errors.Is(err, ErrBadRecipient) {
				t.Fatalf("%q: error %v is not ErrBadRecipient", s, err)
			}
			return
		}
		if jid.User == "" || jid.Device != 0 {
			t.Fatalf("%q accepted as %v", s, jid)
		}
	})
}

func TestMaskPhone(t *testing.T) {
	if got := maskPhone("4915123456789"); got != "+49*********89" || strings.Contains(got, "512345") {
		t.Fatalf("maskPhone = %q", got)
	}
}
