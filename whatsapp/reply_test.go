package whatsapp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
	"waappliance/internal/wasim"
	"waappliance/whatsapp"
)

// arrivals records what wasim's contacts decrypt, by message id (the last
// copy: a retry's answer replaces the first).
type arrivals struct {
	mu sync.Mutex
	m  map[string][]*waE2E.Message
}

func watchArrivals(srv *wasim.Server) *arrivals {
	a := &arrivals{m: map[string][]*waE2E.Message{}}
	srv.OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventContactReceived {
			a.mu.Lock()
			a.m[e.MessageID] = append(a.m[e.MessageID], e.Message)
			a.mu.Unlock()
		}
	})
	return a
}

func (a *arrivals) of(id string) []*waE2E.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*waE2E.Message(nil), a.m[id]...)
}

func sendText(t *testing.T, e *whatsapp.Engine, to, text, replyTo string) (whatsapp.Message, error) {
	t.Helper()
	req := whatsapp.SendRequest{To: to, Content: whatsapp.Text(text), Peer: "p"}
	if replyTo != "" {
		req.Content.ReplyTo = &whatsapp.MessageRef{ID: replyTo}
	}
	m, _, err := e.Send(context.Background(), "shop", req)
	return m, err
}

// TestRepliesQuoteTheRightMessage: a reply names the message by the id the
// API showed, and the contact's WhatsApp gets the quote right both ways —
// a reply to our own message quotes us as its sender, a reply to theirs
// quotes them. Unknown ids, and ids of another session, are
// ErrReplyNotFound (404).
func TestRepliesQuoteTheRightMessage(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		got := watchArrivals(r.srv)
		e := r.engine(t)
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		r.pair(t, e, "shop", "15550001")
		if err := r.srv.AddContact(ctx, "15550002", "Ada", -1); err != nil {
			t.Fatal(err)
		}
		ct, err := r.srv.Contact("15550002")
		if err != nil {
			t.Fatal(err)
		}
		quote := func(id string) *waE2E.ContextInfo {
			var ci *waE2E.ContextInfo
			waitFor(t, "message "+id+" at the contact", 15*time.Second, func() bool {
				ms := got.of(id)
				if len(ms) == 0 {
					return false
				}
				ci = ms[0].GetExtendedTextMessage().GetContextInfo()
				return true
			})
			return ci
		}

		ours, err := sendText(t, e, "+15550002", "first", "")
		if err != nil {
			t.Fatal(err)
		}
		quote(ours.ID)
		rep, err := sendText(t, e, "+15550002", "to my own", ours.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep.ReplyTo != ours.ID {
			t.Fatalf("reply shows reply_to %q", rep.ReplyTo)
		}
		if ci := quote(rep.ID); ci.GetStanzaID() != ours.ID || ci.GetParticipant() != "15550001@s.whatsapp.net" {
			t.Fatalf("reply to our own message quotes %q from %q; want %s from us (15550001)", ci.GetStanzaID(), ci.GetParticipant(), ours.ID)
		}

		// The contact writes (by LID, with its number beside it); we reply
		// to that message by the id message.received showed.
		theirs, err := ct.Send(ctx, types.NewJID("15550001", types.DefaultUserServer), "a question")
		if err != nil {
			t.Fatal(err)
		}
		var rep2 whatsapp.Message
		waitFor(t, "their message in the event log", 15*time.Second, func() bool {
			rep2, err = sendText(t, e, "+15550002", "to theirs", theirs)
			if errors.Is(err, whatsapp.ErrReplyNotFound) {
				return false
			}
			if err != nil {
				t.Fatal(err)
			}
			return true
		})
		if ci := quote(rep2.ID); ci.GetStanzaID() != theirs || ci.GetParticipant() != "15550002@s.whatsapp.net" {
			t.Fatalf("reply to their message quotes %q from %q; want %s from 15550002", ci.GetStanzaID(), ci.GetParticipant(), theirs)
		}

		// Unknown, another chat's, another session's: not found.
		if _, err := e.Create(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixNano()
		if _, err := r.db.Exec(`INSERT INTO outbox(id, session, peer, to_jid, text, content, status, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9)`,
			"3EB0OTHERSESSION", "other", "p", "15550002@s.whatsapp.net", `{"kind":"text","text":{"body":"x"}}`, "sent", now, now, now); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.ev.AppendOnce(ctx, "other", events.TypeMessageReceived, "15550002@s.whatsapp.net 15550002@s.whatsapp.net 3EB0OTHERIN", map[string]string{"id": "3EB0OTHERIN"}); err != nil {
			t.Fatal(err)
		}
		if err := r.srv.AddContact(ctx, "15550003", "Bob", -1); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"3EB0NEVERSEEN", "3EB0OTHERSESSION", "3EB0OTHERIN"} {
			if _, err := sendText(t, e, "+15550002", "x", id); !errors.Is(err, whatsapp.ErrReplyNotFound) {
				t.Errorf("reply to %s: %v, want ErrReplyNotFound", id, err)
			}
		}
		if _, err := sendText(t, e, "+15550003", "x", ours.ID); !errors.Is(err, whatsapp.ErrReplyNotFound) {
			t.Errorf("reply in another chat to %s: %v, want ErrReplyNotFound", ours.ID, err)
		}
	})
}

// TestRetryReceiptAnsweredAfterRestart: the contact's phone asks for one
// of our messages again after the appliance restarted (whatsmeow's cache
// of recent sends is empty): the answer comes from the outbox, under the
// original id. (Without GetMessageForRetry whatsmeow finds nothing and
// does not answer.)
func TestRetryReceiptAnsweredAfterRestart(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		got := watchArrivals(r.srv)
		e := r.engine(t)
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		r.pair(t, e, "shop", "15550001")
		if err := r.srv.AddContact(ctx, "15550002", "Ada", -1); err != nil {
			t.Fatal(err)
		}
		ct, err := r.srv.Contact("15550002")
		if err != nil {
			t.Fatal(err)
		}
		m, err := sendText(t, e, "+15550002", "the original words", "")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message at the contact", 15*time.Second, func() bool { return len(got.of(m.ID)) == 1 })
		e.Close()

		e2 := r.engine(t)
		if err := e2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "reconnected", 30*time.Second, func() bool { return state(e2, "shop") == whatsapp.StateConnected })
		if err := ct.RequestRetry(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the retry answered", 15*time.Second, func() bool { return ct.Deliveries(m.ID) == 2 })
		// wasim counts a delivery only for a user message it decrypted
		// under that id (and lists it once): the retry's answer.
		if in := ct.Inbox(); len(in) != 1 || in[0].ID != m.ID || in[0].Text() != "the original words" {
			t.Fatalf("inbox %+v: want the message listed once", in)
		}
	})
}
