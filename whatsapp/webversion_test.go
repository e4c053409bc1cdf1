package whatsapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	waStore "go.mau.fi/whatsmeow/store"

	"waappliance/whatsapp"
)

// TestWebVersionFromWhatsAppOrBuiltIn: a newer version WhatsApp names is
// used (and recorded for doctor), an older one is not, and a failed check
// keeps the built-in one quietly; sessions connect in every case. The
// check is injected: tests never ask web.whatsapp.com.
func TestWebVersionFromWhatsAppOrBuiltIn(t *testing.T) {
	builtIn := waStore.GetWAVersion()
	defer waStore.SetWAVersion(builtIn)
	newer := waStore.WAVersionContainer{builtIn[0], builtIn[1], builtIn[2] + 1000}
	older := waStore.WAVersionContainer{builtIn[0], builtIn[1], builtIn[2] - 1}
	for i, tc := range []struct {
		name   string
		latest func(ctx context.Context) (waStore.WAVersionContainer, error)
		inUse  waStore.WAVersionContainer
		source string
		err    bool
	}{
		{"newer", func(context.Context) (waStore.WAVersionContainer, error) { return newer, nil }, newer, "web.whatsapp.com", false},
		{"older", func(context.Context) (waStore.WAVersionContainer, error) { return older, nil }, builtIn, "built-in", false},
		{"offline", func(context.Context) (waStore.WAVersionContainer, error) {
			return waStore.WAVersionContainer{}, errors.New("dial tcp: network is unreachable")
		}, builtIn, "built-in", true},
		{"not asked", nil, builtIn, "built-in", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waStore.SetWAVersion(builtIn)
			r := newRig(t, "")
			e := r.engineWith(t, func(c *whatsapp.Config) { c.LatestVersion = tc.latest })
			if err := e.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.pair(t, e, "shop", "+1555050"+string(rune('1'+i)))
			v := e.WebVersion()
			if v.InUse != tc.inUse.String() || v.BuiltIn != builtIn.String() || v.Source != tc.source || (v.Error != "") != tc.err ||
				(v.CheckedAt == nil) != (tc.latest == nil) {
				t.Fatalf("web version %+v, want %s from %s (error %v)", v, tc.inUse, tc.source, tc.err)
			}
			if got := waStore.GetWAVersion(); got != tc.inUse {
				t.Errorf("whatsmeow announces %s, want %s", got, tc.inUse)
			}
			var rec whatsapp.WebVersion
			waitFor(t, "the version recorded", 5*time.Second, func() bool {
				s, ok, _ := r.db.Settings().Get(context.Background(), whatsapp.WebVersionSetting)
				return ok && json.Unmarshal([]byte(s), &rec) == nil && rec.InUse == v.InUse && rec.Source == v.Source
			})
		})
	}
}
