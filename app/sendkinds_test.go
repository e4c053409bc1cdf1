package app_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"waappliance/internal/wasim"
	"waappliance/internal/wgclient"
)

// kindsSandbox is a sandbox with session shop (+15550001) paired and the
// contact Ada (+15550002), whose wasim contact the test reads directly.
func kindsSandbox(t *testing.T) (*testAppliance, *wgclient.Client, *wasim.Contact) {
	t.Helper()
	ta, cl := newSandbox(t)
	pairSession(t, cl, "shop", "+15550001")
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	ct, err := ta.SandboxServer().Contact("15550002")
	if err != nil {
		t.Fatal(err)
	}
	return ta, cl, ct
}

// received waits until the contact decrypted message id.
func received(t *testing.T, ct *wasim.Contact, id string) *waE2E.Message {
	t.Helper()
	var msg *waE2E.Message
	eventually(t, "message "+id+" at the contact", func() bool {
		for _, r := range ct.Inbox() {
			if r.ID == id {
				msg = r.Message
				return true
			}
		}
		return false
	})
	return msg
}

// sendKind posts body (JSON text) and wants 202; it returns the answer.
func sendKind(t *testing.T, cl *wgclient.Client, body string) map[string]any {
	t.Helper()
	r := do(t, cl, "POST", "/v1/sessions/shop/messages", body)
	var m map[string]any
	if r.Status != 202 || json.Unmarshal(r.Body, &m) != nil {
		t.Fatalf("send %s: %d %s", body, r.Status, r.Body)
	}
	return m
}

