package whatsapp

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"

	"waappliance/media"
)

// mediaFor looks up a media body's item for a send by peer in session: it
// must be the peer's upload or media this session received (anything else
// is reported as unknown, never revealing that it exists), ready, and of a
// type and size the kind takes.
func (e *Engine) mediaFor(ctx context.Context, session, peer string, mb mediaBody) (*MediaState, error) {
	if e.cfg.Media == nil {
		return nil, ErrNoMediaStore
	}
	id, kind := mb.fields().Media, mb.mediaKind()
	it, err := e.cfg.Media.Get(ctx, id)
	if errors.Is(err, media.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrMediaNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	if !(it.Peer != "" && it.Peer == peer) && !(it.Session != "" && it.Session == session) {
		return nil, fmt.Errorf("%w: %q", ErrMediaNotFound, id)
	}
	switch it.State {
	case media.StatePending:
		return nil, fmt.Errorf("%w: %q", ErrMediaPending, id)
	case media.StateReady:
	default:
		return nil, fmt.Errorf("%w: %q (its download failed)", ErrMediaNotFound, id)
	}
	if !media.Fits(kind, it.Type) {
		return nil, fmt.Errorf("%w: %s is %s, which WhatsApp does not take as %s (%s)", ErrMediaMismatch, id, it.Type, article(kind), fitting(kind))
	}
	if max := media.MaxSize(kind); max > 0 && it.Size > max {
		return nil, fmt.Errorf("%w: %s has %d bytes; %s may have at most %d", ErrMediaMismatch, id, it.Size, article(kind), max)
	}
	return &MediaState{ID: it.ID, Type: it.Type, Size: it.Size, SHA256: it.SHA256, Filename: it.Filename,
		Width: it.Width, Height: it.Height, Seconds: it.Seconds, Thumbnail: it.Thumbnail, AppInfo: string(mb.appInfo())}, nil
}

func article(kind string) string {
	if kind == KindImage || kind == KindAudio {
		return "an " + kind
	}
	return "a " + kind
}

// fitting names the types kind takes, for the error.
func fitting(kind string) string {
	var ok []string
	for _, t := range media.Types() {
		if media.Fits(kind, t) {
			ok = append(ok, t)
		}
	}
	return "want " + strings.Join(ok, ", ")
}

// uploadTimeout bounds one upload to WhatsApp's media servers.
const uploadTimeout = 15 * time.Minute

// prepare is the sender's step before build, whatever the kind: a media
// body without its WhatsApp upload is uploaded (streamed from the media
// store through a temporary file in its directory, removed after) and the
// result committed into the row's content before the message goes. A
// crash before that commit uploads again (nothing was sent); after it, a
// retry and a retry receipt rebuild the same message from the row and
// never upload again.
func (s *session) prepare(ctx context.Context, cli *whatsmeow.Client, m *Message) error {
	st := m.Content.Media
	if st == nil || st.Upload != nil {
		return nil
	}
	e := s.e
	if e.cfg.Media == nil {
		return &permanentError{ErrNoMediaStore.Error()}
	}
	_, r, err := e.cfg.Media.Open(ctx, st.ID)
	if errors.Is(err, media.ErrNotFound) || errors.Is(err, media.ErrFailed) {
		return &permanentError{"its media item is gone: " + err.Error()}
	}
	if err != nil {
		return fmt.Errorf("opening its media: %w", err)
	}
	defer r.Close()
	tmp, err := e.cfg.Media.TempFile()
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	uctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	up, err := cli.UploadReader(uctx, r, tmp, whatsmeow.MediaType(st.AppInfo))
	if err != nil {
		return fmt.Errorf("uploading its media: %w", err)
	}
	if st.SHA256 != "" && hex.EncodeToString(up.FileSHA256) != st.SHA256 {
		return &permanentError{"its media item's bytes changed since it was queued"}
	}
	st.Upload = &MediaUpload{URL: up.URL, DirectPath: up.DirectPath, MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: up.FileLength}
	b, err := json.Marshal(m.Content)
	if err != nil {
		return &permanentError{"content: " + err.Error()}
	}
	return e.cfg.DB.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET content = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
			string(b), e.cfg.Now().UnixNano(), m.ID, StatusQueued)
		return err
	})
}
