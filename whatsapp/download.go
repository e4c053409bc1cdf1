package whatsapp

import (
	"context"
	"database/sql"
)

// Placeholders until the media store is merged.
func (e *Engine) hasMedia() bool { return false }

func (e *Engine) reserveMediaTx(ctx context.Context, tx *sql.Tx, session string, in *InboundMessage) error {
	return nil
}

func (e *Engine) mediaReserved(session string) {}
