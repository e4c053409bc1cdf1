package app_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"waappliance/api"
	"waappliance/internal/wasim"
)

// TestSandboxContactSendsEveryKind: through the tunnel, an integrator
// makes a sandbox contact send the session each kind; the session's
// WhatsApp client decrypts every one (it answers with a delivery receipt,
// not a retry receipt). The old text/reply_to form still works, and bad
// requests get their clear 4xx.
func TestSandboxContactSendsEveryKind(t *testing.T) {
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	var mu sync.Mutex
	receipts := map[string]string{}
	ta.SandboxServer().OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventClientReceipt {
			mu.Lock()
			if receipts[e.MessageID] != "retry" {
				receipts[e.MessageID] = e.Class
			}
			mu.Unlock()
		}
	})
	send := func(body string) string {
		t.Helper()
		r := do(t, cl, "POST", "/v1/sandbox/contacts/+15550002/messages", body)
		var out struct{ ID string }
		if r.Status != 202 || json.Unmarshal(r.Body, &out) != nil || out.ID == "" {
			t.Fatalf("%s: %d %s", body, r.Status, r.Body)
		}
		id := out.ID
		eventually(t, "the session decrypts "+body[:min(len(body), 60)], func() bool {
			mu.Lock()
			defer mu.Unlock()
			c, ok := receipts[id]
			if c == "retry" {
				t.Fatalf("the session could not decrypt %s", body)
			}
			return ok
		})
		return id
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	first := send(`{"session":"shop","text":"hello"}`)
	send(fmt.Sprintf(`{"session":"shop","reply_to":%q,"text":"a reply"}`, first))
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{7}, 2000)...)
	for _, body := range []string{
		fmt.Sprintf(`{"session":"shop","image":{"data":%q,"mimetype":"image/jpeg","caption":"a photo"}}`, b64(jpeg)),
		fmt.Sprintf(`{"session":"shop","video":{"data":%q,"video_note":true}}`, b64([]byte("not really an mp4"))),
		fmt.Sprintf(`{"session":"shop","audio":{"data":%q,"voice":true}}`, b64([]byte("OggS opus"))),
		fmt.Sprintf(`{"session":"shop","reply_to":%q,"document":{"data":%q,"mimetype":"application/pdf","filename":"invoice.pdf","caption":"yours"}}`, first, b64([]byte("%PDF-1.4"))),
		fmt.Sprintf(`{"session":"shop","sticker":{"data":%q}}`, b64([]byte("RIFF WEBP"))),
		`{"session":"shop","location":{"latitude":52.52,"longitude":13.405,"name":"Shop","address":"Unter den Linden 1"}}`,
		`{"session":"shop","contacts":[{"name":"Bob","phones":["+1 555 0100"]},{"vcard":"BEGIN:VCARD\nVERSION:3.0\nFN:Eve\nEND:VCARD"}]}`,
		fmt.Sprintf(`{"session":"shop","reaction":{"message":%q,"emoji":"👍"}}`, first),
		fmt.Sprintf(`{"session":"shop","edit":{"message":%q,"text":"hello!"}}`, first),
	} {
		send(body)
	}
	// A phone's photo, inline: the session downloads the same bytes.
	photo := append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 2<<20)...)
	rand.Read(photo[4:])
	big := send(fmt.Sprintf(`{"session":"shop","image":{"data":%q,"mimetype":"image/jpeg"}}`, b64(photo)))
	mid, _ := eventAbout(t, cl, "shop", "message.received", big)["media"].(map[string]any)["id"].(string)
	eventually(t, "the photo downloaded", func() bool {
		r := do(t, cl, "GET", "/v1/media/"+mid, nil)
		if r.Status == 200 && !bytes.Equal(r.Body, photo) {
			t.Fatalf("the session's photo: %d bytes, not the %d sent", len(r.Body), len(photo))
		}
		return r.Status == 200
	})
	poll := send(`{"session":"shop","poll":{"question":"tea?","options":["yes","no"],"selectable":1}}`)
	send(fmt.Sprintf(`{"session":"shop","vote":{"message":%q,"options":["no"]}}`, poll))
	send(fmt.Sprintf(`{"session":"shop","delete":{"message":%q}}`, first))

	for _, c := range []struct {
		name, body string
		status     int
		code, says string
	}{
		{"no content", `{"session":"shop"}`, 400, "invalid_argument", "exactly one content field"},
		{"two content fields", `{"session":"shop","text":"a","poll":{"question":"q","options":["a","b"]}}`, 400, "invalid_argument", "text, poll"},
		{"media without data", `{"session":"shop","image":{"mimetype":"image/jpeg"}}`, 400, "invalid_argument", "image.data"},
		{"media not base64", `{"session":"shop","image":{"data":"%%%"}}`, 400, "bad_json", ""},
		{"media over the cap", fmt.Sprintf(`{"session":"shop","document":{"data":%q}}`, b64(make([]byte, api.SandboxMaxMedia+1))), 413, "too_large", "at most"},
		{"body over the route's limit", fmt.Sprintf(`{"session":"shop","document":{"data":%q}}`, strings.Repeat("A", 4<<20+64<<10)), 413, "too_large", "request body over"},
		{"strict JSON still", fmt.Sprintf(`{"session":"shop","document":{"data":%q},"session":"shop"}`, b64(jpeg)), 400, "bad_json", "duplicate key"},
		{"location without longitude", `{"session":"shop","location":{"latitude":1}}`, 400, "invalid_argument", "longitude"},
		{"poll with one option", `{"session":"shop","poll":{"question":"q","options":["a"]}}`, 400, "invalid_argument", "poll"},
		{"reaction without emoji", fmt.Sprintf(`{"session":"shop","reaction":{"message":%q}}`, first), 400, "invalid_argument", "emoji"},
		{"card with a bad phone", `{"session":"shop","contacts":[{"name":"Bob","phones":["call me"]}]}`, 400, "invalid_argument", "phone"},
		{"edit of a message the contact did not send", `{"session":"shop","edit":{"message":"3EB0NOTSENT","text":"x"}}`, 404, "not_found", "did not send"},
		{"vote in an unknown poll", `{"session":"shop","vote":{"message":"3EB0NOPOLL","options":["a"]}}`, 404, "not_found", "poll"},
		{"vote for an option the poll lacks", fmt.Sprintf(`{"session":"shop","vote":{"message":%q,"options":["maybe"]}}`, poll), 400, "invalid_argument", "maybe"},
		{"unknown contact", `{"session":"shop","text":"x"}`, 404, "not_found", "no sandbox contact"},
		{"unknown field", `{"session":"shop","text":"x","gif":{}}`, 400, "unknown_field", "gif"},
	} {
		path := "/v1/sandbox/contacts/+15550002/messages"
		if c.name == "unknown contact" {
			path = "/v1/sandbox/contacts/+15550099/messages"
		}
		r := do(t, cl, "POST", path, c.body)
		wantError(t, r, c.status, c.code)
		if !strings.Contains(string(r.Body), c.says) {
			t.Errorf("%s: %s does not say %q", c.name, r.Body, c.says)
		}
	}

	// The inbox shows what the session sent, with its kind.
	if r := do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]string{"to": "+15550002", "text": "to Ada"}); r.Status != 202 {
		t.Fatalf("send: %d %s", r.Status, r.Body)
	}
	eventually(t, "the send in the inbox", func() bool {
		var out struct {
			Messages []struct{ Kind, Text string }
		}
		r := do(t, cl, "GET", "/v1/sandbox/contacts/+15550002/inbox", nil)
		if r.Status != 200 || r.JSON(&out) != nil {
			t.Fatalf("inbox: %d %s", r.Status, r.Body)
		}
		n := len(out.Messages)
		return n > 0 && out.Messages[n-1].Kind == "text" && out.Messages[n-1].Text == "to Ada"
	})
}
