package whatsapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"waappliance/events"
	"waappliance/whatsapp"
)

// TestLoginsWhilePairingShareOnePairing: "pairing" is the session's state,
// not a flag beside it. Logins while a pairing waits for WhatsApp return at
// once without starting another (they would wait at the blocked gate and
// time out), the QR code is the one pairing's, and the session.state events
// show one move to pairing. Once linked, a login is ErrAlreadyPaired and
// there is no QR code.
func TestLoginsWhilePairingShareOnePairing(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		e := r.engine(t)
		ctx := context.Background()
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Create(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		r.gate.block()
		first := make(chan error, 1)
		go func() { first <- e.Login(ctx, "shop") }()
		waitFor(t, "pairing", 10*time.Second, func() bool { return state(e, "shop") == whatsapp.StatePairing })
		var wg sync.WaitGroup
		errs := make([]error, 5)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				errs[i] = e.Login(cctx, "shop")
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("login %d while pairing: %v, want nil (the pairing under way)", i, err)
			}
		}
		if _, _, err := e.QR("shop"); !errors.Is(err, whatsapp.ErrNotPairing) {
			t.Fatalf("QR before WhatsApp answered: %v, want ErrNotPairing", err)
		}
		r.gate.release()
		if err := <-first; err != nil {
			t.Fatalf("first login: %v", err)
		}
		var code string
		waitFor(t, "a QR code", 15*time.Second, func() bool {
			code, _, _ = e.QR("shop")
			return code != ""
		})
		if err := e.Login(ctx, "shop"); err != nil {
			t.Fatalf("login while showing a QR code: %v", err)
		}
		if again, _, _ := e.QR("shop"); again != code {
			t.Fatal("a login while pairing replaced the QR code")
		}
		if err := r.srv.Phone("+15550001").ScanQR(code); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "connected", 30*time.Second, func() bool { return state(e, "shop") == whatsapp.StateConnected })
		if err := e.Login(ctx, "shop"); !errors.Is(err, whatsapp.ErrAlreadyPaired) {
			t.Fatalf("login when linked: %v, want ErrAlreadyPaired", err)
		}
		if _, _, err := e.QR("shop"); !errors.Is(err, whatsapp.ErrNotPairing) {
			t.Fatalf("QR when linked: %v, want ErrNotPairing", err)
		}
		var moves []string
		for _, ev := range eventsOf(t, r.ev, events.TypeSessionState) {
			var d struct{ State, Previous string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			moves = append(moves, d.Previous+">"+d.State)
		}
		want := []string{"new>pairing", "pairing>connecting", "connecting>connected"}
		if len(moves) != len(want) {
			t.Fatalf("state moves %v, want %v", moves, want)
		}
		for i := range want {
			if moves[i] != want[i] {
				t.Fatalf("state moves %v, want %v", moves, want)
			}
		}
	})
}
