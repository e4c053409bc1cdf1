package whatsapp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"waappliance/events"
	"waappliance/internal/pgtest"
)

func inboundText(chat, sender, id, text string) *waEvents.Message {
	c, s := types.NewJID(chat, types.DefaultUserServer), types.NewJID(sender, types.DefaultUserServer)
	s.Device = 3 // a redelivery may come from another device of the sender; the key uses the user
	return &waEvents.Message{
		Info:    types.MessageInfo{MessageSource: types.MessageSource{Chat: c, Sender: s}, ID: types.MessageID(id), Timestamp: time.Unix(1_700_000_000, 0)},
		Message: &waE2E.Message{Conversation: proto.String(text)},
	}
}

// inboundLID is inboundText as WhatsApp sends it today: from the sender's
// LID, with the phone number beside it (SenderAlt).
func inboundLID(lid, phone, id, text string) *waEvents.Message {
	m := inboundText(phone, phone, id, text)
	pn := m.Info.Sender
	m.Info.Chat, m.Info.Sender = types.NewJID(lid, types.HiddenUserServer), types.NewJID(lid, types.HiddenUserServer)
	m.Info.Sender.Device = pn.Device
	m.Info.SenderAlt = pn.ToNonAD()
	return m
}

// received lists the message.received events as "session chat-user id text".
func received(t *testing.T, e *Engine) []string {
	t.Helper()
	evs, err := e.cfg.Events.List(context.Background(), events.Filter{Limit: events.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Type != events.TypeMessageReceived {
			continue
		}
		var in InboundMessage
		if err := json.Unmarshal(ev.Data, &in); err != nil {
			t.Fatal(err)
		}
		chat, _ := types.ParseJID(in.Chat)
		out = append(out, ev.Session+" "+chat.User+" "+in.ID+" "+in.Text)
	}
	return out
}

// TestInboundRecordedOncePerMessage: a message delivered again with the same
// (session, chat, sender, id) is acked (the handler returns true) and
// writes no second event; the same id from another chat or sender, or in
// another session, is another message.
func TestInboundRecordedOncePerMessage(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, db := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		if _, err := e.Create(ctx, "desk"); err != nil {
			t.Fatal(err)
		}
		shop, _ := e.session("shop")
		desk, _ := e.session("desk")
		steps := []struct {
			s                      *session
			chat, sender, id, text string
		}{
			{shop, "15550002", "15550002", "3EB0A1", "hello"},
			{shop, "15550002", "15550002", "3EB0A1", "hello"},        // redelivered: acked, not logged
			{shop, "15550002", "15550002", "3EB0A1", "hello, again"}, // the id decides, not the content
			{shop, "15550003", "15550003", "3EB0A1", "same id, another chat"},
			{shop, "15550002", "15550004", "3EB0A1", "same chat and id, another sender"},
			{desk, "15550002", "15550002", "3EB0A1", "same message, another session"},
			{shop, "15550002", "15550002", "3EB0A2", "next"},
			{shop, "lid:123456789012345", "15550002", "3EB0A2", "next"}, // the same, addressed by LID: not logged again
			{shop, "lid:123456789012345", "15550002", "3EB0A4", "by LID"},
		}
		for i, st := range steps {
			m := inboundText(st.chat, st.sender, st.id, st.text)
			if lid, ok := strings.CutPrefix(st.chat, "lid:"); ok {
				m = inboundLID(lid, st.sender, st.id, st.text)
			}
			if !st.s.handle(nil, m) {
				t.Fatalf("step %d: not acked", i)
			}
		}
		want := []string{
			"shop 15550002 3EB0A1 hello",
			"shop 15550003 3EB0A1 same id, another chat",
			"shop 15550002 3EB0A1 same chat and id, another sender",
			"desk 15550002 3EB0A1 same message, another session",
			"shop 15550002 3EB0A2 next",
			"shop 15550002 3EB0A4 by LID", // events name the phone number whatsmeow gives beside the LID
		}
		got := received(t, e)
		if len(got) != len(want) {
			t.Fatalf("events:\n%q\nwant\n%q", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("event %d: %q, want %q", i, got[i], want[i])
			}
		}

		if in, _ := translate(inboundLID("123456789012345", "15550002", "3EB0A5", "x")); in.From != "15550002@s.whatsapp.net" || in.Chat != "15550002@s.whatsapp.net" {
			t.Fatalf("a LID-addressed message with its phone number: from %s chat %s", in.From, in.Chat)
		}
		if in, _ := translate(inboundLID("123456789012345", "", "3EB0A6", "x")); in.From != "123456789012345@lid" {
			t.Fatalf("a LID-addressed message without its phone number: from %s", in.From)
		}

		// Not durable: no ack, new message or repeat alike.
		db.Close()
		if shop.handle(nil, inboundText("15550002", "15550002", "3EB0A3", "lost?")) {
			t.Fatal("a message that was not recorded would be acked")
		}
	})
}

