package whatsapp

import "errors"

var (
	// ErrSessionNotFound is returned by every per-session call for an unknown name.
	ErrSessionNotFound = errors.New("session not found")
	// ErrSessionExists is returned by Create when the name is taken.
	ErrSessionExists = errors.New("session already exists")
	// ErrBadSessionName is returned by Create for a name outside [a-z0-9][a-z0-9-]{0,31}.
	ErrBadSessionName = errors.New("invalid session name: want [a-z0-9][a-z0-9-]{0,31}")
	// ErrNotPairing is returned by QR when the session is not waiting for a scan.
	ErrNotPairing = errors.New("session is not pairing; start with POST /v1/sessions/{name}/login")
	// ErrAlreadyPaired is returned by Login and PairCode for a linked session.
	ErrAlreadyPaired = errors.New("session is already linked to an account; log out first")
	// ErrNotPaired is returned by Send for a session that was never linked.
	ErrNotPaired = errors.New("session is not linked to a WhatsApp account yet")
	// ErrLoggedOut is returned by Send for a session logged out at WhatsApp.
	ErrLoggedOut = errors.New("session was logged out at WhatsApp; log in again")
	// ErrReplaced is returned by Send for a session whose connection another
	// client took over (stream replaced). Messages queued before stay queued.
	ErrReplaced = errors.New("another client took over this session's WhatsApp connection and it does not reconnect on its own; " +
		"take it back with POST /v1/sessions/{name}/login (no new pairing), then send again; messages queued before are kept and sent then")
	// ErrBadRecipient is returned by Send for a recipient that is neither an
	// E.164 phone number nor a user JID.
	ErrBadRecipient = errors.New("invalid recipient")
	// ErrEmptyText is returned by Send for a message without text.
	ErrEmptyText = errors.New("text must not be empty")
	// ErrTextTooLong is returned by Send for text over MaxTextBytes.
	ErrTextTooLong = errors.New("text is too long")
	// ErrUnknownKind is returned by Send for content of a kind the
	// appliance does not send (or without its kind's body).
	ErrUnknownKind = errors.New("unknown message kind")
	// ErrBadContent is returned by Send for a kind's body that is not
	// valid (its message says which field and why).
	ErrBadContent = errors.New("invalid message content")
	// ErrTargetNotFound is returned by Send when a reaction, edit or
	// delete names no message of this session's chat with the recipient.
	ErrTargetNotFound = errors.New("message: no such message in this chat")
	// ErrNotOwnMessage is returned by Send for an edit or delete of a
	// message the session did not send.
	ErrNotOwnMessage = errors.New("not the session's own message")
	// ErrEditWindowPassed is returned by Send for an edit after EditWindow.
	ErrEditWindowPassed = errors.New("too late to edit this message")
	// ErrDeleteWindowPassed is returned by Send for a delete after DeleteWindow.
	ErrDeleteWindowPassed = errors.New("too late to delete this message for everyone")
	// ErrWrongMessageKind is returned by Send when the message a reaction,
	// edit or delete names is of a kind it cannot change.
	ErrWrongMessageKind = errors.New("the message named cannot be changed this way")
	// ErrMediaNotFound is returned by Send for a media id that is unknown,
	// failed, or not visible to the peer (neither its upload nor media
	// received in this session).
	ErrMediaNotFound = errors.New("media: no such media item")
	// ErrMediaPending is returned by Send for received media still downloading.
	ErrMediaPending = errors.New("media: the item is still downloading; send it when media.ready says so")
	// ErrMediaMismatch is returned by Send for media whose type does not
	// fit the kind (a PDF as an image).
	ErrMediaMismatch = errors.New("media: its type does not fit the kind")
	// ErrNoMediaStore is returned by Send for a media kind when the engine
	// has no media store.
	ErrNoMediaStore = errors.New("media is not available on this appliance")
	// ErrNotConnected is returned by chat actions (read, presence) while
	// the session is not connected to WhatsApp.
	ErrNotConnected = errors.New("session is not connected to WhatsApp right now; try again when its state is connected")
	// ErrReplyNotFound is returned by Send when reply_to names no message
	// of this session's chat with the recipient: neither one of our sends
	// nor one received from them.
	ErrReplyNotFound = errors.New("reply_to: no such message in this chat")
	// ErrMessageNotFound is returned by Message for an unknown id in the session.
	ErrMessageNotFound = errors.New("message not found")
	// ErrIdempotencyConflict is returned by Send when an Idempotency-Key is
	// reused with a different request.
	ErrIdempotencyConflict = errors.New("Idempotency-Key was already used for a different message")
	// ErrUnreachable is returned by Login and PairCode when WhatsApp's
	// servers cannot be reached. The cause (dial error, address) is wrapped
	// in front of it, for the log only.
	ErrUnreachable = errors.New("cannot reach WhatsApp's servers; check the appliance's internet connection and try again")
	// ErrTimeout is returned by Login and PairCode when WhatsApp did not
	// answer in time (no pairing code, a connection that never completed).
	ErrTimeout = errors.New("WhatsApp did not answer in time; try again")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("whatsapp engine is closed")
)
