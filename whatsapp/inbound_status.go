package whatsapp

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"waappliance/store"
)

// StatusBroadcastsSetting is the setting (store.Settings) that records
// status updates (status@broadcast) as message.received events; unset or
// false: they are left out (acked, not recorded). `waappliance set
// --status-broadcasts on` and PATCH /v1/settings {"status_broadcasts":
// true} turn it on.
const StatusBroadcastsSetting = "status_broadcasts"

// StatusBroadcasts reports whether status updates are recorded.
func (e *Engine) StatusBroadcasts(ctx context.Context) (bool, error) {
	v, ok, err := e.cfg.DB.Settings().Get(ctx, StatusBroadcastsSetting)
	if err != nil || !ok {
		return false, err
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("whatsapp: setting %s=%q: %w", StatusBroadcastsSetting, v, err)
	}
	return on, nil
}

// SetStatusBroadcasts turns the recording of status updates on or off,
// for status updates that arrive from now on.
func (e *Engine) SetStatusBroadcasts(ctx context.Context, on bool) error {
	return e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return store.SettingsOf(tx).Set(ctx, StatusBroadcastsSetting, strconv.FormatBool(on))
	})
}
