package whatsapp

import (
	"encoding/json"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestContentRebuildsTheSame: every kind's message, built from its stored
// JSON, is the same message built twice and after a round trip through
// the outbox's content column — what a retry and a retry receipt after a
// restart rely on (the poll's secret, a reaction's or an edit's
// timestamp and a media upload come from the row, never drawn anew).
func TestContentRebuildsTheSame(t *testing.T) {
	up := &MediaState{ID: "m1", Type: "image/jpeg", Size: 3, SHA256: "ab", AppInfo: "WhatsApp Image Keys",
		Upload: &MediaUpload{URL: "https://mmg/x", DirectPath: "/v/x", MediaKey: []byte{1}, FileSHA256: []byte{2}, FileEncSHA256: []byte{3}, FileLength: 3}}
	target := &MessageRef{Chat: "15550002@s.whatsapp.net", Sender: "15550001@s.whatsapp.net", ID: "3EB0A", FromMe: true}
	mf := MediaFields{Media: "m1", Caption: "c"}
	for _, c := range []Content{
		Text("plain"),
		{Kind: KindText, Text: &TextContent{Body: "hi @+15550002", Mentions: []string{"+15550002"}}, ReplyTo: target},
		{Kind: KindImage, Image: &ImageContent{MediaFields: mf}, Media: up},
		{Kind: KindVideo, Video: &VideoContent{MediaFields: MediaFields{Media: "m1"}, VideoNote: true}, Media: up},
		{Kind: KindAudio, Audio: &AudioContent{Media: "m1", Voice: true}, Media: up},
		{Kind: KindDocument, Document: &DocumentContent{MediaFields: mf, Filename: "a.pdf"}, Media: up},
		{Kind: KindSticker, Sticker: &StickerContent{Media: "m1"}, Media: up},
		{Kind: KindLocation, Location: &LocationContent{Latitude: 1.5, Longitude: -2.5, Name: "n"}},
		{Kind: KindContacts, Contacts: &ContactsContent{{Name: "A", Phones: []string{"+15550002"}}}},
		{Kind: KindPoll, Poll: &PollContent{Question: "q", Options: []string{"a", "b"}, Selectable: 1}, Secret: make([]byte, 32)},
		{Kind: KindReaction, Reaction: &ReactionContent{Message: "3EB0A", Emoji: "👍"}, Target: target, AtMS: 1700000000000},
		{Kind: KindEdit, Edit: &EditContent{Message: "3EB0A", Text: "new"}, Target: target, AtMS: 1700000000000},
		{Kind: KindDelete, Delete: &DeleteContent{Message: "3EB0A"}, Target: target},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", c.Kind, err)
			continue
		}
		a, err := c.build()
		if err != nil {
			t.Errorf("%s: build: %v", c.Kind, err)
			continue
		}
		b, _ := json.Marshal(c)
		var back Content
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		again, err := back.build()
		if err != nil || !proto.Equal(a, again) {
			t.Errorf("%s: rebuilt from %s differs (%v):\n%v\n%v", c.Kind, b, err, a, again)
		}
	}
	// A media body before its upload does not build: the sender's prepare
	// step must come first.
	if _, err := (Content{Kind: KindImage, Image: &ImageContent{MediaFields: mf}, Media: &MediaState{ID: "m1"}}).build(); !errors.Is(err, errNotUploaded) {
		t.Errorf("image before its upload: %v", err)
	}
}
