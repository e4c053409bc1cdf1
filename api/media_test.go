package api

import (
	"mime"
	"testing"
	"time"

	"waappliance/media"
)

// The body deadline: bodyTimeout plus a second per MiB declared, capped.
func TestBodyDeadline(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want time.Duration
	}{
		{-1, 10 * time.Second},
		{0, 10 * time.Second},
		{maxBody, 10*time.Second + 62500*time.Microsecond},
		{100 << 20, 110 * time.Second},
		{10 << 30, maxBodyTime},
	} {
		if got := bodyDeadline(10*time.Second, c.n); got != c.want {
			t.Errorf("bodyDeadline(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	for _, c := range []struct {
		it   media.Item
		disp string
	}{
		{media.Item{Type: "image/jpeg"}, ""},
		{media.Item{Type: "image/jpeg", Filename: "a.jpg"}, "inline"},
		{media.Item{Type: "application/pdf"}, "attachment"},
		{media.Item{Type: "application/pdf", Filename: `a "b"; c=d.pdf`}, "attachment"},
		{media.Item{Type: "text/plain", Filename: "Grüße.txt"}, "attachment"},
		{media.Item{Type: "image/svg+xml", Filename: "x.svg"}, "attachment"}, // not an image kind: never inline
	} {
		got := contentDisposition(c.it)
		if c.disp == "" {
			if got != "" {
				t.Errorf("%+v: %q, want none", c.it, got)
			}
			continue
		}
		d, params, err := mime.ParseMediaType(got)
		if err != nil || d != c.disp || params["filename"] != c.it.Filename {
			t.Errorf("%+v: %q parses as %q %v (%v)", c.it, got, d, params, err)
		}
	}
}
