package whatsapp_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/whatsapp"
)

// TestCloseWaitsForEventHandlers: a delivery receipt whose handler is
// inside its write transaction when the engine closes is committed before
// Close returns, not after (whatsmeow's Disconnect does not wait for its
// handlers: the late write landed on a row the test had reset for a
// restarted engine, the flake of TestMediaUploadedOnceAcrossRestart).
func TestCloseWaitsForEventHandlers(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		k := &kindsRig{rig: newRig(t, dsn)}
		var (
			mu      sync.Mutex
			cli     *whatsmeow.Client
			hold    atomic.Bool // the next delivery receipt waits for proceed
			armed   atomic.Bool // the next clock reading waits for release
			once    sync.Once
			entered = make(chan struct{})
			proceed = make(chan struct{})
			inTx    = make(chan struct{})
			release = make(chan struct{})
		)
		k.e = k.engineWith(t, func(c *whatsapp.Config) {
			// The receipt's status is written in a transaction that reads
			// the clock first: holding the clock holds the transaction.
			c.Now = func() time.Time {
				if armed.CompareAndSwap(true, false) {
					close(inTx)
					<-release
				}
				return time.Now()
			}
			c.Prepare = func(wc *whatsmeow.Client) {
				k.prepare(wc)
				mu.Lock()
				cli = wc
				mu.Unlock()
				// Runs before the engine's handler.
				wc.AddEventHandler(func(evt any) {
					if r, ok := evt.(*waEvents.Receipt); ok && r.Type == types.ReceiptTypeDelivered && hold.Load() {
						once.Do(func() {
							close(entered)
							<-proceed
						})
					}
				})
			}
		})
		if err := k.e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		k.pair(t, k.e, "shop", "15550001")
		if err := k.srv.AddContact(ctx, "15550002", "Ada", -1); err != nil {
			t.Fatal(err)
		}
		hold.Store(true)
		m := k.mustSend(t, whatsapp.Content{Kind: whatsapp.KindText, Text: &whatsapp.TextContent{Body: "late"}})
		select {
		case <-entered:
		case <-time.After(15 * time.Second):
			close(proceed)
			t.Fatal("no delivery receipt")
		}
		k.sentStatus(t, m.ID) // the ack is committed: nothing else is writing
		armed.Store(true)
		close(proceed)
		select {
		case <-inTx:
		case <-time.After(15 * time.Second):
			close(release)
			t.Fatal("the receipt's write did not start")
		}
		// Close, with the receipt's transaction held until Close has begun.
		go func() {
			time.Sleep(300 * time.Millisecond)
			close(release)
		}()
		k.e.Close()
		status := func() string {
			var s string
			if err := k.db.QueryRow(`SELECT status FROM outbox WHERE id = $1`, m.ID).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		atClose := status()
		mu.Lock()
		c := cli
		mu.Unlock()
		// whatsmeow holds its handlers' lock through a dispatch: adding a
		// handler waits until the receipt's has ended.
		c.RemoveEventHandler(c.AddEventHandler(func(any) {}))
		if after := status(); after != atClose {
			t.Fatalf("the message was %q when Close returned, %q once the receipt's handler ended: it wrote after Close", atClose, after)
		}
	})
}
