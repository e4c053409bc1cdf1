package peers

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the length of a WireGuard key in bytes.
const KeyLen = 32

// Key is a WireGuard Curve25519 key (private, public or preshared).
type Key [KeyLen]byte

// ErrBadKey is returned by ParseKey for anything that is not a base64
// encoded 32-byte key.
var ErrBadKey = errors.New("invalid key: want 32 bytes in base64 (44 characters)")

// GeneratePrivateKey returns a new clamped Curve25519 private key.
func GeneratePrivateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// GenerateSymmetricKey returns 32 random bytes, for preshared keys.
func GenerateSymmetricKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// Public returns the public key of the private key k.
func (k Key) Public() Key {
	var pub Key
	out, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		// X25519 only fails for a low-order result, impossible with the basepoint.
		panic("peers: X25519 with basepoint: " + err.Error())
	}
	copy(pub[:], out)
	return pub
}

// String returns the base64 form used in wg-quick files.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the hex form used by wireguard-go's UAPI.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is all zeros.
func (k Key) IsZero() bool { return k == Key{} }

// ParseKey parses a base64 WireGuard key.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != 44 {
		return k, ErrBadKey
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return k, ErrBadKey
	}
	copy(k[:], b)
	return k, nil
}

// ParseHexKey parses the hex form of a key, as printed by wireguard-go's UAPI.
func ParseHexKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return k, ErrBadKey
	}
	copy(k[:], b)
	return k, nil
}
