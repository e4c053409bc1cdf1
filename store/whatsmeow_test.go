package store

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// TestWhatsmeowStore: whatsmeow's sqlstore, given DB.Dialect, creates its
// tables beside ours on both engines (PostgreSQL through pgx's stdlib) and
// keeps a device.
func TestWhatsmeowStore(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db := e.open(t)
		ctx := context.Background()
		c := sqlstore.NewWithDB(db.DB, string(db.Dialect), waLog.Noop)
		if err := c.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		dev := c.NewDevice()
		jid := types.NewJID("15550000001", types.DefaultUserServer)
		jid.Device = 7
		dev.ID = &jid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
			AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
		if err := c.PutDevice(ctx, dev); err != nil {
			t.Fatal(err)
		}
		devs, err := c.GetAllDevices(ctx)
		if err != nil || len(devs) != 1 || devs[0].ID.String() != jid.String() {
			t.Fatalf("devices %v, %v", devs, err)
		}
	})
}
