package wasim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite" // simulated devices' Signal state
)

// Options configure a Server. Zero values: Addr "127.0.0.1:0", Logger
// discards, DBPath "" keeps the simulated devices' state in memory,
// InMemory false (a TCP listener on Addr).
type Options struct {
	Addr   string
	Logger *slog.Logger
	// DBPath is a SQLite file for the simulated phones' and contacts' Signal
	// state, so a standalone wasim keeps its accounts across restarts.
	DBPath string
	// InMemory serves on in-memory connections instead of a TCP listener
	// (Addr is ignored): no socket is listened on, and only the clients that
	// HTTPClient and Prepare hand out reach the server. It is how an
	// appliance in sandbox mode keeps its promise that the host sees one UDP
	// port and nothing else. Such a server cannot be reached from another
	// process: ServeControl refuses it.
	InMemory bool
}

// Server is one simulated WhatsApp service on a loopback TLS port, or on
// in-memory connections (Options.InMemory).
type Server struct {
	log    *slog.Logger
	root   *keys.KeyPair
	static *keys.KeyPair
	cert   []byte

	tlsCert tls.Certificate
	pool    *x509.CertPool
	ln      net.Listener
	mem     *memListener // the listener when InMemory, else nil
	http    *http.Server

	db        *sql.DB
	blobDir   string // uploaded media files; removed on Close
	container *sqlstore.Container

	mu        sync.Mutex
	accounts  map[string]*account // by phone number (digits)
	byLID     map[string]*account // by LID (digits)
	pending   map[string]*session // QR refs waiting for a scan
	sessions  map[types.JID]*session
	offline   map[types.JID][]waBinary.Node
	codePairs map[string]*codePairing // by phone number
	bans      map[string]tempBan      // by phone number (TemporaryBan)
	blobs     map[string]*blob        // uploaded media by direct path (files in blobDir)
	hooks     []func(Event)

	saveMu sync.Mutex

	// accepted remembers the sends the server took (by sender device and
	// message id, the newest maxAccepted), so that one sent again is acked
	// again and not delivered twice.
	accepted      map[sendKey]*acceptedSend
	acceptedOrder []sendKey

	refuse atomic.Bool
	// expiredMedia: contacts' media answer 410 until re-uploaded (ExpireMedia).
	expiredMedia atomic.Bool
	ackMode      atomic.Int32 // ackNormal, ackRefuse, ackDrop, ackWithhold
	ackErr       atomic.Int32 // error code for refused sends
	ackDelay     atomic.Int64 // time.Duration before each ack
	nextRef      atomic.Int64
}

// New creates and starts a server.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: o.Logger.With("component", "wasim"), accounts: map[string]*account{}, byLID: map[string]*account{}, pending: map[string]*session{}, sessions: map[types.JID]*session{}, offline: map[types.JID][]waBinary.Node{}, codePairs: map[string]*codePairing{}, bans: map[string]tempBan{}, blobs: map[string]*blob{}, accepted: map[sendKey]*acceptedSend{}}
	s.root, s.static = keys.NewKeyPair(), keys.NewKeyPair()
	var err error
	if s.cert, err = certChain(s.root, s.static); err != nil {
		return nil, err
	}
	if err := s.makeTLS(); err != nil {
		return nil, err
	}
	var dsn string
	if o.DBPath != "" {
		if f, err := os.OpenFile(o.DBPath, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
			f.Close()
		}
		dsn = "file:" + o.DBPath + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)"
	} else {
		dsn = fmt.Sprintf("file:wasim-%d?mode=memory&cache=shared&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)", time.Now().UnixNano())
	}
	if s.db, err = sql.Open("sqlite", dsn); err != nil {
		return nil, err
	}
	s.container = sqlstore.NewWithDB(s.db, "sqlite", waLog.Noop)
	if err := s.container.Upgrade(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("wasim: device store: %w", err)
	}
	if err := s.load(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if o.InMemory {
		s.mem = newMemListener()
		s.ln = s.mem
	} else if s.ln, err = net.Listen("tcp", o.Addr); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.blobDir, err = newBlobDir(); err != nil {
		s.ln.Close()
		s.db.Close()
		return nil, err
	}
	s.http = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), TLSConfig: &tls.Config{Certificates: []tls.Certificate{s.tlsCert}}}
	go s.http.Serve(tls.NewListener(s.ln, s.http.TLSConfig))
	return s, nil
}

func (s *Server) makeTLS() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wasim"},
		DNSNames: []string{"wasim"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	c, _ := x509.ParseCertificate(der)
	s.pool = x509.NewCertPool()
	s.pool.AddCert(c)
	s.tlsCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return nil
}

// Addr is the loopback address the server listens on ("in-memory" for an
// InMemory server).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HTTPClient returns a client that reaches this server whatever host a
// request names, trusting only its certificate: over loopback TCP, or over
// an in-memory connection for an InMemory server. Give it to whatsmeow's
// SetWebsocketHTTPClient, SetPreLoginHTTPClient and SetMediaHTTPClient.
func (s *Server) HTTPClient() *http.Client {
	var dial func(context.Context) (net.Conn, error)
	if s.mem != nil {
		dial = s.mem.dial
	} else {
		addr := s.Addr()
		dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		TLSClientConfig: &tls.Config{RootCAs: s.pool, ServerName: "wasim"},
	}}
}

