package media

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// sof is a JPEG with only a frame header: marker m (0xc0 baseline, 0xc2
// progressive), w×h, components with their sampling factors.
func sof(m byte, w, h int, hv ...byte) []byte {
	b := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10}, "JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"...) // SOI, a JFIF APP0 to skip
	seg := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(len(hv))}
	for i, s := range hv {
		seg = append(seg, byte(i+1), s, 0)
	}
	b = append(b, 0xff, m, byte((len(seg)+2)>>8), byte(len(seg)+2))
	return append(append(b, seg...), 0xff, 0xd9)
}

func TestJPEGCost(t *testing.T) {
	dir := t.TempDir()
	mp := int64(4000 * 3000)
	for _, c := range []struct {
		name string
		b    []byte
		want int64
	}{
		{"baseline 4:2:0", sof(0xc0, 4000, 3000, 0x22, 0x11, 0x11), mp * 3 / 2},
		{"progressive 4:2:0", sof(0xc2, 4000, 3000, 0x22, 0x11, 0x11), mp * 3 / 2 * 5},
		{"baseline 4:4:4 (may be RGB)", sof(0xc0, 4000, 3000, 0x11, 0x11, 0x11), mp*3 + 4*mp},
		{"gray", sof(0xc0, 4000, 3000, 0x11), mp},
	} {
		path := filepath.Join(dir, "j")
		os.WriteFile(path, c.b, 0o600)
		f, _ := os.Open(path)
		got, ok := jpegCost(f, mp)
		f.Close()
		if !ok || got != c.want+64<<10 {
			t.Errorf("%s: %d %v, want %d", c.name, got, ok, c.want+64<<10)
		}
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(c.b)); err != nil || cfg.Width != 4000 {
			t.Errorf("%s: the test header does not parse: %v", c.name, err)
		}
	}
	// A typical phone photo (12 MP baseline 4:2:0) gets its thumbnail; the
	// same as progressive does not.
	if c, _ := jpegCostOf(t, sof(0xc0, 4000, 3000, 0x22, 0x11, 0x11), mp); c > MaxDecodeBytes {
		t.Errorf("a 12 MP baseline photo costs %d, over the cap", c)
	}
	if c, _ := jpegCostOf(t, sof(0xc2, 4000, 3000, 0x22, 0x11, 0x11), mp); c <= MaxDecodeBytes {
		t.Errorf("a 12 MP progressive photo costs %d, under the cap", c)
	}
}

func jpegCostOf(t *testing.T, b []byte, px int64) (int64, bool) {
	path := filepath.Join(t.TempDir(), "j")
	os.WriteFile(path, b, 0o600)
	f, _ := os.Open(path)
	defer f.Close()
	return jpegCost(f, px)
}
