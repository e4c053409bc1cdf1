package api

import (
	"fmt"
	"testing"

	"waappliance/whatsapp"
)

// TestWhatsAppErrorsAreClean: WhatsApp failures reach the client as their
// sentinel's text with the right status; the wrapped cause (dial errors,
// addresses) stays in Err, for the log.
func TestWhatsAppErrorsAreClean(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{fmt.Errorf("login %q: failed to dial whatsapp web websocket: dial tcp 157.240.0.1:443: i/o timeout: %w", "shop", whatsapp.ErrUnreachable),
			502, "whatsapp_unreachable", whatsapp.ErrUnreachable.Error()},
		{fmt.Errorf("no pairing refs from WhatsApp within 30s: %w", whatsapp.ErrTimeout), 504, "whatsapp_timeout", whatsapp.ErrTimeout.Error()},
		{fmt.Errorf("connect: context deadline exceeded: %w", whatsapp.ErrTimeout), 504, "whatsapp_timeout", whatsapp.ErrTimeout.Error()},
		{whatsapp.ErrReplaced, 409, "session_replaced", whatsapp.ErrReplaced.Error()},
	} {
		ae := toAPIError(tc.err)
		if ae.Status != tc.status || ae.Code != tc.code || ae.Message != tc.msg {
			t.Errorf("%v: %d %s %q, want %d %s %q", tc.err, ae.Status, ae.Code, ae.Message, tc.status, tc.code, tc.msg)
		}
		if ae.Err == nil {
			t.Errorf("%v: the cause is not kept for the log", tc.err)
		}
	}
}
