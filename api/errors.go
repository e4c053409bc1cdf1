package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"waappliance/audit"
	"waappliance/media"
	"waappliance/peers"
	"waappliance/webhooks"
	"waappliance/whatsapp"
)

// apiError is what a handler returns to say exactly what the client sees
// (Status, Code, Message) apart from what only the log sees (Err).
type apiError struct {
	Status  int
	Code    string
	Message string
	Err     error
	// Header holds extra response headers, e.g. Retry-After.
	Header http.Header
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errors the API itself returns.
var (
	errNotFound         = errorf(http.StatusNotFound, "not_found", "no such route")
	errMethodNotAllowed = errorf(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
)

// sentinels maps package errors to what the client sees. The message is the
// error's own text: sentinel texts are written for users.
var sentinels = []struct {
	err    error
	status int
	code   string
}{
	{peers.ErrNotFound, http.StatusNotFound, "not_found"},
	{peers.ErrExists, http.StatusConflict, "already_exists"},
	{peers.ErrKeyInUse, http.StatusConflict, "already_exists"},
	{peers.ErrBadExpiry, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadName, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadScope, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadSession, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadLimit, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadCap, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadKey, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrBadAPIHost, http.StatusBadRequest, "invalid_argument"},
	{peers.ErrSubnetFull, http.StatusConflict, "subnet_full"},

	{webhooks.ErrNotFound, http.StatusNotFound, "not_found"},
	{webhooks.ErrBadURL, http.StatusBadRequest, "invalid_argument"},
	{webhooks.ErrBadEvents, http.StatusBadRequest, "invalid_argument"},
	{webhooks.ErrBadSessions, http.StatusBadRequest, "invalid_argument"},
	{webhooks.ErrBadRewind, http.StatusBadRequest, "invalid_argument"},
	{webhooks.ErrTooMany, http.StatusConflict, "too_many_webhooks"},

	{whatsapp.ErrSessionNotFound, http.StatusNotFound, "not_found"},
	{whatsapp.ErrMessageNotFound, http.StatusNotFound, "not_found"},
	{whatsapp.ErrReplyNotFound, http.StatusNotFound, "not_found"},
	{whatsapp.ErrUnknownKind, http.StatusBadRequest, "invalid_argument"},
	{whatsapp.ErrBadContent, http.StatusBadRequest, "invalid_argument"},
	{whatsapp.ErrTargetNotFound, http.StatusNotFound, "not_found"},
	{whatsapp.ErrNotOwnMessage, http.StatusConflict, "not_own_message"},
	{whatsapp.ErrEditWindowPassed, http.StatusConflict, "edit_window_passed"},
	{whatsapp.ErrDeleteWindowPassed, http.StatusConflict, "delete_window_passed"},
	{whatsapp.ErrWrongMessageKind, http.StatusConflict, "wrong_message_kind"},
	{whatsapp.ErrMediaNotFound, http.StatusNotFound, "not_found"},
	{whatsapp.ErrMediaPending, http.StatusConflict, "media_pending"},
	{whatsapp.ErrMediaMismatch, http.StatusBadRequest, "invalid_argument"},
	{whatsapp.ErrNoMediaStore, http.StatusServiceUnavailable, "unavailable"},
	{whatsapp.ErrNotConnected, http.StatusConflict, "not_connected"},
	{whatsapp.ErrSessionExists, http.StatusConflict, "already_exists"},
	{whatsapp.ErrBadSessionName, http.StatusBadRequest, "invalid_argument"},
	{whatsapp.ErrBadRecipient, http.StatusBadRequest, "invalid_argument"},
	{whatsapp.ErrEmptyText, http.StatusBadRequest, "invalid_argument"},
	{whatsapp.ErrTextTooLong, http.StatusRequestEntityTooLarge, "too_large"},
	{whatsapp.ErrNotPairing, http.StatusConflict, "not_pairing"},
	{whatsapp.ErrAlreadyPaired, http.StatusConflict, "already_paired"},
	{whatsapp.ErrNotPaired, http.StatusConflict, "not_paired"},
	{whatsapp.ErrLoggedOut, http.StatusConflict, "logged_out"},
	{whatsapp.ErrReplaced, http.StatusConflict, "session_replaced"},
	{whatsapp.ErrIdempotencyConflict, http.StatusUnprocessableEntity, "idempotency_conflict"},
	{whatsapp.ErrClosed, http.StatusServiceUnavailable, "unavailable"},
	{whatsapp.ErrUnreachable, http.StatusBadGateway, "whatsapp_unreachable"},
	{whatsapp.ErrTimeout, http.StatusGatewayTimeout, "whatsapp_timeout"},
	{media.ErrNotFound, http.StatusNotFound, "not_found"},
	{media.ErrPending, http.StatusConflict, "media_pending"},
	{media.ErrFailed, http.StatusGone, "media_failed"},
	{media.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{media.ErrTypeMismatch, http.StatusUnsupportedMediaType, "media_type_mismatch"},
	{media.ErrUnsupportedType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{media.ErrQuota, http.StatusInsufficientStorage, "media_quota_exceeded"},
	{media.ErrNoSpace, http.StatusInsufficientStorage, "insufficient_storage"},
	{media.ErrShortBody, http.StatusBadRequest, "short_body"},
	{media.ErrBadFilename, http.StatusBadRequest, "invalid_argument"},
	{media.ErrEmpty, http.StatusBadRequest, "invalid_argument"},
	{ErrSandboxNotFound, http.StatusNotFound, "not_found"},
	{ErrSandboxBadRequest, http.StatusBadRequest, "invalid_argument"},
}

// toAPIError turns any error into what the client may see.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if ce, ok := cursorExpired(err); ok {
		return ce
	}
	if errors.Is(err, audit.ErrNotRecorded) {
		return errStorageUnavailable(err) // as when beginAudit fails
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return &apiError{Status: s.status, Code: s.code, Message: userMessage(err, s.err), Err: err}
		}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the appliance log with this request_id", Err: err}
}

// userMessage keeps the part of a wrapped error chain that starts at the
// sentinel, dropping internal prefixes such as "peers.Add \"x\": ".
func userMessage(err, sentinel error) string {
	msg, s := err.Error(), sentinel.Error()
	if i := strings.Index(msg, s); i >= 0 {
		return msg[i:]
	}
	return s
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// ResponseError is an error answer of the API as a client reads it (the
// one JSON error shape that writeError writes). Err is the package
// sentinel the answer was made from, when Code and the start of Message
// name one in the sentinels table, so that errors.Is works on the client
// side as on the server; nil otherwise.
type ResponseError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	Err       error
}

// Error is the API's message; a server fault adds the request id that the
// appliance log names.
func (e *ResponseError) Error() string {
	if e.Status >= 500 && e.RequestID != "" {
		return fmt.Sprintf("%s (request_id %s)", e.Message, e.RequestID)
	}
	return e.Message
}

func (e *ResponseError) Unwrap() error { return e.Err }

// ReadError decodes an error answer with status and body. A body that is
// not the JSON error shape gives a ResponseError whose message quotes it.
func ReadError(status int, body []byte) *ResponseError {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Message == "" {
		return &ResponseError{Status: status, Code: "unexpected_answer",
			Message: fmt.Sprintf("unexpected answer %d: %s", status, clip(string(bytes.TrimSpace(body)), 200))}
	}
	e := &ResponseError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, RequestID: eb.Error.RequestID}
	// The longest sentinel text the message starts with (userMessage keeps
	// the chain from the sentinel on), among those answered with Code.
	for _, s := range sentinels {
		t := s.err.Error()
		if s.code == e.Code && strings.HasPrefix(e.Message, t) && (e.Err == nil || len(t) > len(e.Err.Error())) {
			e.Err = s.err
		}
	}
	return e
}

// writeError is the one place errors reach the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ae := toAPIError(err)
	rid := requestID(r.Context())
	if ae.Status >= 500 {
		// Redacted: causes from the WhatsApp engine and sandbox paths can
		// carry phone numbers, which never go to the log above debug.
		log.Error("request failed", "request_id", rid, "method", r.Method, "path", whatsapp.Redact(r.URL.Path), "err", whatsapp.Redact(fmt.Sprint(ae.Err)))
	} else if ae.Err != nil {
		log.Debug("request refused", "request_id", rid, "code", ae.Code, "err", ae.Err)
	}
	for k, vs := range ae.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, ae.Status, errorBody{errorDetail{Code: ae.Code, Message: ae.Message, RequestID: rid}})
}