var certMu sync.Mutex

// Prepare points a whatsmeow client at this server and installs the
// server's root key as whatsmeow.WACertPubKey. That variable is
// process-wide: a process using wasim must not talk to real WhatsApp.
func (s *Server) Prepare(cli *whatsmeow.Client) {
	certMu.Lock()
	whatsmeow.WACertPubKey = *s.root.Pub
	certMu.Unlock()
	hc := s.HTTPClient()
	cli.SetWebsocketHTTPClient(hc)
	cli.SetPreLoginHTTPClient(hc)
	cli.SetMediaHTTPClient(hc)
}

// Close stops the server and drops every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	ss := make([]*session, 0, len(s.sessions))
	for _, c := range s.sessions {
		ss = append(ss, c)
	}
	for _, c := range s.pending {
		ss = append(ss, c)
	}
	s.mu.Unlock()
	for _, c := range ss {
		c.close()
	}
	err := s.http.Close()
	s.db.Close()
	removeBlobDir(s.blobDir)
	return err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveMedia(w, r) {
		return
	}
	if s.refuse.Load() {
		http.Error(w, "wasim: refusing connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(16 << 20)
	c := &session{srv: s, fc: &frameConn{ws: ws}, done: make(chan struct{})}
	c.run(r.Context())
}

// RefuseConnections makes new websocket connections fail (and drops the
// current ones) until called with false.
func (s *Server) RefuseConnections(refuse bool) {
	s.refuse.Store(refuse)
	if refuse {
		s.mu.Lock()
		ss := make([]*session, 0, len(s.sessions))
		for _, c := range s.sessions {
			ss = append(ss, c)
		}
		s.mu.Unlock()
		for _, c := range ss {
			c.close()
		}
	}
}

type tempBan struct {
	code  int
	until time.Time
}

// TemporaryBan bans the account of phone (E.164 digits, with or without
// '+') for expiry: its companions are dropped now, and each login until
// then is answered with <failure reason="402" code=… expire=…> (expire in
// whole seconds left, rounded up), which whatsmeow reports as
// events.TemporaryBan. code is WhatsApp's reason code (whatsmeow's
// TempBanReason: 101 sent to too many people, 102 blocked by users, …).
// An expiry of 0 lifts the ban.
func (s *Server) TemporaryBan(phone string, code int, expiry time.Duration) {
	phone = strings.TrimPrefix(phone, "+")
	s.mu.Lock()
	if expiry <= 0 {
		delete(s.bans, phone)
		s.mu.Unlock()
		return
	}
	s.bans[phone] = tempBan{code: code, until: time.Now().Add(expiry)}
	var drop []*session
	for j, c := range s.sessions {
		if j.User == phone {
			drop = append(drop, c)
		}
	}
	s.mu.Unlock()
	for _, c := range drop {
		c.close()
	}
}

// banOf returns the ban of phone still in force, if any.
func (s *Server) banOf(phone string) (tempBan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bans[phone]
	if ok && !time.Now().Before(b.until) {
		delete(s.bans, phone)
		return b, false
	}
	return b, ok
}

const (
	ackNormal   = iota
	ackRefuse   // FailSends
	ackDrop     // DropSends
	ackWithhold // WithholdAcks
)

// FailSends makes the server answer every client send with the error code
// (e.g. 479, 500) instead of a normal ack; 0 restores normal acks.
func (s *Server) FailSends(code int) {
	if code == 0 {
		s.ackMode.Store(ackNormal)
		return
	}
	s.ackErr.Store(int32(code))
	s.ackMode.Store(ackRefuse)
}

// DelayAcks makes the server wait d before acking each client send (0: none).
func (s *Server) DelayAcks(d time.Duration) { s.ackDelay.Store(int64(d)) }

// DropSends makes the server swallow client sends whole, as if lost on the
// way: nothing is delivered and nothing acked (false restores normal acks).
func (s *Server) DropSends(drop bool) { s.setMode(drop, ackDrop) }

// WithholdAcks makes the server accept and deliver client sends but never
// ack them, as if the ack were lost on the way back (false restores normal
// acks). A client that sends such a message again with the same id gets
// the ack then, and the contact no second copy (see Resends).
func (s *Server) WithholdAcks(withhold bool) { s.setMode(withhold, ackWithhold) }

func (s *Server) setMode(on bool, mode int32) {
	if on {
		s.ackMode.Store(mode)
	} else {
		s.ackMode.Store(ackNormal)
	}
}

func (s *Server) newRef() string {
	return "2@wasim" + strconv.FormatInt(s.nextRef.Add(1), 10) + "x" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// errUnknown is returned for a phone number wasim does not know.
var errUnknown = errors.New("wasim: unknown phone number")
