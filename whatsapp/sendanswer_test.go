package whatsapp_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"waappliance/whatsapp"
)

// TestSendAnswerIsWhatWasCommitted: Send builds its answer from what it
// committed instead of reading the row and its history back; the
// answer must be exactly what reading the message back shows while it is
// still queued, for a plain text, a reply and a mention alike.
func TestSendAnswerIsWhatWasCommitted(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		e := r.engine(t)
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		r.pair(t, e, "shop", "+15550001")
		if _, err := r.srv.Contact("+15550002"); err != nil {
			t.Fatal(err)
		}
		first, _, err := e.Send(ctx, "shop", whatsapp.SendRequest{To: "+15550002", Content: whatsapp.Text("first"), Peer: "p"})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "first out of the queue", 30*time.Second, func() bool {
			m, err := e.Message(ctx, "shop", first.ID)
			return err == nil && m.Status != whatsapp.StatusQueued
		})
		// Offline from here: what is sent now stays queued.
		r.srv.RefuseConnections(true)
		waitFor(t, "disconnected", 30*time.Second, func() bool { return state(e, "shop") != whatsapp.StateConnected })
		reply := whatsapp.Text("second @+15550002")
		reply.Text.Mentions = []string{"+15550002"}
		reply.ReplyTo = &whatsapp.MessageRef{ID: first.ID}
		for _, c := range []whatsapp.Content{whatsapp.Text("plain"), reply} {
			m, created, err := e.Send(ctx, "shop", whatsapp.SendRequest{To: "+15550002", Content: c, Peer: "p", IdempotencyKey: "k-" + c.Text.Body})
			if err != nil || !created {
				t.Fatalf("send %q: created %v, %v", c.Text.Body, created, err)
			}
			back, err := e.Message(ctx, "shop", m.ID)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(m)
			b, _ := json.Marshal(back)
			if string(a) != string(b) {
				t.Errorf("the answer differs from the committed message:\nanswer %s\nstored %s", a, b)
			}
			if m.Status != whatsapp.StatusQueued || len(m.History) != 1 {
				t.Errorf("answer: status %s, history %v; want queued, one step", m.Status, m.History)
			}
		}
	})
}
