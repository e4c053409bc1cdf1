package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"waappliance/api"
	"waappliance/peers"
)

// ControlSocket is the Unix socket in the state dir through which the CLI
// asks a running appliance to do what only it can (pair a session, list
// live state). It is 0600 in a 0700 directory: only the appliance's user
// reaches it, and it is not a network listener.
const ControlSocket = "control.sock"

// localPeer is the identity of control-socket requests.
var localPeer = &peers.Peer{Name: "local-cli", Scopes: []peers.Scope{peers.ScopeAdmin}, Rate: 1000, Burst: 1000, SendPerMinute: 1000}

// listenControl serves h on the control socket until the server is closed.
// A mutating request that succeeded waits for applied (the device taking
// the registry's change) before its answer goes out, so a CLI command that
// returns has its change in force: a peer it added can handshake at once.
func listenControl(dir string, h http.Handler, applied func(), log *slog.Logger) (*http.Server, error) {
	path := filepath.Join(dir, ControlSocket)
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("another appliance is already serving this state dir (%s answers)", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = api.LocalRemoteAddr
			if applied != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
				w = &appliedWriter{ResponseWriter: w, applied: applied}
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       func(ctx context.Context, _ net.Conn) context.Context { return api.WithLocalPeer(ctx, localPeer) },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go srv.Serve(ln)
	return srv, nil
}

// appliedWriter runs applied before the status of a successful answer is
// written (the API holds a mutating request's answer until its audit row
// is committed, so this is after the handler made its change).
type appliedWriter struct {
	http.ResponseWriter
	applied func()
	wrote   bool
}

func (w *appliedWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		if code < 300 {
			w.applied()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *appliedWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *appliedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// controlClient talks to a running appliance over its control socket.
type controlClient struct {
	http *http.Client
}

// errNotRunning says the command needs a running appliance.
var errNotRunning = errors.New("the appliance is not running for this state dir (start it with 'waappliance serve'); session commands talk to it")

// controlDialTimeout bounds the probe of the control socket. A Unix
// socket's connect succeeds as soon as the server's backlog takes it (not
// when it accepts), and fails at once on a socket file nobody listens on.
const controlDialTimeout = time.Second

// serving returns a client of the appliance serving dir, or nil when none
// answers on its control socket: no socket file, or a stale one that a
// killed appliance left behind (connect is refused). Then the command
// works on the store directly, and a serving appliance started meanwhile
// picks the change up at its next poll.
//
// The state lock is not consulted. The socket answering is the proof of a
// live appliance (one embedded without the CLI's lock, as in tests,
// counts); taking the lock to probe it would make a serve starting at that
// moment fail with "another waappliance is serving". A lock held while the
// socket does not answer (serve starting up or shutting down) means direct
// writes too, which are safe beside it.
func serving(dir string) *controlClient {
	path := filepath.Join(dir, ControlSocket)
	c, err := net.DialTimeout("unix", path, controlDialTimeout)
	if err != nil {
		return nil
	}
	c.Close()
	return &controlClient{http: &http.Client{Transport: &http.Transport{
		// One connection per call: nothing idles on after the command.
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}}
}

// dialControl is serving for commands that only a running appliance can
// do (sessions): errNotRunning when none answers.
func dialControl(dir string) (*controlClient, error) {
	if cc := serving(dir); cc != nil {
		return cc, nil
	}
	return nil, errNotRunning
}

// call sends in as JSON (nil: no body) with method to path and decodes a
// 2xx answer into out (nil: the body is dropped). An error answer is an
// *api.ResponseError carrying the API's message and, where there is one,
// the package sentinel it was made from.
func (c *controlClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://local"+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return api.ReadError(resp.StatusCode, b)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control socket: answer to %s %s: %w", method, path, err)
	}
	return nil
}
