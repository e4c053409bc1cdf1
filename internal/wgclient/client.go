// Package wgclient is an in-process WireGuard client peer: a second
// wireguard-go device with its own gVisor netstack that dials the appliance
// over real UDP (loopback in tests and selftest) and speaks HTTP through the
// tunnel. It is what a phone or a wg-quick laptop is, minus the kernel.
package wgclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"waappliance/peers"
)

// Config describes the client side of one peer.
type Config struct {
	PrivateKey   peers.Key
	PresharedKey peers.Key
	// Addr is the client's tunnel address (the peer's /32).
	Addr netip.Addr
	// ServerKey and Endpoint identify the appliance; ServerAddr is its tunnel address.
	ServerKey  peers.Key
	Endpoint   netip.AddrPort
	ServerAddr netip.Addr
	// AllowedIPs is what the client routes into the tunnel; zero means only
	// ServerAddr/32 (the split tunnel the appliance hands out). Tests widen it
	// to play a client that tries to reach other peers.
	AllowedIPs []netip.Prefix
	MTU        int
	// Bind nil means a LoopbackBind: the client talks to 127.0.0.1 only.
	Bind   conn.Bind
	Logger *slog.Logger
}

// Client is a running client peer.
type Client struct {
	cfg  Config
	dev  *device.Device
	tnet *netstack.Net
	// HTTP sends requests through the tunnel; its timeout is 30 s.
	HTTP *http.Client
}

// New brings up the client device. It does not contact the appliance until
// the first packet is sent.
func New(cfg Config) (*Client, error) {
	if cfg.MTU == 0 {
		cfg.MTU = peers.DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{cfg.Addr}, nil, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("wgclient: %w", err)
	}
	if cfg.Bind == nil {
		cfg.Bind = NewLoopbackBind()
	}
	l := cfg.Logger
	dev := device.NewDevice(tdev, cfg.Bind, &device.Logger{
		Verbosef: func(f string, a ...any) { l.Debug(fmt.Sprintf(f, a...)) },
		Errorf:   func(f string, a ...any) { l.Debug(fmt.Sprintf(f, a...)) },
	})
	if len(cfg.AllowedIPs) == 0 {
		cfg.AllowedIPs = []netip.Prefix{netip.PrefixFrom(cfg.ServerAddr, 32)}
	}
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\npreshared_key=%s\nendpoint=%s\n",
		cfg.PrivateKey.Hex(), cfg.ServerKey.Hex(), cfg.PresharedKey.Hex(), cfg.Endpoint)
	for _, p := range cfg.AllowedIPs {
		uapi += "allowed_ip=" + p.String() + "\n"
	}
	if err := dev.IpcSet(uapi); err != nil {
		dev.Close()
		return nil, fmt.Errorf("wgclient: configure: %w", err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("wgclient: up: %w", err)
	}
	c := &Client{cfg: cfg, dev: dev, tnet: tnet}
	c.HTTP = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         c.DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	return c, nil
}

// DialContext dials a TCP address inside the tunnel.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.tnet.DialContext(ctx, network, addr)
}

// Listen opens a TCP listener on the client's own tunnel address.
func (c *Client) Listen(port uint16) (net.Listener, error) {
	return c.tnet.ListenTCPAddrPort(netip.AddrPortFrom(c.cfg.Addr, port))
}

// Addr is the client's tunnel address.
func (c *Client) Addr() netip.Addr { return c.cfg.Addr }

// LastHandshake is the time of the client's last completed handshake (zero if none).
func (c *Client) LastHandshake() time.Time {
	s, err := c.dev.IpcGet()
	if err != nil {
		return time.Time{}
	}
	var sec, nsec int64
	for _, line := range bytes.Split([]byte(s), []byte("\n")) {
		fmt.Sscanf(string(line), "last_handshake_time_sec=%d", &sec)
		fmt.Sscanf(string(line), "last_handshake_time_nsec=%d", &nsec)
	}
	if sec == 0 && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, nsec)
}

// Response is a buffered HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// DoWithHeader is Do with extra request headers; "Host" sets the Host
// header, an empty value removes a header (e.g. Content-Type).
func (c *Client) DoWithHeader(ctx context.Context, method, path string, body any, h map[string]string) (*Response, error) {
	return c.do(ctx, method, path, body, h)
}

// Do sends method path with body (nil, []byte, string or a value to encode as
// JSON) to the appliance's API and buffers the response.
func (c *Client) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	return c.do(ctx, method, path, body, nil)
}

func (c *Client) do(ctx context.Context, method, path string, body any, h map[string]string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.cfg.ServerAddr.String()+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		switch {
		case k == "Host":
			req.Host = v
		case v == "":
			req.Header.Del(k)
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Close stops the client device and drops idle connections.
func (c *Client) Close() {
	c.HTTP.CloseIdleConnections()
	c.dev.Close()
}
