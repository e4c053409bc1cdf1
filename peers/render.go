package peers

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// PrivateKeyPlaceholder stands in the rendered config when the appliance
// does not know the client's private key.
const PrivateKeyPlaceholder = "<your private key>"

// EndpointPlaceholder stands in the rendered config when no endpoint is
// set (init, set or up --endpoint); port is the appliance's listen port.
func EndpointPlaceholder(port int) string { return fmt.Sprintf("<your-server>:%d", port) }

// RenderConfig returns the wg-quick config for p. priv is the client's
// private key when the appliance generated it (shown once); zero renders a
// placeholder line. The config is a split tunnel: AllowedIPs holds only the
// appliance's tunnel address. The second result reports whether the endpoint
// placeholder was used.
func RenderConfig(s Server, p Peer, priv Key) (string, bool) {
	var b strings.Builder
	pk := PrivateKeyPlaceholder
	if !priv.IsZero() {
		pk = priv.String()
	}
	ep, placeholder := s.Endpoint, false
	if ep == "" {
		ep, placeholder = EndpointPlaceholder(s.ListenPort), true
	}
	fmt.Fprintf(&b, "# waappliance peer %q\n", p.Name)
	fmt.Fprintf(&b, "[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", pk)
	fmt.Fprintf(&b, "Address = %s/32\n", p.Addr)
	fmt.Fprintf(&b, "MTU = %d\n", s.MTU)
	fmt.Fprintf(&b, "\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", s.PublicKey())
	fmt.Fprintf(&b, "PresharedKey = %s\n", p.PresharedKey)
	fmt.Fprintf(&b, "Endpoint = %s\n", ep)
	fmt.Fprintf(&b, "AllowedIPs = %s/32\n", s.TunnelAddr())
	fmt.Fprintf(&b, "PersistentKeepalive = 25\n")
	return b.String(), placeholder
}

// TerminalQR renders text as a QR code of Unicode half blocks for a terminal.
func TerminalQR(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("qr: %w", err)
	}
	return q.ToSmallString(false), nil
}

// PNGQR renders text as a PNG QR code of size×size pixels.
func PNGQR(text string, size int) ([]byte, error) {
	return qrcode.Encode(text, qrcode.Medium, size)
}
