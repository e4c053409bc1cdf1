package whatsapp_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"waappliance/events"
	"waappliance/internal/pgtest"
	"waappliance/internal/wasim"
	"waappliance/store"
	"waappliance/whatsapp"
)

// gate blackholes the simulator: while blocked, every dial waits, as to a
// server that drops packets, until the gate opens or the dial gives up.
type gate struct {
	mu   sync.Mutex
	open chan struct{}
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) block() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}

func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rig is a wasim, a database and an event log that engines come and go on:
// the database is of the engine dsn names (pgtest.ForEngines), so on
// PostgreSQL whatsmeow's own sqlstore runs there too, through pgx's stdlib.
type rig struct {
	srv  *wasim.Server
	gate *gate
	db   *store.DB
	ev   *events.Log
}

func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	ctx := context.Background()
	srv, err := wasim.New(ctx, wasim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDSN(ctx, dsn, store.Options{Dir: filepath.Join(t.TempDir(), "state"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{srv: srv, gate: newGate(), db: db, ev: events.New(db, events.Options{})}
	t.Cleanup(func() {
		r.gate.release()
		srv.Close()
		db.Close()
	})
	return r
}

// prepare points a client at wasim through the gate.
func (r *rig) prepare(cli *whatsmeow.Client) {
	r.srv.Prepare(cli)
	tr := r.srv.HTTPClient().Transport.(*http.Transport).Clone()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := r.gate.wait(ctx); err != nil {
			return nil, err
		}
		return dial(ctx, network, addr)
	}
	hc := &http.Client{Transport: tr}
	cli.SetWebsocketHTTPClient(hc)
	cli.SetPreLoginHTTPClient(hc)
}

func (r *rig) engine(t *testing.T) *whatsapp.Engine {
	t.Helper()
	return r.engineWith(t, nil)
}

// engineWith is engine with the config changed by edit first.
func (r *rig) engineWith(t *testing.T, edit func(*whatsapp.Config)) *whatsapp.Engine {
	t.Helper()
	cfg := whatsapp.Config{DB: r.db, Events: r.ev, Prepare: r.prepare}
	if edit != nil {
		edit(&cfg)
	}
	e, err := whatsapp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// forEnginesInTurn is pgtest.ForEngines one engine after the other: the
// simulator's root key is process-wide (whatsmeow.WACertPubKey), so two
// wasim servers cannot serve clients at the same time.
func forEnginesInTurn(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	if pgtest.Enabled() {
		t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Fresh(t)) })
	}
}

func waitFor(t *testing.T, what string, d time.Duration, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func state(e *whatsapp.Engine, name string) string {
	si, err := e.Get(context.Background(), name)
	if err != nil {
		return err.Error()
	}
	return si.State
}

// pair links session name as phone by QR, playing the phone through wasim.
func (r *rig) pair(t *testing.T, e *whatsapp.Engine, name, phone string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Create(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := e.Login(ctx, name); err != nil {
		t.Fatal(err)
	}
	var code string
	waitFor(t, "a QR code", 15*time.Second, func() bool {
		code, _, _ = e.QR(name)
		return code != ""
	})
	if err := r.srv.Phone(phone).ScanQR(code); err != nil {
		t.Fatal(err)
	}
	waitFor(t, name+" connected", 30*time.Second, func() bool { return state(e, name) == whatsapp.StateConnected })
}

// TestStartDoesNotWaitForWhatsApp: with WhatsApp blackholed, Start returns
// at once (the API comes up) with the linked sessions connecting; they
// connect when WhatsApp answers again.
func TestStartDoesNotWaitForWhatsApp(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		e1 := r.engine(t)
		if err := e1.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		names := []string{"one", "two", "three"}
		for i, n := range names {
			r.pair(t, e1, n, "+1555010"+string(rune('1'+i)))
		}
		e1.Close()

		r.gate.block()
		e2 := r.engine(t)
		started := make(chan error, 1)
		t0 := time.Now()
		go func() { started <- e2.Start(context.Background()) }()
		select {
		case err := <-started:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(3 * time.Second):
			r.gate.release() // let the stuck Start end, so Close does not hang
			t.Fatal("Start waits for WhatsApp, which does not answer")
		}
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("Start took %v", d)
		}
		for _, n := range names {
			if st := state(e2, n); st != whatsapp.StateConnecting && st != whatsapp.StateDisconnected {
				t.Fatalf("%s is %s while WhatsApp is unreachable", n, st)
			}
		}
		r.gate.release()
		for _, n := range names {
			waitFor(t, n+" connected once WhatsApp answers", 30*time.Second, func() bool { return state(e2, n) == whatsapp.StateConnected })
		}
	})
}

// TestLoginAndPairCodeErrors: a login or phone code that WhatsApp does not
// answer in time is ErrTimeout (504), one it refuses is ErrUnreachable
// (502); neither waits past the caller's deadline.
func TestLoginAndPairCodeErrors(t *testing.T) {
	forEnginesInTurn(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		e := r.engine(t)
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := e.Create(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		r.gate.block()
		for _, call := range []struct {
			name string
			fn   func(ctx context.Context) error
		}{
			{"login", func(ctx context.Context) error { return e.Login(ctx, "shop") }},
			{"pair-code", func(ctx context.Context) error { _, err := e.PairCode(ctx, "shop", "+15550199"); return err }},
		} {
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			t0 := time.Now()
			err := call.fn(cctx)
			cancel()
			if !errors.Is(err, whatsapp.ErrTimeout) {
				t.Errorf("%s while blackholed: %v, want ErrTimeout", call.name, err)
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("%s took %v past a 500 ms deadline", call.name, d)
			}
			if st := state(e, "shop"); st != whatsapp.StateNew {
				t.Errorf("after the failed %s: state %s", call.name, st)
			}
		}
		r.gate.release()
		r.srv.RefuseConnections(true)
		if err := e.Login(ctx, "shop"); !errors.Is(err, whatsapp.ErrUnreachable) {
			t.Errorf("login while refused: %v, want ErrUnreachable", err)
		}
	})
}
