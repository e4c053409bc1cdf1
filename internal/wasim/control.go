package wasim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"crypto/tls"
	"crypto/x509"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// The control API lets a process that does not hold the *Server (an
// appliance in sandbox mode with --sandbox=HOST:PORT, or a test that
// SIGKILLs such an appliance) play the phones and contacts. JSON over HTTP
// on loopback:
//
//	GET  /v1/info                          root key, websocket address, TLS certificate
//	POST /v1/phones/{phone}/scan           {"code": "..."}
//	POST /v1/phones/{phone}/logout
//	POST /v1/contacts                      {"phone", "name", "read_after_ms" (-1: never)} -> {"jid", "lid"}
//	POST /v1/contacts/{phone}/send         {"to": "<jid>", "reply_to", "undecryptable", and one of the Outgoing
//	                                        fields: "text", "media" {"kind","data" (base64),"mimetype",...},
//	                                        "location", "contacts", "poll", "reaction", "edit", "delete", "vote"} -> {"id"}
//	POST /v1/contacts/{phone}/retry        {"id"}: ask the sender's device for message id again
//	GET  /v1/contacts/{phone}/inbox        [{"id","from","text","reply_to","at","deliveries","resends"}]
//	POST /v1/faults                        {"refuse_connections": bool, "fail_sends": code, "drop_sends": bool, "withhold_acks": bool,
//	                                        "temporary_ban": {"phone", "code", "expiry_ms"} (expiry_ms 0 lifts it),
//	                                        "expired_media": bool}
//
// Errors are {"error", "code"}: 400 "invalid" (ErrInvalid), 404 for an
// unknown contact, 404 "unknown_message" (ErrUnknownMessage).
//
// The control API listens on TCP loopback; an InMemory server has none.

// maxControlBody bounds a control request (a send carries its media inline).
const maxControlBody = 256 << 20

type info struct {
	RootKey string `json:"root_key"`
	WSAddr  string `json:"ws_addr"`
	CertPEM string `json:"cert_pem"`
}