// writeJSON writes v with status; the body is encoded before the header is
// sent so an encoding failure never leaves a partial response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	b := buf.Bytes()
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"response encoding failed","request_id":""}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// maxBody is the request body limit of every route but raw uploads
// (route.maxBody).
const maxBody = 64 << 10

// DefaultBodyTimeout bounds the reading of a request body: a maxBody body
// in 10 s is 6.5 KiB/s, far below any working tunnel, while a client that
// drips a byte every few seconds is cut instead of holding its connection.
const DefaultBodyTimeout = 10 * time.Second

// The body deadline grows with the declared length: bodyTimeout plus one
// second per uploadRate bytes (1 MiB), capped at maxBodyTime. So an upload
// must keep up 1 MiB/s on average (a 100 MiB document: 110 s), a JSON body
// gets at most 62 ms more than bodyTimeout, and no request holds its
// connection longer than an hour.
const (
	uploadRate  = 1 << 20
	maxBodyTime = time.Hour
)

// bodyDeadline is how long a body of declared length n (-1: unknown) may
// take to arrive, from the end of its headers.
func bodyDeadline(base time.Duration, n int64) time.Duration {
	if n <= 0 {
		return base
	}
	return min(base+time.Duration(float64(n)/uploadRate*float64(time.Second)), maxBodyTime)
}

