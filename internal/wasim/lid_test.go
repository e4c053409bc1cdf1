package wasim

import (
	"context"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

// TestLIDs: a current client learns its own LID at pairing and every
// contact's LID from usync, with the phone number beside it; wasim answers
// a LID as it answers the number, and keeps the LIDs across a restart.
func TestLIDs(t *testing.T) {
	dir := t.TempDir()
	s, err := New(context.Background(), Options{InMemory: true, DBPath: filepath.Join(dir, "wasim.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15550801")
	me := s.Phone("15550801")
	if me.LID().Server != types.HiddenUserServer || tc.Store.LID.ToNonAD() != me.LID() || tc.Store.LID.Device != tc.Store.ID.Device {
		t.Fatalf("client's LID %s, account's %s (device %d)", tc.Store.LID, me.LID(), tc.Store.ID.Device)
	}
	ct, _ := s.Contact("15550802")
	if ct.LID() == me.LID() || ct.LID().Server != types.HiddenUserServer {
		t.Fatalf("contact LID %s, own %s", ct.LID(), me.LID())
	}
	ctx := context.Background()
	res, err := tc.IsOnWhatsApp(ctx, []string{"+15550802", "+15550899"})
	if err != nil || len(res) != 2 {
		t.Fatalf("IsOnWhatsApp: %v %+v", err, res)
	}
	if !res[0].IsIn || res[0].JID != ct.LID() || res[0].PhoneNumber != ct.JID() {
		t.Fatalf("a contact on WhatsApp: %+v", res[0])
	}
	if res[1].IsIn {
		t.Fatalf("an unknown number: %+v", res[1])
	}
	if lid, err := tc.Store.LIDs.GetLIDForPN(ctx, ct.JID()); err != nil || lid != ct.LID() {
		t.Fatalf("the client's LID store: %s %v", lid, err)
	}
	other, _ := s.Contact("15550803")
	info, err := tc.GetUserInfo(ctx, []types.JID{other.JID()})
	if err != nil || info[other.JID()].LID != other.LID() {
		t.Fatalf("GetUserInfo: %v %+v", err, info)
	}
	devs, err := tc.GetUserDevices(ctx, []types.JID{ct.LID()})
	if err != nil || len(devs) != 1 || devs[0] != ct.LID() {
		t.Fatalf("devices by LID: %v %v", err, devs)
	}
	lid, phoneLID := ct.LID(), me.LID()
	tc.Disconnect()
	s.Close()
	s2, err := New(context.Background(), Options{InMemory: true, DBPath: filepath.Join(dir, "wasim.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ct2, _ := s2.Contact("15550802")
	if ct2.LID() != lid || s2.Phone("15550801").LID() != phoneLID {
		t.Fatalf("LIDs after a restart: %s %s, were %s %s", ct2.LID(), s2.Phone("15550801").LID(), lid, phoneLID)
	}
}
