package app_test

import (
	"context"
	"testing"
	"time"

	"waappliance/peers"
)

func TestWhoamiPerPeer(t *testing.T) {
	ta := startAppliance(t)
	alice := ta.addPeer(t, "alice", peers.ScopeSend)
	bob := ta.addPeer(t, "bob", peers.ScopeRead, peers.ScopeSessions)
	for _, c := range []peers.Created{alice, bob} {
		cl := ta.client(t, c)
		r := do(t, cl, "GET", "/v1/whoami", nil)
		if r.Status != 200 {
			t.Fatalf("whoami %s: %d %s", c.Peer.Name, r.Status, r.Body)
		}
		var got struct {
			Name, PublicKey, Address string
			Scopes                   []string
			Sandbox                  bool
		}
		if err := r.JSON(&got); err != nil {
			t.Fatal(err)
		}
		if got.Name != c.Peer.Name || got.Address != c.Peer.Addr.String() {
			t.Errorf("whoami = %+v, want name %s address %s", got, c.Peer.Name, c.Peer.Addr)
		}
		if want := c.Peer.ScopeStrings(); len(got.Scopes) != len(want) {
			t.Errorf("scopes = %v, want %v", got.Scopes, want)
		}
		if cl.LastHandshake().IsZero() {
			t.Error("no handshake recorded after a successful request")
		}
	}
}

func TestUnknownKeyGetsNoHandshake(t *testing.T) {
	ta := startAppliance(t)
	known := ta.addPeer(t, "known", peers.ScopeRead)
	stranger, err := peers.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	// The stranger even knows a valid peer's preshared key and address.
	cl := ta.client(t, peers.Created{Peer: known.Peer, PrivateKey: stranger})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if r, err := cl.Do(ctx, "GET", "/v1/whoami", nil); err == nil {
		t.Fatalf("unknown key got an answer: %d %s", r.Status, r.Body)
	}
	if hs := cl.LastHandshake(); !hs.IsZero() {
		t.Fatalf("unknown key completed a handshake at %v", hs)
	}
}
