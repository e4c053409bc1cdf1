package webhooks

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// The example of the Standard Webhooks specification.
func TestSignSpecExample(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	got, err := Sign([]string{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func FuzzSignVerify(f *testing.F) {
	f.Add([]byte("0123456789abcdef01234567"), []byte("fedcba9876543210fedcba98"), "12", int64(1614265330), []byte(`{"id":12}`))
	f.Add([]byte{1}, []byte{2}, "", int64(0), []byte{})
	f.Fuzz(func(t *testing.T, k1, k2 []byte, id string, ts int64, body []byte) {
		// HMAC pads a key with zeros, so k and k+"\x00" are one key.
		if len(k1) == 0 || len(k2) == 0 || bytes.Equal(bytes.TrimRight(k1, "\x00"), bytes.TrimRight(k2, "\x00")) {
			return
		}
		s1, s2 := secretFrom(k1), secretFrom(k2)
		one, err := Sign([]string{s1}, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		both, err := Sign([]string{s2, s1}, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		if !Verify(s1, one, id, ts, body) || !Verify(s1, both, id, ts, body) || !Verify(s2, both, id, ts, body) {
			t.Fatalf("round trip failed: %q %q", one, both)
		}
		if Verify(s2, one, id, ts, body) {
			t.Fatal("another secret verified")
		}
		if Verify(s1, one, id+"x", ts, body) || Verify(s1, one, id, ts+1, body) || Verify(s1, one, id, ts, append(body, 'x')) {
			t.Fatal("a changed message verified")
		}
		if strings.Count(both, "v1,") != 2 || strings.Count(both, " ") != 1 {
			t.Fatalf("header %q", both)
		}
	})
}

func secretFrom(k []byte) string {
	return secretPrefix + b64(k)
}
