package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
)

// What inspect learns, and what it leaves out:
//
//   - Images (JPEG, PNG, GIF): width and height from the header
//     (image.DecodeConfig), and a JPEG thumbnail of at most ThumbSize px
//     on its longer side, decoded with the standard library. WebP: width
//     and height from its VP8/VP8L/VP8X header, no thumbnail (no decoder
//     in the standard library).
//   - Audio: seconds of Ogg Opus and Ogg Vorbis (the last page's granule
//     position over the sample rate); of M4A as of MP4.
//   - Video: seconds of MP4/3GP/QuickTime from the movie header (mvhd).
//
// Left out: video thumbnails (they need a video decoder such as ffmpeg),
// voice-note waveforms (they need an Opus decoder), durations of MP3, AAC
// and AMR (no container field gives them without decoding frame by
// frame).

// ThumbSize is the longer side of a thumbnail, in pixels.
const ThumbSize = 96

// MaxDecodeBytes bounds the memory a thumbnail's decode may take: an image
// whose decode would need more, by decodeCost from its header before
// decoding, gets its dimensions but no thumbnail. 32 MiB takes a 20
// megapixel baseline JPEG (4:2:0), a 4 MP progressive one (the decoder
// keeps every coefficient until the last scan), a 4 MP RGBA PNG; a
// decompression bomb (a small file declaring 60000×60000) is refused from
// its header. One decode runs at a time (decodeSem), so concurrent
// uploads do not multiply it.
const MaxDecodeBytes = 32 << 20

var decodeSem = make(chan struct{}, 1)

func inspect(f *os.File, it *Item) {
	switch it.Type {
	case "image/jpeg", "image/png", "image/gif":
		inspectImage(f, it)
	case "image/webp":
		it.Width, it.Height = webpSize(f)
	case "audio/ogg":
		it.Seconds = oggSeconds(f, it.Size)
	case "video/mp4", "video/3gpp", "video/quicktime", "audio/mp4":
		it.Seconds = mp4Seconds(f, it.Size)
	}
}

func section(f *os.File) *bufio.Reader {
	return bufio.NewReader(io.NewSectionReader(f, 0, math.MaxInt64))
}

func inspectImage(f *os.File, it *Item) {
	var (
		cfg image.Config
		err error
	)
	decode := map[string]func(io.Reader) (image.Image, error){"image/jpeg": jpeg.Decode, "image/png": png.Decode, "image/gif": gif.Decode}[it.Type]
	switch it.Type {
	case "image/jpeg":
		cfg, err = jpeg.DecodeConfig(section(f))
	case "image/png":
		cfg, err = png.DecodeConfig(section(f))
	case "image/gif":
		cfg, err = gif.DecodeConfig(section(f))
	}
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return
	}
	it.Width, it.Height = cfg.Width, cfg.Height
	if cost, ok := decodeCost(f, it.Type, cfg); !ok || cost > MaxDecodeBytes {
		return
	}
	decodeSem <- struct{}{}
	defer func() { <-decodeSem }()
	img, err := decode(section(f)) // gif: the first frame only
	if err != nil {
		return
	}
	it.Thumbnail = thumbnail(img)
}

// decodeCost is what decoding the image in f takes, from its header: the
// decoded pixels (bytesPerPixel of its color model), twice for PNG (an
// interlaced one is decoded pass by pass into images of its own, then
// copied), and for JPEG what jpegCost finds.
func decodeCost(f *os.File, typ string, cfg image.Config) (int64, bool) {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch typ {
	case "image/jpeg":
		return jpegCost(f, px)
	case "image/png":
		return 2 * px * bytesPerPixel(cfg.ColorModel), true
	}
	return px * bytesPerPixel(cfg.ColorModel), true
}

