package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// secretPrefix marks a Standard Webhooks secret; the rest is base64.
const secretPrefix = "whsec_"

// secretBytes is the size of a new secret (the spec asks for 24 to 64).
const secretBytes = 32

// NewSecret returns a fresh secret, "whsec_" + base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey decodes a whsec_ secret into the HMAC key.
func secretKey(secret string) ([]byte, error) {
	s, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("webhooks: a secret starts with %s", secretPrefix)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("webhooks: a secret is %s and base64", secretPrefix)
	}
	return k, nil
}

// signature is one v1 signature: base64 HMAC-SHA256 of id.timestamp.body.
func signature(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the webhook-signature header for a message signed with
// each of secrets (during a rotation, the new and the old one): "v1,<sig>"
// per secret, separated by spaces, as Standard Webhooks v1 has it.
func Sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	parts := make([]string, 0, len(secrets))
	for _, s := range secrets {
		k, err := secretKey(s)
		if err != nil {
			return "", err
		}
		parts = append(parts, "v1,"+signature(k, id, ts, body))
	}
	return strings.Join(parts, " "), nil
}

// Verify reports whether header (a webhook-signature value) holds a v1
// signature of id, ts and body made with secret. It is what a receiver
// does, without the timestamp tolerance check (the caller's).
func Verify(secret, header, id string, ts int64, body []byte) bool {
	k, err := secretKey(secret)
	if err != nil {
		return false
	}
	want := signature(k, id, ts, body)
	for _, p := range strings.Fields(header) {
		v, sig, ok := strings.Cut(p, ",")
		if ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