// InboxEntry is one message in a contact's inbox, as the control API shows
// it: its kind (Received.Kind) and that kind's fields.
type InboxEntry struct {
	ID         string    `json:"id"`
	From       string    `json:"from"`
	Kind       string    `json:"kind"`
	Text       string    `json:"text"`                 // text, or an edit's new text
	ReplyTo    string    `json:"reply_to,omitempty"`   // the quoted message's id
	ReplyFrom  string    `json:"reply_from,omitempty"` // the quoted message's sender (ContextInfo.Participant)
	At         time.Time `json:"at"`
	Deliveries int       `json:"deliveries"` // decrypted copies (1 unless something went wrong)
	Resends    int       `json:"resends"`    // sends of the same id the server de-duplicated
	// Media kinds: the decrypted bytes' SHA-256 (hex) and size, and the
	// message's fields.
	SHA256    string `json:"sha256,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Mimetype  string `json:"mimetype,omitempty"`
	Caption   string `json:"caption,omitempty"`
	Filename  string `json:"filename,omitempty"`
	Voice     bool   `json:"voice,omitempty"`
	VideoNote bool   `json:"video_note,omitempty"`
	// The other kinds' content; Message in a reaction, edit, delete or
	// vote is the id of the message it points at.
	Location *Location `json:"location,omitempty"`
	Contacts []Card    `json:"contacts,omitempty"`
	Poll     *Poll     `json:"poll,omitempty"`
	Reaction *Reaction `json:"reaction,omitempty"`
	Edit     *Change   `json:"edit,omitempty"`
	Delete   *Change   `json:"delete,omitempty"`
	Vote     *Vote     `json:"vote,omitempty"` // the chosen option names, decrypted
	// Error says why media did not download or a vote did not decrypt.
	Error string `json:"error,omitempty"`
}

// ControlHandler serves the control API for this server.
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	failCode := func(w http.ResponseWriter, status int, code string, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "code": code})
	}
	fail := func(w http.ResponseWriter, status int, err error) { failCode(w, status, "", err) }
	ok := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		ok(w, info{RootKey: base64.StdEncoding.EncodeToString(s.root.Pub[:]), WSAddr: s.Addr(),
			CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tlsCert.Certificate[0]}))})
	})
	mux.HandleFunc("POST /v1/phones/{phone}/scan", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Code string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, 400, err)
			return
		}
		if err := s.Phone(r.PathValue("phone")).ScanQR(req.Code); err != nil {
			fail(w, 409, err)
			return
		}
		ok(w, map[string]string{"status": "scanned"})
	})
	mux.HandleFunc("POST /v1/phones/{phone}/logout", func(w http.ResponseWriter, r *http.Request) {
		s.Phone(r.PathValue("phone")).LogOut()
		ok(w, map[string]string{"status": "logged_out"})
	})
	mux.HandleFunc("POST /v1/contacts", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Phone       string `json:"phone"`
			Name        string `json:"name"`
			ReadAfterMS int64  `json:"read_after_ms"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Phone == "" {
			fail(w, 400, errors.New("want {\"phone\": ...}"))
			return
		}
		ct, err := s.Contact(req.Phone)
		if err != nil {
			fail(w, 500, err)
			return
		}
		if req.Name != "" {
			ct.SetName(req.Name)
		}
		ct.SetReceipts(ReceiptPolicy{ReadAfter: time.Duration(req.ReadAfterMS) * time.Millisecond})
		ok(w, map[string]string{"jid": ct.JID().String(), "lid": ct.LID().String()})
	})
	mux.HandleFunc("POST /v1/contacts/{phone}/send", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To            string `json:"to"`
			Undecryptable bool   `json:"undecryptable"`
			Outgoing
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, maxControlBody)).Decode(&req); err != nil {
			fail(w, 400, err)
			return
		}
		if !s.HasContact(r.PathValue("phone")) {
			fail(w, 404, errors.New("no such contact"))
			return
		}
		to, err := types.ParseJID(req.To)
		if err != nil {
			fail(w, 400, err)
			return
		}
		var id string
		if req.Undecryptable {
			text := ""
			if req.Text != nil {
				text = *req.Text
			}
			id, err = s.ContactSendUndecryptable(r.Context(), r.PathValue("phone"), to, text)
		} else {
			id, err = s.ContactSendKind(r.Context(), r.PathValue("phone"), to, req.Outgoing)
		}
		switch {
		case errors.Is(err, ErrInvalid):
			failCode(w, 400, "invalid", err)
			return
		case errors.Is(err, ErrUnknownMessage):
			failCode(w, 404, "unknown_message", err)
			return
		case err != nil:
			fail(w, 409, err)
			return
		}
		ok(w, map[string]string{"id": id})
	})
	mux.HandleFunc("POST /v1/contacts/{phone}/retry", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID string `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" {
			fail(w, 400, errors.New("want {\"id\": ...}"))
			return
		}
		if !s.HasContact(r.PathValue("phone")) {
			fail(w, 404, errors.New("no such contact"))
			return
		}
		if err := s.ContactRequestRetry(r.Context(), r.PathValue("phone"), req.ID); err != nil {
			fail(w, 409, err)
			return
		}
		ok(w, map[string]string{"status": "requested"})
	})
	mux.HandleFunc("GET /v1/contacts/{phone}/inbox", func(w http.ResponseWriter, r *http.Request) {
		if !s.HasContact(r.PathValue("phone")) {
			fail(w, 404, errors.New("no such contact"))
			return
		}
		out, _ := s.InboxOf(r.Context(), r.PathValue("phone"))
		ok(w, out)
	})
	mux.HandleFunc("POST /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		var req Faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(w, 400, err)
			return
		}
		s.SetFaults(req)
		ok(w, map[string]string{"status": "ok"})
	})
	return mux
}

// Faults are fault switches for SetFaults and the control API; nil leaves a
// switch as it is. The send faults (FailSends, DropSends, WithholdAcks)
// exclude each other: the last one set wins, and setting any to its zero
// value restores normal acks.
type Faults struct {
	RefuseConnections *bool `json:"refuse_connections,omitempty"`
	FailSends         *int  `json:"fail_sends,omitempty"`
	DropSends         *bool `json:"drop_sends,omitempty"`
	WithholdAcks      *bool `json:"withhold_acks,omitempty"`
	// TemporaryBan bans an account for a while (Server.TemporaryBan).
	TemporaryBan *BanFault `json:"temporary_ban,omitempty"`
	// ExpiredMedia makes contacts' media answer 410 until the client's
	// phone re-uploads it for a media retry receipt (Server.ExpireMedia).
	ExpiredMedia *bool `json:"expired_media,omitempty"`
}

// BanFault is a Faults.TemporaryBan: the account's phone number, WhatsApp's
// reason code, and the expiry in milliseconds (0 lifts the ban).
type BanFault struct {
	Phone    string `json:"phone"`
	Code     int    `json:"code"`
	ExpiryMS int64  `json:"expiry_ms"`
}

// SetFaults sets the switches that f names.
func (s *Server) SetFaults(f Faults) {
	if f.RefuseConnections != nil {
		s.RefuseConnections(*f.RefuseConnections)
	}
	if f.FailSends != nil {
		s.FailSends(*f.FailSends)
	}
	if f.DropSends != nil {
		s.DropSends(*f.DropSends)
	}
	if f.WithholdAcks != nil {
		s.WithholdAcks(*f.WithholdAcks)
	}
	if f.ExpiredMedia != nil {
		s.ExpireMedia(*f.ExpiredMedia)
	}
	if b := f.TemporaryBan; b != nil {
		s.TemporaryBan(b.Phone, b.Code, time.Duration(b.ExpiryMS)*time.Millisecond)
	}
}

// errInMemory is returned by ServeControl for an InMemory server.
var errInMemory = errors.New("wasim: an in-memory server cannot be reached from another process")

// ServeControl serves the control API on addr (loopback) until ctx ends.
// An InMemory server refuses: the websocket address it would hand out
// reaches nothing.
func (s *Server) ServeControl(ctx context.Context, addr string) (net.Addr, error) {
	if s.mem != nil {
		return nil, errInMemory
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: s.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	go srv.Serve(ln)
	return ln.Addr(), nil
}

// Backend is what an appliance in sandbox mode needs of a wasim, whether
// it runs in the same process (*Server) or another (*Remote).
type Backend interface {
	Prepare(cli *whatsmeow.Client)
	Scan(ctx context.Context, phone, code string) error
	AddContact(ctx context.Context, phone, name string, readAfter time.Duration) error
	ContactSend(ctx context.Context, phone string, to types.JID, text, replyTo string) (string, error)
	ContactSendUndecryptable(ctx context.Context, phone string, to types.JID, text string) (string, error)
	ContactSendKind(ctx context.Context, phone string, to types.JID, o Outgoing) (string, error)
	ContactRequestRetry(ctx context.Context, phone, id string) error
	InboxOf(ctx context.Context, phone string) ([]InboxEntry, error)
	Close() error
}

var (
	_ Backend = (*Server)(nil)
	_ Backend = (*Remote)(nil)
)

// Scan completes a pending QR pairing as phone.
func (s *Server) Scan(ctx context.Context, phone, code string) error {
	return s.Phone(phone).ScanQR(code)
}

// AddContact creates (or updates) a contact; readAfter < 0 means never.
func (s *Server) AddContact(ctx context.Context, phone, name string, readAfter time.Duration) error {
	ct, err := s.Contact(phone)
	if err != nil {
		return err
	}
	if name != "" {
		ct.SetName(name)
	}
	ct.SetReceipts(ReceiptPolicy{ReadAfter: readAfter})
	return nil
}

// ContactSend makes a contact send text to the account to (a reply when
// replyTo is set); ErrNotFound for an unknown contact.
func (s *Server) ContactSend(ctx context.Context, phone string, to types.JID, text, replyTo string) (string, error) {
	if !s.HasContact(phone) {
		return "", ErrNotFound
	}
	ct, err := s.Contact(phone)
	if err != nil {
		return "", err
	}
	if replyTo != "" {
		return ct.Reply(ctx, to, replyTo, text)
	}
	return ct.Send(ctx, to, text)
}

// ContactSendKind makes a contact send a message of any kind (see
// Contact.SendKind); ErrNotFound for an unknown contact.
func (s *Server) ContactSendKind(ctx context.Context, phone string, to types.JID, o Outgoing) (string, error) {
	if !s.HasContact(phone) {
		return "", ErrNotFound
	}
	ct, err := s.Contact(phone)
	if err != nil {
		return "", err
	}
	return ct.SendKind(ctx, to, o)
}

// ContactSendUndecryptable makes a contact send text that the account's
// devices can decrypt only once their retry receipt is answered (see
// Contact.SendUndecryptable); ErrNotFound for an unknown contact.
func (s *Server) ContactSendUndecryptable(ctx context.Context, phone string, to types.JID, text string) (string, error) {
	if !s.HasContact(phone) {
		return "", ErrNotFound
	}
	ct, err := s.Contact(phone)
	if err != nil {
		return "", err
	}
	return ct.SendUndecryptable(ctx, to, text)
}

// ContactRequestRetry makes a contact ask for message id again (see
// Contact.RequestRetry); ErrNotFound for an unknown contact.
func (s *Server) ContactRequestRetry(ctx context.Context, phone, id string) error {
	if !s.HasContact(phone) {
		return ErrNotFound
	}
	ct, err := s.Contact(phone)
	if err != nil {
		return err
	}
	return ct.RequestRetry(ctx, id)
}

// InboxOf lists what a contact received; ErrNotFound for an unknown contact.
func (s *Server) InboxOf(ctx context.Context, phone string) ([]InboxEntry, error) {
	if !s.HasContact(phone) {
		return nil, ErrNotFound
	}
	ct, err := s.Contact(phone)
	if err != nil {
		return nil, err
	}
	out := []InboxEntry{}
	for _, m := range ct.Inbox() {
		out = append(out, ct.entry(m))
	}
	return out, nil
}

// Remote is a wasim in another process, reached through its control API.
type Remote struct {
	base   string
	hc     *http.Client
	info   info
	root   [32]byte
	client *http.Client
}

// Dial connects to the control API at addr (HOST:PORT).
func Dial(ctx context.Context, addr string) (*Remote, error) {
	r := &Remote{base: "http://" + addr, hc: &http.Client{Timeout: 30 * time.Second}}
	if err := r.call(ctx, "GET", "/v1/info", nil, &r.info); err != nil {
		return nil, fmt.Errorf("wasim at %s: %w", addr, err)
	}
	k, err := base64.StdEncoding.DecodeString(r.info.RootKey)
	if err != nil || len(k) != 32 {
		return nil, errors.New("wasim: bad root key")
	}
	r.root = [32]byte(k)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(r.info.CertPEM)) {
		return nil, errors.New("wasim: bad certificate")
	}
	ws := r.info.WSAddr
	r.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ws)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "wasim"},
	}}
	return r, nil
}

func (r *Remote) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		var e struct{ Error, Code string }
		json.Unmarshal(b, &e)
		switch {
		case e.Code == "unknown_message":
			return fmt.Errorf("%w: %s", ErrUnknownMessage, e.Error)
		case e.Code == "invalid":
			return fmt.Errorf("%w: %s", ErrInvalid, e.Error)
		}
		if resp.StatusCode == 404 {
			return fmt.Errorf("%w: %s", ErrNotFound, e.Error)
		}
		return fmt.Errorf("wasim: %s %s: %d %s", method, path, resp.StatusCode, e.Error)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// ErrNotFound is returned by Remote for an unknown contact.
var ErrNotFound = errors.New("wasim: not found")

// Prepare points a whatsmeow client at the remote server (see Server.Prepare).
func (r *Remote) Prepare(cli *whatsmeow.Client) {
	certMu.Lock()
	whatsmeow.WACertPubKey = r.root
	certMu.Unlock()
	cli.SetWebsocketHTTPClient(r.client)
	cli.SetPreLoginHTTPClient(r.client)
	cli.SetMediaHTTPClient(r.client)
}

// Scan completes a pending QR pairing as phone.
func (r *Remote) Scan(ctx context.Context, phone, code string) error {
	return r.call(ctx, "POST", "/v1/phones/"+digits(phone)+"/scan", map[string]string{"code": code}, nil)
}

// AddContact creates (or updates) a contact; readAfter < 0 means never.
func (r *Remote) AddContact(ctx context.Context, phone, name string, readAfter time.Duration) error {
	return r.call(ctx, "POST", "/v1/contacts", map[string]any{"phone": digits(phone), "name": name, "read_after_ms": readAfter.Milliseconds()}, nil)
}

// ContactSend makes a contact send text (a reply when replyTo is set).
func (r *Remote) ContactSend(ctx context.Context, phone string, to types.JID, text, replyTo string) (string, error) {
	var out struct{ ID string }
	err := r.call(ctx, "POST", "/v1/contacts/"+digits(phone)+"/send", map[string]string{"to": to.String(), "text": text, "reply_to": replyTo}, &out)
	return out.ID, err
}

// ContactSendKind makes a contact send a message of any kind.
func (r *Remote) ContactSendKind(ctx context.Context, phone string, to types.JID, o Outgoing) (string, error) {
	var out struct{ ID string }
	err := r.call(ctx, "POST", "/v1/contacts/"+digits(phone)+"/send", struct {
		To string `json:"to"`
		Outgoing
	}{to.String(), o}, &out)
	return out.ID, err
}

// ContactSendUndecryptable makes a contact send text the devices can
// decrypt only after a retry (see Contact.SendUndecryptable).
func (r *Remote) ContactSendUndecryptable(ctx context.Context, phone string, to types.JID, text string) (string, error) {
	var out struct{ ID string }
	err := r.call(ctx, "POST", "/v1/contacts/"+digits(phone)+"/send", map[string]any{"to": to.String(), "text": text, "undecryptable": true}, &out)
	return out.ID, err
}

// ContactRequestRetry makes a contact ask for message id again (see
// Contact.RequestRetry).
func (r *Remote) ContactRequestRetry(ctx context.Context, phone, id string) error {
	return r.call(ctx, "POST", "/v1/contacts/"+digits(phone)+"/retry", map[string]string{"id": id}, nil)
}

// Close releases nothing: the remote server keeps running.
func (r *Remote) Close() error { return nil }

// InboxOf lists what a contact received.
func (r *Remote) InboxOf(ctx context.Context, phone string) ([]InboxEntry, error) {
	var out []InboxEntry
	err := r.call(ctx, "GET", "/v1/contacts/"+digits(phone)+"/inbox", nil, &out)
	return out, err
}

// SetFaults sets the remote server's fault switches (see Server.SetFaults).
func (r *Remote) SetFaults(ctx context.Context, f Faults) error {
	return r.call(ctx, "POST", "/v1/faults", f, nil)
}