// TestSendKindsThroughTheTunnel: the API takes exactly one content field
// (400 naming what came otherwise), answers with the kind and its content
// in API terms, and the contact gets what was asked; a poll replayed under
// its Idempotency-Key is the original (one poll, one secret); chat
// actions reach WhatsApp; every bad input leaves the outbox as it was.
func TestSendKindsThroughTheTunnel(t *testing.T) {
	ta, cl, ct := kindsSandbox(t)
	rows := func() int {
		var n int
		if err := ta.DB().QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	loc := sendKind(t, cl, `{"to":"+15550002","location":{"latitude":-33.8568,"longitude":151.2153,"name":"Opera House"}}`)
	if loc["kind"] != "location" || fmt.Sprint(loc["location"]) != "map[latitude:-33.8568 longitude:151.2153 name:Opera House]" {
		t.Errorf("the answer shows %v", loc)
	}
	if lm := received(t, ct, loc["id"].(string)).GetLocationMessage(); lm.GetDegreesLatitude() != -33.8568 || lm.GetDegreesLongitude() != 151.2153 || lm.GetName() != "Opera House" {
		t.Errorf("location arrived as %v", lm)
	}
	react := sendKind(t, cl, fmt.Sprintf(`{"to":"+15550002","reaction":{"message":%q,"emoji":"🎭"}}`, loc["id"]))
	if rm := received(t, ct, react["id"].(string)).GetReactionMessage(); rm.GetKey().GetID() != loc["id"] || rm.GetText() != "🎭" || !rm.GetKey().GetFromMe() {
		t.Errorf("reaction arrived as %v", rm)
	}

	// A poll, twice under one key: the original, sent once.
	pollBody := `{"to":"+15550002","poll":{"question":"Which day?","options":["Mon","Tue"],"selectable":1}}`
	key := map[string]string{"Idempotency-Key": "poll-1"}
	first, err := cl.DoWithHeader(t.Context(), "POST", "/v1/sessions/shop/messages", pollBody, key)
	if err != nil || first.Status != 202 {
		t.Fatalf("poll: %v %d %s", err, first.Status, first.Body)
	}
	again, err := cl.DoWithHeader(t.Context(), "POST", "/v1/sessions/shop/messages", pollBody, key)
	var p1, p2 map[string]any
	json.Unmarshal(first.Body, &p1)
	if err != nil || again.Status != 200 || again.Header.Get("Idempotent-Replayed") != "true" || json.Unmarshal(again.Body, &p2) != nil || p2["id"] != p1["id"] || p2["kind"] != "poll" {
		t.Fatalf("poll replay: %v %d %s", err, again.Status, again.Body)
	}
	other, _ := cl.DoWithHeader(t.Context(), "POST", "/v1/sessions/shop/messages", strings.Replace(pollBody, "Tue", "Wed", 1), key)
	wantError(t, other, 422, "idempotency_conflict")
	pm := received(t, ct, p1["id"].(string)).GetPollCreationMessage()
	if pm.GetName() != "Which day?" || len(pm.GetOptions()) != 2 || pm.GetOptions()[1].GetOptionName() != "Tue" {
		t.Errorf("poll arrived as %v", pm)
	}
	if got := do(t, cl, "GET", "/v1/sessions/shop/messages/"+p1["id"].(string), nil); !strings.Contains(string(got.Body), `"poll":{"question":"Which day?","options":["Mon","Tue"],"selectable":1}`) {
		t.Errorf("GET shows %s", got.Body)
	}

	// Chat actions: a read receipt for their message, presence.
	theirs, err := ct.Send(t.Context(), types.NewJID("15550001", types.DefaultUserServer), "are you there?")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "their message received", func() bool {
		return do(t, cl, "POST", "/v1/sessions/shop/chats/+15550002/read", map[string]any{"ids": []string{theirs}}).Status == 200
	})
	for _, st := range []string{"typing", "recording", "paused"} {
		if r := do(t, cl, "POST", "/v1/sessions/shop/chats/+15550002/presence", map[string]string{"state": st}); r.Status != 200 {
			t.Errorf("presence %s: %d %s", st, r.Status, r.Body)
		}
	}
	eventually(t, "the read receipt and the chat states at the contact", func() bool {
		return slices.Contains(ct.ReadReceipts(), theirs) && strings.Join(ct.ChatPresence(), ",") == "composing,composing/audio,paused"
	})

	before := rows()
	msgs := "/v1/sessions/shop/messages"
	for _, c := range []struct {
		what, body string
		status     int
		code, says string
	}{
		{"two content fields", `{"to":"+15550002","text":"hi","image":{"media":"m1"}}`, 400, "invalid_argument", "exactly one of text, image, video, audio, document, sticker, location, contacts, poll, reaction, edit, delete; got text, image"},
		{"no content", `{"to":"+15550002"}`, 400, "invalid_argument", "; got none"},
		{"mentions without text", `{"to":"+15550002","location":{"latitude":1,"longitude":2},"mentions":["+15550002"]}`, 400, "invalid_argument", "mentions: only with text"},
		{"link preview", `{"to":"+15550002","text":"see https://example.com","link_preview":true}`, 400, "invalid_argument", "link_preview: not supported"},
		{"unknown field in a kind", `{"to":"+15550002","location":{"latitude":1,"longitude":2,"zoom":3}}`, 400, "unknown_field", "zoom"},
		{"location off the globe", `{"to":"+15550002","location":{"latitude":100,"longitude":2}}`, 400, "invalid_argument", "latitude"},
		{"poll of one option", `{"to":"+15550002","poll":{"question":"?","options":["a"]}}`, 400, "invalid_argument", "options"},
		{"reaction to no message", `{"to":"+15550002","reaction":{"message":"3EB0NOSUCH","emoji":"x"}}`, 404, "not_found", "no such message"},
		{"edit of theirs", fmt.Sprintf(`{"to":"+15550002","edit":{"message":%q,"text":"x"}}`, theirs), 409, "not_own_message", ""},
		{"delete of theirs", fmt.Sprintf(`{"to":"+15550002","delete":{"message":%q}}`, theirs), 409, "not_own_message", ""},
		{"edit of a reaction", fmt.Sprintf(`{"to":"+15550002","edit":{"message":%q,"text":"x"}}`, react["id"]), 409, "wrong_message_kind", ""},
		{"reaction with reply_to", fmt.Sprintf(`{"to":"+15550002","reply_to":%q,"reaction":{"message":%q,"emoji":"x"}}`, loc["id"], loc["id"]), 400, "invalid_argument", "reply_to"},
	} {
		r := do(t, cl, "POST", msgs, c.body)
		if r.Status != c.status || !strings.Contains(string(r.Body), `"code":"`+c.code+`"`) || !strings.Contains(string(r.Body), c.says) {
			t.Errorf("%s: %d %s; want %d %s saying %q", c.what, r.Status, r.Body, c.status, c.code, c.says)
		}
	}
	for _, c := range []struct {
		what, path string
		body       any
		status     int
	}{
		{"read of an unknown id", "/v1/sessions/shop/chats/+15550002/read", map[string]any{"ids": []string{"3EB0NOSUCH"}}, 404},
		{"read of no ids", "/v1/sessions/shop/chats/+15550002/read", map[string]any{"ids": []string{}}, 400},
		{"presence of no state", "/v1/sessions/shop/chats/+15550002/presence", map[string]string{"state": "dancing"}, 400},
		{"presence in a bad chat", "/v1/sessions/shop/chats/15550002/presence", map[string]string{"state": "typing"}, 400},
	} {
		if r := do(t, cl, "POST", c.path, c.body); r.Status != c.status {
			t.Errorf("%s: %d %s; want %d", c.what, r.Status, r.Body, c.status)
		}
	}
	if n := rows(); n != before {
		t.Errorf("the refusals left %d outbox rows", n-before)
	}
}

