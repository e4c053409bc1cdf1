package app

import (
	"context"
	"errors"
	"log/slog"

	"go.mau.fi/whatsmeow"

	"waappliance/api"
	"waappliance/whatsapp"
)

// sandbox connects the appliance's WhatsApp sessions to wasim, in process
// or standalone, and plays the other side for the /v1/sandbox routes.
type sandbox struct {
	prepare func(*whatsmeow.Client)
	closeFn func()
}

func startSandbox(ctx context.Context, where string, log *slog.Logger) (*sandbox, error) {
	return nil, errors.New("sandbox mode needs the wasim simulator, which is not built yet (issue 4)")
}

func (s *sandbox) withEngine(wa *whatsapp.Engine) api.Sandbox { return nil }

func (s *sandbox) close() {
	if s.closeFn != nil {
		s.closeFn()
	}
}
