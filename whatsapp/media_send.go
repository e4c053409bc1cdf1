package whatsapp

import "context"

// mediaFor looks up a media body's item for a send by peer in session.
func (e *Engine) mediaFor(ctx context.Context, session, peer string, mb mediaBody) (*MediaState, error) {
	return nil, ErrNoMediaStore
}