// limitBody is the one check of a request body before any handler runs,
// with limit the route's (bodyLimit: maxBody but for raw uploads). A
// declared Content-Length over limit is refused with 413 without reading
// a byte of it (with Expect: 100-continue the client never gets its 100
// Continue: net/http sends that only when a handler reads the body). A
// route with a raised limit takes only a declared length: 411 without one
// (chunked or missing), so that its limits are checked before reading.
// Both refusals close the connection (closing) instead of reading. A
// body must then arrive within bodyDeadline, from the end of the headers:
// the connection's read deadline is set for it. net/http lifts the
// deadline itself once the body is read to its end (its background read,
// which watches for the client going away, starts without one), so a
// handler that runs long after reading is not cut. Requests without a body
// (SSE streams included) get no deadline. A per-request deadline rather
// than http.Server.ReadTimeout lets uploads have theirs.
func (s *server) limitBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return closing(errorf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", limit))
	}
	if limit > maxBody && (r.ContentLength < 0 || r.Header.Get("Content-Length") == "") {
		return closing(errorf(http.StatusLengthRequired, "length_required", "this route needs a Content-Length (no chunked body)"))
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	// An error means no connection to bound (handler tests, httptest's
	// recorder): nothing to do.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyDeadline(s.bodyTimeout, r.ContentLength)))
	return nil
}

// closing makes e close the connection after it is answered: a refused
// body is not read (net/http would otherwise read up to 256 KiB of it
// first, or wait for a chunked one that never comes).
func closing(e *apiError) *apiError {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set("Connection", "close")
	return e
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// decodeJSON reads one JSON object into v, refusing unknown fields,
// trailing data, bodies over maxBody and what strictJSON refuses
// (duplicate keys, invalid UTF-8, NUL). It is the one place request
// bodies are decoded.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSONUpTo(w, r, v, maxBody)
}

// decodeJSONUpTo is decodeJSON for a route whose body limit is raised to
// limit (route.maxBody: its Content-Length is then declared, and read into
// a buffer of that size rather than one grown by doubling).
func decodeJSONUpTo(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	var buf bytes.Buffer
	if limit > maxBody && r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, limit)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	raw := buf.Bytes()
	if err != nil {
		return jsonError(err)
	}
	if err := decodeStrict(raw, v); err != nil {
		return err
	}
	return strictJSON(raw)
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad_json", "unexpected data after the JSON object")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err == nil {
		return errorf(http.StatusBadRequest, "bad_json", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) *apiError {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case isTimeout(err):
		return &apiError{Status: http.StatusRequestTimeout, Code: "request_timeout", Message: "request body not received in time", Err: err}
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body over %d bytes", mbe.Limit), Err: err}
	case errors.Is(err, io.EOF):
		return &apiError{Status: http.StatusBadRequest, Code: "bad_json", Message: "request body is empty; a JSON object is required", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{Status: http.StatusBadRequest, Code: "bad_json", Message: "malformed JSON: unexpected end of body", Err: err}
	case errors.As(err, &se):
		return &apiError{Status: http.StatusBadRequest, Code: "bad_json", Message: fmt.Sprintf("malformed JSON at byte %d", se.Offset), Err: err}
	case errors.As(err, &te):
		return &apiError{Status: http.StatusBadRequest, Code: "bad_json", Message: fmt.Sprintf("field %q: want %s", te.Field, te.Type), Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Message: strings.TrimPrefix(err.Error(), "json: "), Err: err}
	}
	return &apiError{Status: http.StatusBadRequest, Code: "bad_json", Message: "malformed JSON", Err: err}
}