// jpegCost is what image/jpeg allocates for a JPEG of px pixels, from its
// frame header (SOFn): one byte per sample of each component at its
// sampling, four more per sample for a progressive JPEG (its coefficients,
// kept until the last scan), and an RGBA image on top when every component
// is at full resolution (what an RGB or CMYK JPEG is converted into).
// false when no frame header is found in the first 64 KiB.
func jpegCost(f *os.File, px int64) (int64, bool) {
	var buf [64 << 10]byte
	n, _ := f.ReadAt(buf[:], 0)
	b := buf[:n]
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return 0, false
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return 0, false
		}
		m := b[i+1]
		if m == 0xff { // fill byte
			i++
			continue
		}
		if m == 0x01 || m >= 0xd0 && m <= 0xd7 { // no length
			i += 2
			continue
		}
		l := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if l < 2 {
			return 0, false
		}
		if m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc {
			seg := b[i+4 : min(len(b), i+2+l)]
			if len(seg) < 6 {
				return 0, false
			}
			nc := int(seg[5])
			if nc == 0 || len(seg) < 6+3*nc {
				return 0, false
			}
			hmax, vmax := 1, 1
			for c := 0; c < nc; c++ {
				hv := seg[6+3*c+1]
				hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
			}
			var samples int64
			full := nc >= 3
			for c := 0; c < nc; c++ {
				hv := seg[6+3*c+1]
				h, v := max(1, int(hv>>4)), max(1, int(hv&15))
				samples += px * int64(h*v) / int64(hmax*vmax)
				full = full && h == hmax && v == vmax
			}
			cost := samples
			if m == 0xc2 || m == 0xc6 || m == 0xca || m == 0xce { // progressive
				cost += 4 * samples
			}
			if full {
				cost += 4 * px
			}
			return cost + 64<<10, true
		}
		i += 2 + l
	}
	return 0, false
}

// bytesPerPixel is what a decoded pixel of model m takes (the worst case:
// YCbCr as 4:4:4).
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// thumbnail scales img down to at most ThumbSize px on its longer side
// (never up), each pixel the mean of a 4×4 grid of samples of its source
// area, as a JPEG.
func thumbnail(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := w, h
	if w > ThumbSize || h > ThumbSize {
		if w >= h {
			tw, th = ThumbSize, max(1, h*ThumbSize/w)
		} else {
			tw, th = max(1, w*ThumbSize/h), ThumbSize
		}
	}
	out := image.NewRGBA(image.Rect(0, 0, tw, th))
	const n = 4
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			var r, g, bl, a uint32
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					px := b.Min.X + ((x*n+sx)*w+w/2)/(tw*n)
					py := b.Min.Y + ((y*n+sy)*h+h/2)/(th*n)
					cr, cg, cb, ca := img.At(min(px, b.Max.X-1), min(py, b.Max.Y-1)).RGBA()
					r, g, bl, a = r+cr, g+cg, bl+cb, a+ca
				}
			}
			// Premultiplied: composite onto white, as JPEG has no alpha.
			white := uint32(n*n*0xffff) - a
			out.SetRGBA(x, y, color.RGBA{uint8((r + white) / (n * n) >> 8), uint8((g + white) / (n * n) >> 8), uint8((bl + white) / (n * n) >> 8), 0xff})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: 75}); err != nil {
		return nil
	}
	return buf.Bytes()
}

// webpSize reads a WebP's canvas size from its first chunk.
func webpSize(f *os.File) (w, h int) {
	var hd [30]byte
	if n, _ := f.ReadAt(hd[:], 0); n < 30 || string(hd[:4]) != "RIFF" || string(hd[8:12]) != "WEBP" {
		return 0, 0
	}
	switch string(hd[12:16]) {
	case "VP8 ": // lossy: frame tag (3), start code (3), then 14-bit sizes
		if hd[23] != 0x9d || hd[24] != 0x01 || hd[25] != 0x2a {
			return 0, 0
		}
		return int(binary.LittleEndian.Uint16(hd[26:28]) & 0x3fff), int(binary.LittleEndian.Uint16(hd[28:30]) & 0x3fff)
	case "VP8L": // lossless: signature 0x2f, then 14 bits each, minus one
		if hd[20] != 0x2f {
			return 0, 0
		}
		v := binary.LittleEndian.Uint32(hd[21:25])
		return int(v&0x3fff) + 1, int(v>>14&0x3fff) + 1
	case "VP8X": // extended: 24-bit canvas sizes, minus one
		return int(uint32(hd[24])|uint32(hd[25])<<8|uint32(hd[26])<<16) + 1, int(uint32(hd[27])|uint32(hd[28])<<8|uint32(hd[29])<<16) + 1
	}
	return 0, 0
}