// TestRepeatedReceiptsIdempotent: receipts need no de-duplication of their
// own — a status only moves forward, in the transaction that writes its
// event, so a receipt delivered again (or one overtaken by a later one)
// changes nothing and writes no event, and is still acked.
func TestRepeatedReceiptsIdempotent(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		insertMessage(t, e, "3EB0OUT", StatusSent)
		s, _ := e.session("shop")
		rcpt := func(typ types.ReceiptType) *waEvents.Receipt {
			return &waEvents.Receipt{Type: typ, MessageIDs: []types.MessageID{"3EB0OUT"}}
		}
		for _, typ := range []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeDelivered, types.ReceiptTypeRead,
			types.ReceiptTypeRead, types.ReceiptTypeDelivered} {
			if !s.handle(nil, rcpt(typ)) {
				t.Fatalf("receipt %q not acked", typ)
			}
		}
		// The history starts at the row's "queued" (implied: no row of
		// its own), then one entry per forward move.
		if st, h := statusOf(t, e, "3EB0OUT"); st != StatusRead || len(h) != 4 || h[0] != StatusQueued {
			t.Fatalf("status %s, history %v; want read after queued>sent>delivered>read", st, h)
		}
		evs, _ := e.cfg.Events.List(context.Background(), events.Filter{})
		var statuses []string
		for _, ev := range evs {
			if ev.Type == events.TypeMessageStatus {
				var d struct{ Status string }
				json.Unmarshal(ev.Data, &d)
				statuses = append(statuses, d.Status)
			}
		}
		if len(statuses) != 2 || statuses[0] != StatusDelivered || statuses[1] != StatusRead {
			t.Fatalf("message.status events %v, want [delivered read]", statuses)
		}
	})
}

// TestInboundLIDWithoutPhoneNumber: a LID-addressed message that carries
// no phone number (one our phone resends on request) still names the
// number in its event when whatsmeow's LID store knows it, so it shares
// its de-duplication key with the same message under the number.
func TestInboundLIDWithoutPhoneNumber(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e, _ := newTestEngine(t, dsn, nil)
		ctx := context.Background()
		dev := e.container.NewDevice() // a paired device: its stores come with its first save
		own := types.NewJID("15550001", types.DefaultUserServer)
		own.Device = 2
		dev.ID = &own
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{}, AccountSignature: make([]byte, 64), AccountSignatureKey: dev.IdentityKey.Pub[:], DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil {
			t.Fatal(err)
		}
		cli := whatsmeow.NewClient(dev, nil)
		lid, pn := types.NewJID("123456789012345", types.HiddenUserServer), types.NewJID("15550002", types.DefaultUserServer)
		if err := cli.Store.LIDs.PutLIDMapping(ctx, lid, pn); err != nil {
			t.Fatal(err)
		}
		shop, _ := e.session("shop")
		byNumber := inboundText("15550002", "15550002", "3EB0B1", "hi")
		byLID := inboundLID(lid.User, "15550002", "3EB0B1", "hi")
		byLID.Info.SenderAlt = types.EmptyJID
		unknown := inboundLID("999999999999999", "15550009", "3EB0B2", "who")
		unknown.Info.SenderAlt = types.EmptyJID
		for _, m := range []*waEvents.Message{byNumber, byLID, unknown} {
			if !shop.handle(cli, m) {
				t.Fatal("not acked")
			}
		}
		got := received(t, e)
		if len(got) != 2 || got[0] != "shop 15550002 3EB0B1 hi" || got[1] != "shop 999999999999999 3EB0B2 who" {
			t.Fatalf("events %q; want the message once under its number, and the unknown LID as it came", got)
		}
	})
}