// TestSendMediaThroughTheTunnel: media the peer uploaded (POST /v1/media) goes out as the
// kind asked, with its caption and file name, and the contact's download
// has the same bytes; a type that does not fit the kind is a 400 naming
// the problem, an unknown id or another peer's upload a 404, and none of
// them leaves an outbox row.
func TestSendMediaThroughTheTunnel(t *testing.T) {
	ta, cl, ct := kindsSandbox(t)
	ms := ta.Media()
	putAs := func(peer, typ, name string, b []byte) string {
		it, err := ms.Put(t.Context(), peer, typ, name, int64(len(b)), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return it.ID
	}
	jpeg := append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte("photo"), 50000)...)
	pdf := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("invoice "), 100000)...)
	// The peer's own uploads go through the tunnel; another peer's is
	// stored under its name.
	img, doc := mustUpload(t, cl, "image/jpeg", "", jpeg).ID, mustUpload(t, cl, "application/pdf", "?filename=invoice.pdf", pdf).ID
	other := putAs("somebody", "image/jpeg", "", jpeg)

	m := sendKind(t, cl, fmt.Sprintf(`{"to":"+15550002","image":{"media":%q,"caption":"fresh today"}}`, img))
	if m["kind"] != "image" || fmt.Sprint(m["image"]) != fmt.Sprintf("map[caption:fresh today media:%s]", img) {
		t.Errorf("the answer shows %v", m)
	}
	d := sendKind(t, cl, fmt.Sprintf(`{"to":"+15550002","document":{"media":%q,"caption":"December"}}`, doc))
	for _, c := range []struct {
		id   string
		data []byte
		ok   func(*waE2E.Message) bool
	}{
		{m["id"].(string), jpeg, func(x *waE2E.Message) bool { return x.GetImageMessage().GetCaption() == "fresh today" }},
		{d["id"].(string), pdf, func(x *waE2E.Message) bool {
			return x.GetDocumentMessage().GetFileName() == "invoice.pdf" && x.GetDocumentMessage().GetCaption() == "December"
		}},
	} {
		received(t, ct, c.id)
		for _, r := range ct.Inbox() {
			if r.ID != c.id {
				continue
			}
			if !c.ok(r.Message) {
				t.Errorf("%s arrived as %v", c.id, r.Message)
			}
			got, err := ct.Media(r)
			if err != nil || sha256.Sum256(got) != sha256.Sum256(c.data) {
				t.Errorf("%s: the contact's download differs (%v)", c.id, err)
			}
		}
	}

	var before int
	ta.DB().QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&before)
	for _, c := range []struct {
		what, body string
		status     int
		says       string
	}{
		{"a PDF as an image", fmt.Sprintf(`{"to":"+15550002","image":{"media":%q}}`, doc), 400, "application/pdf, which WhatsApp does not take as an image (want image/jpeg, image/png)"},
		{"a JPEG as a sticker", fmt.Sprintf(`{"to":"+15550002","sticker":{"media":%q}}`, img), 400, "want image/webp"},
		{"an unknown media id", `{"to":"+15550002","video":{"media":"m_nosuchthing"}}`, 404, "no such media item"},
		{"another peer's media", fmt.Sprintf(`{"to":"+15550002","image":{"media":%q}}`, other), 404, "no such media item"},
		{"a caption on audio", fmt.Sprintf(`{"to":"+15550002","audio":{"media":%q,"caption":"x"}}`, img), 400, "unknown field"},
	} {
		r := do(t, cl, "POST", "/v1/sessions/shop/messages", c.body)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.says) {
			t.Errorf("%s: %d %s; want %d saying %q", c.what, r.Status, r.Body, c.status, c.says)
		}
	}
	var after int
	ta.DB().QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&after)
	if after != before {
		t.Errorf("the refusals left %d outbox rows", after-before)
	}
}
