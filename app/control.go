package app

import (
	"context"
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
func listenControl(dir string, h http.Handler, log *slog.Logger) (*http.Server, error) {
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
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       func(ctx context.Context, _ net.Conn) context.Context { return api.WithLocalPeer(ctx, localPeer) },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go srv.Serve(ln)
	return srv, nil
}

// controlClient talks to a running appliance over its control socket.
type controlClient struct {
	http *http.Client
	path string
}

// errNotRunning says the command needs a running appliance.
var errNotRunning = errors.New("the appliance is not running for this state dir (start it with 'waappliance serve'); session commands talk to it")

func dialControl(dir string) (*controlClient, error) {
	path := filepath.Join(dir, ControlSocket)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, errNotRunning
	}
	c.Close()
	return &controlClient{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}}, nil
}

// do sends a request and returns status and body.
func (c *controlClient) do(ctx context.Context, method, path string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://local"+path, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
