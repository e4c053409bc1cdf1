package whatsapp

import (
	"context"

	waStore "go.mau.fi/whatsmeow/store"
)

// unchangedIdentities is whatsmeow's identity store without the writes
// that change nothing. libsignal saves the recipient's identity key on
// every message it encrypts (twice per one-to-one send: the contact's
// device and our own phone), and whatsmeow's PutIdentity is an upsert, so
// each send made two write commits that stored what was already there. On
// SQLite each waits for the database's one writer, behind the burst's
// group commits (measured: 1.3 ms a send of a 1,000-send burst, a quarter
// of the sender's time). PutIdentity now reads first and writes only when
// the stored key differs or is missing.
//
// The read is IsTrustedIdentity twice, so nothing here knows whatsmeow's
// tables: the key is stored exactly when it is trusted and a different key
// is not (an unknown address trusts any key). Skipping the write when the
// key is already there is the same as writing it at the moment of the
// read, inside a transaction (whose own writes the read sees) or not, so
// nothing is lost or changed; every other method is whatsmeow's own.
type unchangedIdentities struct {
	waStore.IdentityStore
}

// skipUnchangedIdentities wraps dev's identity store once, before its
// client runs. A new device (before pairing) has no stores yet: whatsmeow
// makes them when pairing first saves it, so its container is wrapped to
// wrap them then, in the pairing's goroutine, before anything encrypts.
func skipUnchangedIdentities(dev *waStore.Device) {
	switch {
	case dev == nil:
	case dev.Identities != nil:
		if _, ok := dev.Identities.(unchangedIdentities); !ok {
			dev.Identities = unchangedIdentities{dev.Identities}
		}
	case dev.Container != nil:
		if _, ok := dev.Container.(wrapOnSave); !ok {
			dev.Container = wrapOnSave{dev.Container}
		}
	}
}

// wrapOnSave is a new device's container until pairing saves the device:
// the save makes its stores (and puts the plain container back).
type wrapOnSave struct{ waStore.DeviceContainer }

func (w wrapOnSave) PutDevice(ctx context.Context, dev *waStore.Device) error {
	err := w.DeviceContainer.PutDevice(ctx, dev)
	skipUnchangedIdentities(dev)
	return err
}

func (u unchangedIdentities) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	if stored, err := u.stored(ctx, address, key); err == nil && stored {
		return nil
	}
	return u.IdentityStore.PutIdentity(ctx, address, key)
}

// stored reports whether address's stored identity key is key.
func (u unchangedIdentities) stored(ctx context.Context, address string, key [32]byte) (bool, error) {
	ok, err := u.IsTrustedIdentity(ctx, address, key)
	if err != nil || !ok {
		return false, err
	}
	other := key
	other[0] ^= 0xff
	ok, err = u.IsTrustedIdentity(ctx, address, other)
	return !ok, err
}