// oggSeconds is an Ogg Opus or Vorbis stream's duration: the granule
// position of its last page (searched for in the last 64 KiB: a page is at
// most 65,307 bytes) minus Opus's pre-skip, over the sample rate (48 kHz
// for Opus, the Vorbis identification header's).
func oggSeconds(f *os.File, size int64) int {
	var first [64]byte
	if n, _ := f.ReadAt(first[:], 0); n < 64 || string(first[:4]) != "OggS" {
		return 0
	}
	// The first page holds the codec's identification packet alone.
	if 27+int(first[26]) >= len(first) {
		return 0
	}
	body := first[27+int(first[26]):]
	var rate, preSkip int64
	switch {
	case bytes.HasPrefix(body, []byte("OpusHead")) && len(body) >= 12:
		rate, preSkip = 48000, int64(binary.LittleEndian.Uint16(body[10:12]))
	case bytes.HasPrefix(body, []byte("\x01vorbis")) && len(body) >= 16:
		rate = int64(binary.LittleEndian.Uint32(body[12:16]))
	default:
		return 0
	}
	serial := binary.LittleEndian.Uint32(first[14:18])
	off := max(0, size-(64<<10))
	tail := make([]byte, size-off)
	if n, _ := f.ReadAt(tail, off); int64(n) != size-off {
		return 0
	}
	for i := len(tail) - 27; i >= 0; i-- {
		if tail[i] != 'O' || string(tail[i:i+4]) != "OggS" || tail[i+4] != 0 || binary.LittleEndian.Uint32(tail[i+14:i+18]) != serial {
			continue
		}
		g := int64(binary.LittleEndian.Uint64(tail[i+6 : i+14]))
		if g <= 0 || rate <= 0 {
			return 0
		}
		return roundSeconds(g-preSkip, rate)
	}
	return 0
}

// mp4Seconds is an ISO media file's duration from moov/mvhd, reading box
// headers only.
func mp4Seconds(f *os.File, size int64) int {
	moov, moovSize, ok := findBox(f, 0, size, "moov")
	if !ok {
		return 0
	}
	mvhd, mvhdSize, ok := findBox(f, moov, moov+moovSize, "mvhd")
	if !ok || mvhdSize < 32 {
		return 0
	}
	var b [32]byte
	if n, _ := f.ReadAt(b[:], mvhd); n < 32 {
		return 0
	}
	var scale, dur int64
	if b[0] == 1 { // version 1: 64-bit times
		scale, dur = int64(binary.BigEndian.Uint32(b[20:24])), int64(binary.BigEndian.Uint64(b[24:32]))
	} else {
		scale, dur = int64(binary.BigEndian.Uint32(b[12:16])), int64(binary.BigEndian.Uint32(b[16:20]))
	}
	if scale <= 0 || dur <= 0 {
		return 0
	}
	return roundSeconds(dur, scale)
}

// findBox finds the box of type typ among the boxes in [from, to) and
// returns where its content starts and its content's length.
func findBox(f *os.File, from, to int64, typ string) (start, n int64, ok bool) {
	for off := from; off+8 <= to; {
		var h [16]byte
		if k, _ := f.ReadAt(h[:8], off); k < 8 {
			return 0, 0, false
		}
		size, head := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
		switch size {
		case 0: // to the end
			size = to - off
		case 1: // 64-bit size follows
			if k, _ := f.ReadAt(h[8:16], off+8); k < 8 {
				return 0, 0, false
			}
			size, head = int64(binary.BigEndian.Uint64(h[8:16])), 16
		}
		if size < head || off+size > to {
			return 0, 0, false
		}
		if string(h[4:8]) == typ {
			return off + head, size - head, true
		}
		off += size
	}
	return 0, 0, false
}

// roundSeconds is n/rate rounded to the nearest second, at least 1 for
// anything that lasts.
func roundSeconds(n, rate int64) int {
	if n <= 0 {
		return 0
	}
	return int(max(1, (n+rate/2)/rate))
}
