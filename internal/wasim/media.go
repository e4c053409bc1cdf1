package wasim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// Media: media_conn points clients at wasim itself; uploads (POST
// /mms/{type}/{token}) are stored in memory under a direct path, and
// downloads (GET of that path) return them. Blobs are encrypted by the
// client exactly as for WhatsApp, so a contact decrypts them with the media
// key from the message.

const maxBlob = 64 << 20

func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/mms/"):
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBlob))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		path := s.storeBlob(b)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"url": "https://mmg.whatsapp.net" + path, "direct_path": path})
		return true
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v/"):
		s.mu.Lock()
		b, ok := s.blobs[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return true
		}
		w.Write(b)
		return true
	}
	return false
}

func (s *Server) storeBlob(b []byte) string {
	var id [12]byte
	rand.Read(id[:])
	p := "/v/t62.7118-24/wasim-" + hex.EncodeToString(id[:])
	s.mu.Lock()
	s.blobs[p] = b
	s.mu.Unlock()
	return p + "?ccb=11-4"
}

func mediaKeys(key []byte, info string) (iv, cipherKey, macKey []byte) {
	x := hkdfutil.SHA256(key, nil, []byte(info), 112)
	return x[:16], x[16:48], x[48:80]
}

const imageInfo = "WhatsApp Image Keys"

func encryptMedia(plain, key []byte, info string) ([]byte, error) {
	iv, ck, mk := mediaKeys(key, info)
	block, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	h := hmac.New(sha256.New, mk)
	h.Write(iv)
	h.Write(ct)
	return append(ct, h.Sum(nil)[:10]...), nil
}

func decryptMedia(file, key []byte, info string) ([]byte, error) {
	if len(file) < 10+aes.BlockSize || (len(file)-10)%aes.BlockSize != 0 {
		return nil, errors.New("wasim: media file has a bad length")
	}
	iv, ck, mk := mediaKeys(key, info)
	ct, mac := file[:len(file)-10], file[len(file)-10:]
	h := hmac.New(sha256.New, mk)
	h.Write(iv)
	h.Write(ct)
	if !hmac.Equal(h.Sum(nil)[:10], mac) {
		return nil, errors.New("wasim: media MAC mismatch")
	}
	block, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errors.New("wasim: bad media padding")
	}
	return out[:len(out)-pad], nil
}

// Image returns the decrypted image a received message carries.
func (ct *Contact) Image(r Received) ([]byte, error) {
	img := r.Message.GetImageMessage()
	if img == nil {
		return nil, errors.New("wasim: not an image message")
	}
	path := img.GetDirectPath()
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	ct.srv.mu.Lock()
	file, ok := ct.srv.blobs[path]
	ct.srv.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("wasim: no uploaded media at %s", img.GetDirectPath())
	}
	if sum := sha256.Sum256(file); !bytes.Equal(sum[:], img.GetFileEncSHA256()) {
		return nil, errors.New("wasim: encrypted media hash mismatch")
	}
	return decryptMedia(file, img.GetMediaKey(), imageInfo)
}

// SendImage makes the contact send an image (encrypted and stored as an
// upload would be) with a caption.
func (ct *Contact) SendImage(ctx context.Context, to types.JID, data []byte, mimetype, caption string) (string, error) {
	key := make([]byte, 32)
	rand.Read(key)
	file, err := encryptMedia(data, key, imageInfo)
	if err != nil {
		return "", err
	}
	path := ct.srv.storeBlob(file)
	encSum, sum := sha256.Sum256(file), sha256.Sum256(data)
	return ct.SendMessage(ctx, to, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: proto.String("https://mmg.whatsapp.net" + path), DirectPath: proto.String(path), MediaKey: key,
		FileEncSHA256: encSum[:], FileSHA256: sum[:], FileLength: proto.Uint64(uint64(len(data))),
		Mimetype: proto.String(mimetype), Caption: proto.String(caption)}})
}
