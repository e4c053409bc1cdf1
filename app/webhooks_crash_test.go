package app_test

import (
	"context"
	"fmt"
	"testing"

	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
)

// TestWebhooksSurviveSIGKILL: inbound messages arrive while webhooks
// deliver them through the tunnel; the appliance process is killed with
// SIGKILL mid-burst and restarted. Every message.received event the log
// holds reaches the receiver, in order, with no gap; a repeat is only the
// event whose answer was not yet committed at the kill, under its own
// webhook-id.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	ctx := context.Background()
	srv, ctl := startWasim(t)
	dir, port, boss := newProcState(t)
	_, cfg := mustCLI(t, dir, "peer", "add", "app", "--scopes", "read", "--rate", "1000", "--burst", "1000")
	appPeer := createdFromCLI(t, dir, "app", cfg)

	p, cl, s := serveShop(t, srv, ctl, dir, port, boss)
	account, _ := types.ParseJID(s.JID)

	acl := procClient(t, dir, port, appPeer)
	rc := listenHooks(t, acl, 9000)
	do(t, acl, "GET", "/v1/whoami", nil)
	hook := createHook(t, acl, fmt.Sprintf("http://%s:9000/wa", appPeer.Peer.Addr), events.TypeMessageReceived)

	contactSend := func(i int) {
		if _, err := srv.ContactSend(ctx, "15550002", account.ToNonAD(), fmt.Sprint("inbound ", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	const before, after = 40, 10
	for i := range before {
		contactSend(i)
	}
	eventually(t, "deliveries under way", func() bool { return len(rc.got()) >= 5 })
	p.kill()
	killedAt := len(rc.got())
	for i := range after {
		contactSend(before + i)
	}
	startProc(t, dir, ctl.String())
	cl = procClient(t, dir, port, boss)
	eventually(t, "the restarted appliance answers", func() bool {
		r, err := cl.Do(ctx, "GET", "/v1/health", nil)
		return err == nil && r.Status == 200
	})
	// The app peer's client talks to the new process (its handshake gives
	// the appliance its endpoint again).
	eventually(t, "the app peer reconnects", func() bool {
		r, err := acl.Do(ctx, "GET", "/v1/whoami", nil)
		return err == nil && r.Status == 200
	})
	var want []int64
	eventually(t, "every inbound message in the log and delivered", func() bool {
		var l struct{ Events []events.Event }
		r, err := cl.Do(ctx, "GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", hook.Cursor), nil)
		if err != nil || r.Status != 200 || r.JSON(&l) != nil {
			return false
		}
		want = want[:0]
		for _, e := range l.Events {
			if e.Type == events.TypeMessageReceived {
				want = append(want, e.ID)
			}
		}
		got := rc.got()
		return len(want) == before+after && len(got) > 0 && got[len(got)-1].Event.ID == want[len(want)-1]
	})
	repeats := checkDelivered(t, rc.got(), want, hook.Secret)
	if repeats > 1 {
		t.Fatalf("%d repeats after one kill", repeats)
	}
	t.Logf("killed after %d deliveries; %d events delivered, %d repeat(s)", killedAt, len(want), repeats)
}
