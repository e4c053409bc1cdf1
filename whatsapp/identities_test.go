package whatsapp

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	waStore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"waappliance/internal/pgtest"
)

// countedIdentities counts the writes that reach whatsmeow's store.
type countedIdentities struct {
	waStore.IdentityStore
	puts int
}

func (c *countedIdentities) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	c.puts++
	return c.IdentityStore.PutIdentity(ctx, address, key)
}

// TestIdentityWritesOnlyChanges: a new device's identity store is wrapped
// when pairing first saves it (whatsmeow makes the stores then), and an
// identity key that is already stored is not written again, while a new or
// changed one is, on both engines.
func TestIdentityWritesOnlyChanges(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e, _ := newTestEngine(t, dsn, nil)
		dev := e.container.NewDevice()
		skipUnchangedIdentities(dev)
		jid := types.NewJID("15550000001", types.DefaultUserServer)
		jid.Device = 7
		dev.ID = &jid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
			AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil { // as pairing does
			t.Fatal(err)
		}
		wrapped, ok := dev.Identities.(unchangedIdentities)
		if !ok {
			t.Fatalf("identities after the first save: %T", dev.Identities)
		}
		counted := &countedIdentities{IdentityStore: wrapped.IdentityStore}
		ids := unchangedIdentities{counted}

		const addr = "19990001.0:1"
		k1, k2 := [32]byte{1}, [32]byte{2}
		steps := []struct {
			key  [32]byte
			puts int
		}{{k1, 1}, {k1, 1}, {k1, 1}, {k2, 2}, {k2, 2}, {k1, 3}}
		for i, s := range steps {
			if err := ids.PutIdentity(ctx, addr, s.key); err != nil {
				t.Fatal(err)
			}
			if counted.puts != s.puts {
				t.Fatalf("step %d: %d writes, want %d", i, counted.puts, s.puts)
			}
			if ok, err := ids.IsTrustedIdentity(ctx, addr, s.key); err != nil || !ok {
				t.Fatalf("step %d: stored key not trusted (%v)", i, err)
			}
		}
		if ok, _ := ids.IsTrustedIdentity(ctx, addr, k2); ok {
			t.Fatal("the replaced key is still trusted")
		}
		if err := ids.DeleteIdentity(ctx, addr); err != nil {
			t.Fatal(err)
		}
		if err := ids.PutIdentity(ctx, addr, k1); err != nil || counted.puts != 4 {
			t.Fatalf("after a delete: %d writes (%v), want 4", counted.puts, err)
		}

		// A device loaded from the store is wrapped at once.
		loaded, err := e.container.GetDevice(ctx, jid)
		if err != nil || loaded == nil {
			t.Fatal(loaded, err)
		}
		skipUnchangedIdentities(loaded)
		skipUnchangedIdentities(loaded) // once
		if w, ok := loaded.Identities.(unchangedIdentities); !ok {
			t.Fatalf("loaded device: %T", loaded.Identities)
		} else if _, twice := w.IdentityStore.(unchangedIdentities); twice {
			t.Fatal("wrapped twice")
		}
	})
}
