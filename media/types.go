package media

import (
	"bytes"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"
)

// SniffLen is how many leading bytes the signature check reads (what
// http.DetectContentType considers).
const SniffLen = 512

// typeInfo is an accepted media type: its kind and the check of the
// content's own signature against it (head is the first SniffLen bytes, or
// all of a shorter item).
type typeInfo struct {
	kind string
	sig  func(head []byte) bool
}

// types are the media types the store accepts. Every one but
// application/octet-stream (a document of no particular type, which is
// what it says) is checked against its signature, so a declared type
// cannot smuggle other content (an HTML page as image/png).
var types = map[string]typeInfo{
	"image/jpeg": {KindImage, prefix("\xff\xd8\xff")},
	"image/png":  {KindImage, prefix("\x89PNG\r\n\x1a\n")},
	"image/gif":  {KindImage, anyPrefix("GIF87a", "GIF89a")},
	"image/webp": {KindImage, riff("WEBP")},
	"image/heic": {KindImage, heif}, // iPhone photos: sent as documents (Fits)
	"image/heif": {KindImage, heif},

	"video/mp4":       {KindVideo, ftyp},
	"video/3gpp":      {KindVideo, ftyp},
	"video/quicktime": {KindVideo, ftyp},
	"video/webm":      {KindVideo, prefix("\x1a\x45\xdf\xa3")},

	"audio/ogg":  {KindAudio, prefix("OggS")},
	"audio/mpeg": {KindAudio, mp3},
	"audio/mp4":  {KindAudio, ftyp},
	"audio/aac":  {KindAudio, adts},
	"audio/amr":  {KindAudio, prefix("#!AMR")},
	"audio/wav":  {KindAudio, riff("WAVE")},
	"audio/flac": {KindAudio, prefix("fLaC")},
	"audio/webm": {KindAudio, prefix("\x1a\x45\xdf\xa3")},

	"application/pdf":               {KindDocument, prefix("%PDF-")},
	"application/zip":               {KindDocument, zip},
	"application/epub+zip":          {KindDocument, zip},
	"application/gzip":              {KindDocument, prefix("\x1f\x8b")},
	"application/x-7z-compressed":   {KindDocument, prefix("7z\xbc\xaf\x27\x1c")},
	"application/vnd.rar":           {KindDocument, prefix("Rar!\x1a\x07")},
	"application/rtf":               {KindDocument, prefix("{\\rtf")},
	"application/msword":            {KindDocument, ole},
	"application/vnd.ms-excel":      {KindDocument, ole},
	"application/vnd.ms-powerpoint": {KindDocument, ole},
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   {KindDocument, zip},
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         {KindDocument, zip},
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": {KindDocument, zip},
	"application/vnd.oasis.opendocument.text":                                   {KindDocument, zip},
	"application/vnd.oasis.opendocument.spreadsheet":                            {KindDocument, zip},
	"application/vnd.oasis.opendocument.presentation":                           {KindDocument, zip},
	"application/json": {KindDocument, text},
	"text/plain":       {KindDocument, text},
	"text/csv":         {KindDocument, text},
	"text/calendar":    {KindDocument, text},
	"text/vcard":       {KindDocument, text},
	"text/x-vcard":     {KindDocument, text},

	"application/octet-stream": {KindDocument, func([]byte) bool { return true }},
}

// aliases are names clients (browsers, mimetypes tables) give accepted
// types; Normalize turns them into the type's own name.
var aliases = map[string]string{
	"image/jpg":                    "image/jpeg",
	"image/pjpeg":                  "image/jpeg",
	"audio/mp3":                    "audio/mpeg",
	"audio/x-m4a":                  "audio/mp4",
	"audio/m4a":                    "audio/mp4",
	"audio/opus":                   "audio/ogg", // .opus files are Ogg Opus
	"audio/x-wav":                  "audio/wav",
	"audio/vnd.wave":               "audio/wav",
	"audio/x-flac":                 "audio/flac",
	"application/x-pdf":            "application/pdf",
	"application/x-zip-compressed": "application/zip",
	"application/x-gzip":           "application/gzip",
	"application/x-rar-compressed": "application/vnd.rar",
	"text/x-vcalendar":             "text/calendar",
}

// Types lists the media types Put accepts under their own names, sorted
// (Accepted adds the aliases).
func Types() []string {
	out := make([]string, 0, len(types))
	for t := range types {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Accepted lists every Content-Type name Put takes: Types and the aliases
// Normalize maps onto them, sorted.
func Accepted() []string {
	out := Types()
	for a := range aliases {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// checkSignature reports whether head (the item's first SniffLen bytes)
// is content of the accepted type t.
func checkSignature(t string, head []byte) bool {
	ti, ok := types[t]
	return ok && ti.sig(head)
}

func prefix(p string) func([]byte) bool {
	return func(h []byte) bool { return bytes.HasPrefix(h, []byte(p)) }
}

func anyPrefix(ps ...string) func([]byte) bool {
	return func(h []byte) bool {
		for _, p := range ps {
			if bytes.HasPrefix(h, []byte(p)) {
				return true
			}
		}
		return false
	}
}

// riff is a RIFF container of the given form (WEBP).
func riff(form string) func([]byte) bool {
	return func(h []byte) bool {
		return len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == form
	}
}

// ftyp is an ISO base media file (MP4, 3GP, M4A, QuickTime): its first box
// is ftyp.
func ftyp(h []byte) bool { return len(h) >= 12 && string(h[4:8]) == "ftyp" }

// heif is an ISO media file whose major brand is HEIF's (HEIC photos).
func heif(h []byte) bool {
	if !ftyp(h) {
		return false
	}
	switch string(h[8:12]) {
	case "heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1":
		return true
	}
	return false
}

// mp3 is an MPEG audio stream: an ID3v2 tag or a frame sync (11 bits) of
// MPEG audio layer III/II/I.
func mp3(h []byte) bool {
	if bytes.HasPrefix(h, []byte("ID3")) {
		return true
	}
	return len(h) >= 2 && h[0] == 0xff && h[1]&0xe0 == 0xe0 && h[1]&0x06 != 0
}

// adts is a raw AAC stream: the ADTS sync word, layer 0.
func adts(h []byte) bool { return len(h) >= 2 && h[0] == 0xff && h[1]&0xf6 == 0xf0 }

// zip is a ZIP archive (and the office formats built on it), or an empty one.
func zip(h []byte) bool {
	return bytes.HasPrefix(h, []byte("PK\x03\x04")) || bytes.HasPrefix(h, []byte("PK\x05\x06"))
}

// ole is a Compound File (legacy .doc, .xls, .ppt).
func ole(h []byte) bool { return bytes.HasPrefix(h, []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")) }

// text is plain text: http.DetectContentType finds no binary bytes (it
// answers text/plain; HTML, XML and other markup are text/… too) and the
// bytes are UTF-8, but for a character cut off at the end of head.
func text(h []byte) bool {
	if !strings.HasPrefix(http.DetectContentType(h), "text/") {
		return false
	}
	for i := 0; i < len(h); {
		r, n := utf8.DecodeRune(h[i:])
		if r == utf8.RuneError && n <= 1 {
			return len(h) == SniffLen && len(h)-i < utf8.UTFMax && !utf8.FullRune(h[i:])
		}
		i += n
	}
	return true
}
