package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input that must not be accepted, refused at the API before anything is
// stored: encoding/json silently turns invalid UTF-8 and lone surrogate
// escapes into U+FFFD and lets a repeated key override the first, so
// decodeJSON checks the raw body as well (strictJSON); names and ids are
// checked for control characters (cleanName).

// maxJSONDepth bounds the nesting of a request body; no request type
// nests more than three levels.
const maxJSONDepth = 32

// strictJSON reports, as a 400 bad_json, what encoding/json would accept
// but we refuse in a request body that already decoded: invalid UTF-8,
// escapes that are lone UTF-16 surrogates, NUL characters (WhatsApp's
// protocol needs valid UTF-8 and text without NUL), and an object key that
// appears twice at any depth. Keys are compared case-insensitively, as
// encoding/json matches them to struct fields.
func strictJSON(raw []byte) error {
	if !utf8.Valid(raw) {
		return errorf(http.StatusBadRequest, "bad_json", "request body is not valid UTF-8")
	}
	if err := checkEscapes(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	return checkKeys(dec, 0)
}

// checkEscapes scans the \u escapes of a JSON text that decoded: in valid
// JSON a backslash occurs only inside strings, so no string tracking is
// needed. NUL and unpaired surrogates are refused.
func checkEscapes(raw []byte) error {
	hex4 := func(i int) (rune, bool) {
		if i+4 > len(raw) {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i:i+4]), 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(i + 1)
		i += 4
		switch {
		case !ok:
			return errorf(http.StatusBadRequest, "bad_json", "malformed \\u escape")
		case r == 0:
			return errorf(http.StatusBadRequest, "bad_json", "strings must not contain NUL (\\u0000)")
		case r >= 0xDC00 && r <= 0xDFFF:
			return errorf(http.StatusBadRequest, "bad_json", "invalid UTF-16 escape \\u%04x: a low surrogate without a high one", r)
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u'
			if ok {
				lo, ok = hex4(i + 3)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return errorf(http.StatusBadRequest, "bad_json", "invalid UTF-16 escape \\u%04x: a high surrogate without a low one", r)
			}
			i += 6
		}
	}
	return nil
}

// checkKeys walks one JSON value from dec and refuses a repeated key in
// any object, and nesting deeper than maxJSONDepth.
func checkKeys(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return errorf(http.StatusBadRequest, "bad_json", "JSON nested deeper than %d levels", maxJSONDepth)
	}
	t, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	switch t {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return jsonError(err)
			}
			k, _ := kt.(string)
			fk := strings.ToLower(k)
			if seen[fk] {
				return errorf(http.StatusBadRequest, "bad_json", "duplicate key %q", k)
			}
			seen[fk] = true
			if err := checkKeys(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		for dec.More() {
			if err := checkKeys(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	if err != nil && err != io.EOF {
		return jsonError(err)
	}
	return nil
}

// cleanName refuses a name or id (a path segment, a recipient, a message
// id, an Idempotency-Key) that is not valid UTF-8 or holds a control
// character: such a value would be stored, logged and shown in terminals
// as is.
func cleanName(field, v string) error {
	if !utf8.ValidString(v) {
		return badArg("%s: not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return badArg("%s %s: control characters are not allowed", field, strconv.QuoteToASCII(clip(v, 64)))
		}
	}
	return nil
}

// cleanNames applies cleanName to field/value pairs.
func cleanNames(kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := cleanName(kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// printable returns s, or s quoted with Go escapes when it holds control
// characters or invalid UTF-8: the audit log keeps what a refused request
// named without letting it carry terminal escapes to `waappliance audit`.
func printable(s string) string {
	if cleanName("", s) == nil {
		return s
	}
	return strconv.QuoteToASCII(s)
}
