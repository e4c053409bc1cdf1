package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"waappliance/app"
	"waappliance/events"
	"waappliance/internal/wasim"
	"waappliance/peers"
)

// lockedBuffer is an io.Writer safe for the appliance's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// TestInboundRedeliveryLoggedOnce: WhatsApp delivers a message again after
// the appliance acked it — as it does when the appliance dies between
// committing the event and sending the ack — while the appliance runs and
// after a restart. wasim's contact resends it under its id, encrypted anew,
// so whatsmeow decrypts it and hands it to the engine each time; the engine
// acks every copy (wasim counts three acks) and the message is in
// /v1/events and on the SSE stream exactly once. The restart shows that the
// de-duplication is the database's, not a set in memory: the simulator is
// standalone, so it outlives the appliance and still holds the message.
func TestInboundRedeliveryLoggedOnce(t *testing.T) {
	ctx := context.Background()
	srv, ctl := startWasim(t)
	logs := new(lockedBuffer)
	serve := func(dir string) *testAppliance {
		return serveWith(t, dir, func(o *app.Options) {
			o.Sandbox = ctl.String()
			var w io.Writer = logs
			if testing.Verbose() {
				w = io.MultiWriter(logs, tWriter{t})
			}
			o.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
	}
	dir := initState(t, peers.Server{Endpoint: "127.0.0.1:51820"})
	ta := serve(dir)
	c, err := ta.Peers().Add(ctx, peers.AddOptions{Name: "boss", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	cl := ta.client(t, c)
	s := pairSession(t, cl, "shop", "+15550001")
	account, err := types.ParseJID(s.JID)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, cl, "POST", "/v1/sandbox/contacts", map[string]string{"phone": "+15550002", "name": "Ada"}); r.Status != 201 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	ada, err := srv.Contact("15550002")
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acks := map[string]int{} // the appliance's acks (receipts) per inbound id
	srv.OnEvent(func(e wasim.Event) {
		if e.Kind == wasim.EventClientReceipt || (e.Kind == wasim.EventClientAck && e.Class == "message") {
			mu.Lock()
			acks[e.MessageID]++
			mu.Unlock()
		}
	})
	ackedTimes := func(id string, n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return acks[id] >= n }
	}
	contactSend := func(text string) string {
		var out struct{ ID string }
		r := do(t, cl, "POST", "/v1/sandbox/contacts/+15550002/messages", map[string]string{"session": "shop", "text": text})
		if r.Status != 202 || r.JSON(&out) != nil || out.ID == "" {
			t.Fatalf("contact send: %d %s", r.Status, r.Body)
		}
		return out.ID
	}
	const dupLine = "inbound message delivered again"
	// logged lists the ids of message.received in /v1/events. A copy was
	// acked only after its handler returned (SynchronousAck), so once wasim
	// saw the ack the log is final for it.
	var last int64
	logged := func() []string {
		t.Helper()
		var list struct {
			Events []struct {
				ID   int64
				Type string
				Data struct{ ID string }
			}
		}
		if r := do(t, cl, "GET", "/v1/events?session=shop&limit=1000", nil); r.Status != 200 || r.JSON(&list) != nil {
			t.Fatalf("events: %d %s", r.Status, r.Body)
		}
		var ids []string
		for _, e := range list.Events {
			if e.Type == events.TypeMessageReceived {
				ids = append(ids, e.Data.ID)
			}
			last = e.ID
		}
		return ids
	}

	id := contactSend("exactly once")
	eventually(t, "the message acked", ackedTimes(id, 1))
	if err := ada.Resend(ctx, account.ToNonAD(), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the redelivery acked", ackedTimes(id, 2))
	// Once more under the other address form: from the phone number with
	// the LID beside it (sender_lid), where the first came from the LID.
	ada.SetAddressing(wasim.AddressingPN)
	if err := ada.Resend(ctx, account.ToNonAD(), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the redelivery by phone number acked", ackedTimes(id, 3))
	ada.SetAddressing(wasim.AddressingLID)
	if got := logged(); len(got) != 1 || got[0] != id {
		t.Fatalf("/v1/events has message.received %v after the redeliveries, want [%s]", got, id)
	}
	if n := logs.count(dupLine); n != 2 {
		t.Fatalf("the engine saw %d redeliveries, want 2: a copy never reached it, so the test proves nothing", n)
	}
	// The LID contact's message names its phone number, with the LID beside.
	var evs struct {
		Events []struct {
			Type string
			Raw  json.RawMessage `json:"data"`
		}
	}
	if r := do(t, cl, "GET", "/v1/events?session=shop&limit=1000", nil); r.Status != 200 || r.JSON(&evs) != nil {
		t.Fatalf("events: %d %s", r.Status, r.Body)
	}
	for _, e := range evs.Events {
		if e.Type != events.TypeMessageReceived {
			continue
		}
		var d struct {
			From    string `json:"from"`
			Chat    string `json:"chat"`
			FromLID string `json:"from_lid"`
			ChatLID string `json:"chat_lid"`
		}
		json.Unmarshal(e.Raw, &d)
		if pn, lid := ada.JID().String(), ada.LID().String(); d.From != pn || d.Chat != pn || d.FromLID != lid || d.ChatLID != lid {
			t.Fatalf("message.received names %+v, want %s with the LID %s", d, pn, lid)
		}
	}
	// A send to her phone number, whose chat is LID-addressed, reaches her
	// once, and the answer names her LID; so does a send to the LID.
	for _, to := range []string{"+15550002", ada.LID().String()} {
		text := "reply to " + to
		var sent struct {
			To           string `json:"to"`
			RecipientLID string `json:"recipient_lid"`
		}
		if r := do(t, cl, "POST", "/v1/sessions/shop/messages", map[string]string{"to": to, "text": text}); r.Status != 202 || r.JSON(&sent) != nil {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		} else if sent.RecipientLID != ada.LID().String() {
			t.Errorf("send to %s answers %s", to, r.Body)
		}
		eventually(t, "the reply in her inbox", func() bool {
			n := 0
			for _, m := range ada.Inbox() {
				if m.Text() == text {
					n++
				}
			}
			return n == 1
		})
	}
	// Its message.status events name her LID too.
	eventually(t, "message.status events with her LID", func() bool {
		var evs struct {
			Events []struct {
				Type string
				Raw  json.RawMessage `json:"data"`
			}
		}
		do(t, cl, "GET", "/v1/events?session=shop&limit=1000", nil).JSON(&evs)
		n := 0
		for _, e := range evs.Events {
			var d struct {
				Status       string `json:"status"`
				RecipientLID string `json:"recipient_lid"`
			}
			json.Unmarshal(e.Raw, &d)
			if e.Type == events.TypeMessageStatus && d.Status == "sent" {
				if d.RecipientLID != ada.LID().String() {
					t.Fatalf("message.status %s", e.Raw)
				}
				n++
			}
		}
		return n >= 2
	})
	// Every field of every event so far is in its OpenAPI schema.
	if missing := undocumentedFields(t, cl, sessionEvents(t, cl, "shop")); len(missing) != 0 {
		t.Errorf("event fields the OpenAPI document does not name: %v", missing)
	}

	// Restart: the key is in the database.
	ta.Close()
	ta = serve(dir)
	cl = ta.client(t, createdFromConfig(t, ta, "boss", mustConfigRotated(t, dir)))
	eventually(t, "reconnected after restart", func() bool { return getSession(t, cl, "shop").State == "connected" })
	if err := ada.Resend(ctx, account.ToNonAD(), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the redelivery after the restart acked", ackedTimes(id, 4))
	if n := logs.count(dupLine); n != 3 {
		t.Fatalf("the engine saw %d redeliveries, want 3", n)
	}
	next := contactSend("and the next one")
	eventually(t, "the next message acked", ackedTimes(next, 1))

	want := []string{id, next}
	got := logged()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("/v1/events has message.received %v, want %v (each once)", got, want)
	}

	// The stream from the start: the same, and nothing after the next one.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, resp := readSSE(t, sctx, cl, "?session=shop", 0)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	got = nil
	deadline := time.After(15 * time.Second)
	for done := false; !done; {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if e.typ == events.TypeMessageReceived {
				var d struct{ Data struct{ ID string } } // the whole event, as in /v1/events
				if err := json.Unmarshal([]byte(e.data), &d); err != nil {
					t.Fatalf("stream data %q: %v", e.data, err)
				}
				got = append(got, d.Data.ID)
			}
			done = e.id >= last
		case <-deadline:
			t.Fatalf("stream: got %v before the timeout", got)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the stream has message.received %v, want %v (each once)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if acks[id] != 4 || acks[next] != 1 {
		t.Fatalf("wasim saw %d and %d acks, want 4 and 1", acks[id], acks[next])
	}
}
