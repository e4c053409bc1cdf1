package whatsapp_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
	"waappliance/internal/wasim"
	"waappliance/whatsapp"
)

// TestUndecryptableThenReceivedOnce: the lost first message of a new
// contact is a message.undecryptable at once, then, once the re-request
// is answered, its message.received under the same id, once: by the
// contact's retry, and by our own phone when the contact ignores retries
// (AutomaticMessageRerequestFromPhone). Both events name the contact by
// phone number with its LID beside it.
func TestUndecryptableThenReceivedOnce(t *testing.T) {
	defer func(d time.Duration) { whatsmeow.RequestFromPhoneDelay = d }(whatsmeow.RequestFromPhoneDelay)
	whatsmeow.RequestFromPhoneDelay = 100 * time.Millisecond
	r := newRig(t, "")
	e := r.engine(t)
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[wasim.EventKind]int{}
	r.srv.OnEvent(func(ev wasim.Event) {
		mu.Lock()
		seen[ev.Kind]++
		mu.Unlock()
	})
	r.pair(t, e, "shop", "+15550401")
	si, _ := e.Get(ctx, "shop")
	me, _ := types.ParseJID(si.JID)
	for _, tc := range []struct {
		name, phone string
		ignore      bool
	}{{"contact retries", "+15550402", false}, {"phone answers", "+15550403", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := r.srv.Contact(tc.phone)
			if err != nil {
				t.Fatal(err)
			}
			ct.IgnoreRetries(tc.ignore)
			id, err := ct.SendUndecryptable(ctx, me.ToNonAD(), "first words")
			if err != nil {
				t.Fatal(err)
			}
			var got []whatsapp.InboundMessage
			waitFor(t, "message.received", 30*time.Second, func() bool {
				got = nil
				for _, ev := range eventsOf(t, r.ev, events.TypeMessageReceived) {
					var in whatsapp.InboundMessage
					json.Unmarshal(ev.Data, &in)
					if in.ID == id {
						got = append(got, in)
					}
				}
				return len(got) > 0
			})
			var und []whatsapp.Undecryptable
			var undAt, recAt int64
			for _, ev := range eventsOf(t, r.ev, events.TypeMessageUndecryptable) {
				var u whatsapp.Undecryptable
				json.Unmarshal(ev.Data, &u)
				if u.ID == id {
					und, undAt = append(und, u), ev.ID
				}
			}
			for _, ev := range eventsOf(t, r.ev, events.TypeMessageReceived) {
				var in whatsapp.InboundMessage
				json.Unmarshal(ev.Data, &in)
				if in.ID == id {
					recAt = ev.ID
				}
			}
			if len(und) != 1 {
				t.Fatalf("%d message.undecryptable events for %s", len(und), id)
			}
			if undAt > recAt {
				t.Errorf("message.undecryptable (event %d) after message.received (event %d)", undAt, recAt)
			}
			pn, lid := ct.JID().String(), ct.LID().String()
			if u := und[0]; u.From != pn || u.Chat != pn || u.FromLID != lid || u.Reason == "" || u.Timestamp.IsZero() {
				t.Errorf("undecryptable %+v, want from/chat %s, from_lid %s", u, pn, lid)
			}
			time.Sleep(500 * time.Millisecond) // a late second delivery would show now
			n := 0
			for _, ev := range eventsOf(t, r.ev, events.TypeMessageReceived) {
				var in whatsapp.InboundMessage
				json.Unmarshal(ev.Data, &in)
				if in.ID == id {
					n++
					if in.Text != "first words" || in.From != pn || in.Chat != pn || in.FromLID != lid || in.ChatLID != lid {
						t.Errorf("received %+v, want from/chat %s with LID %s", in, pn, lid)
					}
				}
			}
			if n != 1 {
				t.Errorf("message.received %d times", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[wasim.EventRetryRequested] == 0 || (tc.ignore && seen[wasim.EventPhoneResend] == 0) {
				t.Errorf("the message was not asked for again (wasim saw %v)", seen)
			}
		})
	}
}
