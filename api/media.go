package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"waappliance/media"
	"waappliance/peers"
)

// MediaStore is the subset of *media.Store the media routes use; an
// interface so that the handlers say what they need of it.
type MediaStore interface {
	Put(ctx context.Context, peer, mediaType, filename string, size int64, body io.Reader) (media.Item, error)
	Get(ctx context.Context, id string) (media.Item, error)
	Open(ctx context.Context, id string) (media.Item, io.ReadSeekCloser, error)
}

var _ MediaStore = (*media.Store)(nil)

var errNoMedia = errorf(http.StatusServiceUnavailable, "unavailable", "the media store is not running on this appliance")

func (s *server) needMedia(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.media == nil {
			return errNoMedia
		}
		return h(w, r)
	}
}

// uploadMedia is POST /v1/media: the raw bytes as the body, their media
// type as Content-Type, Content-Length required (limitBody: 411), an
// optional file name as ?filename= or Content-Disposition's filename. The
// store checks the type, the kind's limit and the quota before reading,
// the signature, and answers only once the bytes are durable (201).
func (s *server) uploadMedia(w http.ResponseWriter, r *http.Request) error {
	name, err := uploadFilename(r)
	if err != nil {
		w.Header().Set("Connection", "close")
		return err
	}
	p := PeerFrom(r.Context())
	it, err := s.media.Put(r.Context(), p.Name, r.Header.Get("Content-Type"), name, r.ContentLength, r.Body)
	if err != nil {
		// The body was refused unread (or is broken): close rather than
		// read the rest of it.
		w.Header().Set("Connection", "close")
		if errors.Is(err, media.ErrShortBody) && isTimeout(err) {
			return &apiError{Status: http.StatusRequestTimeout, Code: "request_timeout", Message: "request body not received in time", Err: err}
		}
		return err
	}
	writeJSON(w, http.StatusCreated, it)
	return nil
}

// uploadFilename is the file name an upload names: ?filename= first, else
// Content-Disposition's filename parameter (filename* decoded); "" when
// neither says one.
func uploadFilename(r *http.Request) (string, error) {
	if q := r.URL.Query(); q.Has("filename") {
		return q.Get("filename"), nil
	}
	cd := r.Header.Get("Content-Disposition")
	if cd == "" {
		return "", nil
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return "", &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "Content-Disposition does not parse", Err: err}
	}
	return params["filename"], nil
}

// visibleMedia reports whether p may see it: an upload its uploader (and
// admins), inbound media every peer whose session allow-list includes its
// session.
func visibleMedia(p *peers.Peer, it media.Item) bool {
	switch {
	case p.Has(peers.ScopeAdmin):
		return true
	case it.Peer != "":
		return it.Peer == p.Name
	case it.Session != "":
		return p.AllowsSession(it.Session)
	}
	return false
}

// mediaFor is the item {id} names, when the peer may see it; ErrNotFound
// alike for one that does not exist and one it may not see.
func (s *server) mediaFor(r *http.Request) (media.Item, error) {
	id := pathVar(r, "id")
	it, err := s.media.Get(r.Context(), id)
	if err != nil {
		return media.Item{}, err
	}
	if !visibleMedia(PeerFrom(r.Context()), it) {
		return media.Item{}, fmt.Errorf("%w: %s", media.ErrNotFound, id)
	}
	return it, nil
}

// getMedia is GET /v1/media/{id}: the bytes with their media type, Range
// and conditional requests (ETag: the SHA-256) by http.ServeContent; a
// document is an attachment with its file name. 409 media_pending before
// an inbound item is downloaded, 410 media_failed when that failed.
func (s *server) getMedia(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.mediaFor(r); err != nil {
		return err
	}
	it, rc, err := s.media.Open(r.Context(), pathVar(r, "id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", it.Type)
	h.Set("ETag", `"`+it.SHA256+`"`)
	// Bytes from anyone, never a page: no script, no plugin, no form, even
	// opened directly (the API's CSP already says default-src 'none').
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	if d := contentDisposition(it); d != "" {
		h.Set("Content-Disposition", d)
	}
	http.ServeContent(w, r, "", it.CreatedAt, rc)
	return nil
}

// contentDisposition is an item's Content-Disposition: attachment for
// documents (never shown in place), inline for what a browser shows as
// media; the file name quoted and escaped by mime.FormatMediaType (RFC
// 2231 filename* for non-ASCII). "" for inline media without a name.
func contentDisposition(it media.Item) string {
	disp := "inline"
	if media.KindOf(it.Type) == media.KindDocument {
		disp = "attachment"
	}
	if it.Filename == "" {
		if disp == "inline" {
			return ""
		}
		return disp
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": it.Filename}); v != "" {
		return v
	}
	return disp
}

// mediaInfo is GET /v1/media/{id}/info: the item's JSON in any state (a
// pending item's state, a failed one's error).
func (s *server) mediaInfo(w http.ResponseWriter, r *http.Request) error {
	it, err := s.mediaFor(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, it)
	return nil
}

var errNoThumbnail = errorf(http.StatusNotFound, "no_thumbnail", "this item has no thumbnail (only JPEG, PNG and GIF images get one)")

// mediaThumbnail is GET /v1/media/{id}/thumbnail: the item's small JPEG
// (at most media.ThumbSize px on its longer side), 404 no_thumbnail when
// it has none.
func (s *server) mediaThumbnail(w http.ResponseWriter, r *http.Request) error {
	it, err := s.mediaFor(r)
	if err != nil {
		return err
	}
	if len(it.Thumbnail) == 0 {
		return errNoThumbnail
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.WriteHeader(http.StatusOK)
	w.Write(it.Thumbnail)
	return nil
}
