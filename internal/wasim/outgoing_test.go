package wasim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// TestControlKinds drives a standalone wasim through its control API
// (Remote): the contact sends every kind, the client receives each; what
// the client sends shows in the inbox with its kind and fields, media
// hashed after decryption; bad requests get ErrInvalid and
// ErrUnknownMessage back across the process boundary.
func TestControlKinds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctl, err := s.ServeControl(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Dial(ctx, ctl.String())
	if err != nil {
		t.Fatal(err)
	}
	tc := newClientWith(t, r.Prepare, false)
	qr, _ := tc.GetQRChannel(ctx)
	if err := tc.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := r.Scan(ctx, "15551801", (<-qr).Code); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "Connected", is[*events.Connected])
	if err := r.AddContact(ctx, "15551802", "Ada", -1); err != nil {
		t.Fatal(err)
	}
	me := tc.Store.ID.ToNonAD()
	send := func(o Outgoing) *events.Message {
		t.Helper()
		id, err := r.ContactSendKind(ctx, "15551802", me, o)
		if err != nil {
			t.Fatalf("%v: %v", o.fields(), err)
		}
		ev := tc.waitFor(t, o.fields()[0], anyMessage).(*events.Message)
		if ev.Info.ID != id {
			t.Fatalf("got %s, want %s", ev.Info.ID, id)
		}
		return ev
	}
	first := send(Outgoing{Text: proto.String("hello")})
	doc := []byte("%PDF-1.4 an invoice")
	ev := send(Outgoing{ReplyTo: first.Info.ID, Media: &Media{Kind: KindDocument, Data: doc, Mimetype: "application/pdf", Filename: "invoice.pdf", Caption: "yours"}})
	d := ev.Message.GetDocumentMessage()
	if got, err := tc.Download(ctx, d); err != nil || !bytes.Equal(got, doc) || d.GetFileName() != "invoice.pdf" || d.GetContextInfo().GetStanzaID() != first.Info.ID {
		t.Fatalf("document: %v %v", d, err)
	}
	ev = send(Outgoing{Location: &Location{Latitude: 1.5, Longitude: 2.5, Name: "here"}})
	if ev.Message.GetLocationMessage().GetDegreesLongitude() != 2.5 {
		t.Fatalf("location %v", ev.Message)
	}
	ev = send(Outgoing{Contacts: []Card{{Name: "Bob", VCard: "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nEND:VCARD"}}})
	if ev.Message.GetContactMessage().GetDisplayName() != "Bob" {
		t.Fatalf("contact %v", ev.Message)
	}
	poll := send(Outgoing{Poll: &Poll{Question: "tea?", Options: []string{"yes", "no"}, Selectable: 1}})
	ev = send(Outgoing{Vote: &Vote{Message: poll.Info.ID, Options: []string{"no"}}})
	if v, err := tc.DecryptPollVote(ctx, ev); err != nil || len(v.GetSelectedOptions()) != 1 {
		t.Fatalf("vote: %v %v", v, err)
	}
	send(Outgoing{Reaction: &Reaction{Message: first.Info.ID, Emoji: "❤️"}})
	ev = send(Outgoing{Edit: &Change{Message: first.Info.ID, Text: "hello!"}})
	if !ev.IsEdit {
		t.Fatal("not an edit")
	}
	ev = send(Outgoing{Delete: &Change{Message: first.Info.ID}})
	if ev.Message.GetProtocolMessage().GetType() != waE2E.ProtocolMessage_REVOKE {
		t.Fatalf("delete: %v", ev.Message)
	}
	if _, err := r.ContactSendKind(ctx, "15551802", me, Outgoing{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no content: %v", err)
	}
	if _, err := r.ContactSendKind(ctx, "15551802", me, Outgoing{Text: proto.String("a"), Poll: &Poll{}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("two fields: %v", err)
	}
	if _, err := r.ContactSendKind(ctx, "15551802", me, Outgoing{Edit: &Change{Message: "3EB0NOPE", Text: "x"}}); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("edit of an unknown message: %v", err)
	}
	if _, err := r.ContactSendKind(ctx, "15559999", me, Outgoing{Text: proto.String("a")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown contact: %v", err)
	}

	// What the client sends, as the inbox shows it.
	img := bytes.Repeat([]byte{0xff, 0xd8, 0xff}, 999)
	up, err := tc.Upload(ctx, img, whatsmeow.MediaImage)
	if err != nil {
		t.Fatal(err)
	}
	ada := first.Info.Chat
	sent := []*waE2E.Message{
		clientMedia(KindImage, up, "image/jpeg", "a photo", "", false, false),
		tc.BuildPollCreation("lunch?", []string{"a", "b"}, 1),
		{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(-1), DegreesLongitude: proto.Float64(-2)}},
		tc.BuildReaction(ada, first.Info.Sender, first.Info.ID, "👍"),
	}
	var ids []string
	for _, m := range sent {
		resp, err := tc.SendMessage(ctx, ada, m)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.ID)
	}
	resp, err := tc.SendMessage(ctx, ada, tc.BuildEdit(ada, ids[0], &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("the photo")}}))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, resp.ID)
	resp, err = tc.SendMessage(ctx, ada, tc.BuildRevoke(ada, tc.Store.ID.ToNonAD(), ids[2]))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, resp.ID)
	in, err := r.InboxOf(ctx, "15551802")
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != len(ids) {
		t.Fatalf("inbox has %d, want %d: %+v", len(in), len(ids), in)
	}
	sum := sha256.Sum256(img)
	if e := in[0]; e.Kind != KindImage || e.SHA256 != hex.EncodeToString(sum[:]) || e.Size != int64(len(img)) || e.Caption != "a photo" || e.Mimetype != "image/jpeg" || e.Error != "" {
		t.Errorf("image: %+v", e)
	}
	if e := in[1]; e.Kind != "poll" || e.Poll == nil || e.Poll.Question != "lunch?" || len(e.Poll.Options) != 2 || e.Poll.Selectable != 1 {
		t.Errorf("poll: %+v", e)
	}
	if e := in[2]; e.Kind != "location" || e.Location == nil || e.Location.Latitude != -1 {
		t.Errorf("location: %+v", e)
	}
	if e := in[3]; e.Kind != "reaction" || e.Reaction == nil || e.Reaction.Message != first.Info.ID || e.Reaction.Emoji != "👍" {
		t.Errorf("reaction: %+v", e)
	}
	if e := in[4]; e.Kind != "edit" || e.Edit == nil || e.Edit.Message != ids[0] || e.Edit.Text != "the photo" {
		t.Errorf("edit: %+v", e)
	}
	if e := in[5]; e.Kind != "delete" || e.Delete == nil || e.Delete.Message != ids[2] {
		t.Errorf("delete: %+v", e)
	}
}
