package media

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspect: whatever the bytes, inspecting them as any accepted type
// neither panics nor makes a thumbnail larger than ThumbSize.
func FuzzInspect(f *testing.F) {
	for _, seed := range []string{
		"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00",
		"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
		"GIF89a\x10\x00\x10\x00\x80\x00\x00",
		"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\x01\x00\xff\x01\x00",
		"RIFF\x00\x00\x00\x00WEBPVP8L\x0a\x00\x00\x00\x2f\xff\xff\xff\xff",
		"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
		"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00\x00\x00\x00\x28moov\x00\x00\x00\x20mvhd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\xe8\x00\x00\x30\xd4",
		"\x00\x00\x00\x01moov\xff\xff\xff\xff\xff\xff\xff\xff",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "x")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		for typ := range types {
			it := Item{Type: typ, Size: int64(len(b))}
			inspect(fh, &it)
			if it.Width < 0 || it.Height < 0 || it.Seconds < 0 {
				t.Fatalf("%s: %+v", typ, it)
			}
		}
		for _, ti := range types {
			ti.sig(b)
		}
	})
}
