package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"

	"waappliance/media"
)

func testImage(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	return img
}

func encoded(t *testing.T, typ string, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	switch typ {
	case "image/png":
		err = png.Encode(&b, img)
	case "image/jpeg":
		err = jpeg.Encode(&b, img, nil)
	case "image/gif":
		err = gif.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func put(t *testing.T, e *env, typ string, b []byte) media.Item {
	t.Helper()
	it, err := e.st.Put(context.Background(), "p", typ, "", int64(len(b)), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put %s: %v", typ, err)
	}
	got, err := e.st.Get(context.Background(), it.ID) // what was stored
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestThumbnails(t *testing.T) {
	e := open(t, "", 0)
	for _, c := range []struct {
		typ          string
		w, h, tw, th int
	}{
		{"image/png", 300, 200, 96, 64},
		{"image/jpeg", 120, 480, 24, 96},
		{"image/gif", 50, 40, 50, 40}, // small: kept at its size
	} {
		it := put(t, e, c.typ, encoded(t, c.typ, testImage(c.w, c.h)))
		if it.Width != c.w || it.Height != c.h {
			t.Errorf("%s: %d×%d, want %d×%d", c.typ, it.Width, it.Height, c.w, c.h)
		}
		th, err := jpeg.Decode(bytes.NewReader(it.Thumbnail))
		if err != nil {
			t.Fatalf("%s: thumbnail: %v", c.typ, err)
		}
		if b := th.Bounds(); b.Dx() != c.tw || b.Dy() != c.th {
			t.Errorf("%s: thumbnail %v, want %d×%d", c.typ, b, c.tw, c.th)
		}
	}
}

// pngHeader is a PNG that declares w×h in its IHDR (CRC right) and then
// holds one tiny IDAT: what a decompression bomb looks like from outside.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// A small file that declares 60000×60000 (14 GB of RGBA) gets its
// dimensions and no thumbnail, without the memory.
func TestThumbnailRefusesBombs(t *testing.T) {
	e := open(t, "", 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	it := put(t, e, "image/png", pngHeader(60000, 60000))
	runtime.ReadMemStats(&after)
	if it.Width != 60000 || it.Height != 60000 || it.Thumbnail != nil {
		t.Fatalf("bomb: %d×%d, thumbnail %d bytes", it.Width, it.Height, len(it.Thumbnail))
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("inspecting the bomb allocated %d bytes", grew)
	}
	// Just over the cap: dimensions, no thumbnail; a broken image is
	// stored without either.
	side := uint32(3000) // 3000² × 4 B = 36 MB > MaxDecodeBytes
	if it := put(t, e, "image/png", pngHeader(side, side)); it.Thumbnail != nil || it.Width != int(side) {
		t.Fatalf("over the cap: %+v", it)
	}
	if it := put(t, e, "image/jpeg", []byte("\xff\xd8\xff garbage")); it.Width != 0 || it.Thumbnail != nil {
		t.Fatalf("garbage: %+v", it)
	}
}

func oggPage(granule int64, serial uint32, seq uint32, packet []byte) []byte {
	var b bytes.Buffer
	b.WriteString("OggS")
	b.WriteByte(0)
	b.WriteByte(0)
	binary.Write(&b, binary.LittleEndian, granule)
	binary.Write(&b, binary.LittleEndian, serial)
	binary.Write(&b, binary.LittleEndian, seq)
	binary.Write(&b, binary.LittleEndian, uint32(0)) // CRC: not checked
	b.WriteByte(1)
	b.WriteByte(byte(len(packet)))
	b.Write(packet)
	return b.Bytes()
}

func TestDurations(t *testing.T) {
	e := open(t, "", 0)
	head := append([]byte("OpusHead\x01\x01"), 0x38, 0x01) // pre-skip 312
	head = append(head, 0x80, 0xbb, 0, 0, 0, 0, 0)         // 48000 Hz, gain, mapping
	var ogg []byte
	ogg = append(ogg, oggPage(0, 7, 0, head)...)
	ogg = append(ogg, oggPage(0, 7, 1, []byte("OpusTags........"))...)
	ogg = append(ogg, bytes.Repeat(oggPage(48000, 7, 2, bytes.Repeat([]byte{1}, 200)), 500)...)
	ogg = append(ogg, oggPage(7*48000+312, 7, 3, []byte{1, 2, 3})...)
	if it := put(t, e, "audio/ogg; codecs=opus", ogg); it.Seconds != 7 {
		t.Errorf("ogg opus: %d s, want 7", it.Seconds)
	}

	box := func(typ string, content []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(content)))
		return append(append(b, typ...), content...)
	}
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000)  // timescale
	binary.BigEndian.PutUint32(mvhd[16:], 12600) // 12.6 s
	mp4 := box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2"))
	mp4 = append(mp4, box("mdat", bytes.Repeat([]byte{0}, 10000))...)
	mp4 = append(mp4, box("moov", append(box("mvhd", mvhd), box("trak", make([]byte, 50))...))...)
	if it := put(t, e, "video/mp4", mp4); it.Seconds != 13 {
		t.Errorf("mp4: %d s, want 13", it.Seconds)
	}
	// A moov box that claims more than the file: no duration, no panic.
	bad := append(box("ftyp", []byte("isom\x00\x00\x02\x00")), 0xff, 0xff, 0xff, 0xff, 'm', 'o', 'o', 'v')
	if it := put(t, e, "video/mp4", bad); it.Seconds != 0 {
		t.Errorf("broken mp4: %d s", it.Seconds)
	}
	// WebP sizes from the header.
	vp8x := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\x01\x00\xff\x01\x00")
	if it := put(t, e, "image/webp", vp8x); it.Width != 512 || it.Height != 512 {
		t.Errorf("webp: %d×%d", it.Width, it.Height)
	}
}
