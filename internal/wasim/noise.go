package wasim

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"
)

// noiseState is the server half of Noise_XX_25519_AESGCM_SHA256 as
// whatsmeow's socket package runs the client half (whose state is unexported).
type noiseState struct {
	hash, salt []byte
	key        cipher.AEAD
	counter    uint32
}

func ivFor(c uint32) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b[8:], c)
	return b
}

func (n *noiseState) authenticate(d []byte) {
	h := sha256.Sum256(append(append([]byte{}, n.hash...), d...))
	n.hash = h[:]
}

func (n *noiseState) encrypt(p []byte) []byte {
	c := n.key.Seal(nil, ivFor(n.counter), p, n.hash)
	n.counter++
	n.authenticate(c)
	return c
}

func (n *noiseState) decrypt(c []byte) ([]byte, error) {
	p, err := n.key.Open(nil, ivFor(n.counter), c, n.hash)
	n.counter++
	if err == nil {
		n.authenticate(c)
	}
	return p, err
}

func expand(salt, data []byte) ([]byte, []byte, error) {
	h := hkdf.New(sha256.New, data, salt, nil)
	w, r := make([]byte, 32), make([]byte, 32)
	if _, err := io.ReadFull(h, w); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(h, r); err != nil {
		return nil, nil, err
	}
	return w, r, nil
}

func (n *noiseState) mixShared(priv, pub [32]byte) error {
	s, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return err
	}
	n.counter = 0
	w, r, err := expand(n.salt, s)
	if err != nil {
		return err
	}
	n.salt = w
	n.key, err = gcmutil.Prepare(r)
	return err
}

// certValidity is how long either side of now wasim's Noise certificates
// are valid: clients check the window (whatsmeow since 2026) and a
// standalone wasim issues a new chain at every start.
const certValidity = 10 * 365 * 24 * time.Hour

// certChain signs the server's static key: root → intermediate → leaf,
// both valid from certValidity ago to certValidity from now.
func certChain(root, static *keys.KeyPair) ([]byte, error) {
	inter := keys.NewKeyPair()
	now := time.Now()
	nb, na := proto.Uint64(uint64(now.Add(-certValidity).Unix())), proto.Uint64(uint64(now.Add(certValidity).Unix()))
	idet, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{Serial: proto.Uint32(1), IssuerSerial: proto.Uint32(0), Key: inter.Pub[:], NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	isig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*root.Priv), idet)
	ldet, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{Serial: proto.Uint32(2), IssuerSerial: proto.Uint32(1), Key: static.Pub[:], NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	lsig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*inter.Priv), ldet)
	return proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: idet, Signature: isig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: ldet, Signature: lsig[:]},
	})
}

// frameConn splits the websocket stream into WhatsApp's 3-byte length
// prefixed frames (the client's first message starts with a 4-byte header).
type frameConn struct {
	ws     *websocket.Conn
	buf    []byte
	header bool

	wmu    sync.Mutex
	rk, wk cipher.AEAD
	rc, wc uint32
}

func (c *frameConn) readFrame(ctx context.Context) ([]byte, error) {
	for {
		if !c.header && len(c.buf) >= 4 {
			c.buf, c.header = c.buf[4:], true
		}
		if c.header && len(c.buf) >= 3 {
			l := int(c.buf[0])<<16 | int(c.buf[1])<<8 | int(c.buf[2])
			if len(c.buf) >= 3+l {
				f := append([]byte{}, c.buf[3:3+l]...)
				c.buf = c.buf[3+l:]
				return f, nil
			}
		}
		_, d, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		c.buf = append(c.buf, d...)
	}
}

func (c *frameConn) writeFrame(ctx context.Context, f []byte) error {
	b := append([]byte{byte(len(f) >> 16), byte(len(f) >> 8), byte(len(f))}, f...)
	return c.ws.Write(ctx, websocket.MessageBinary, b)
}

// handshake runs the server side and returns the client's payload.
func (c *frameConn) handshake(ctx context.Context, static *keys.KeyPair, cert []byte) (*waWa6.ClientPayload, error) {
	f, err := c.readFrame(ctx)
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	var hm waWa6.HandshakeMessage
	if err := proto.Unmarshal(f, &hm); err != nil || hm.GetClientHello() == nil || len(hm.GetClientHello().GetEphemeral()) != 32 {
		return nil, errors.New("bad client hello")
	}
	ce := [32]byte(hm.GetClientHello().GetEphemeral())
	n := &noiseState{}
	if len(socket.NoiseStartPattern) == 32 {
		n.hash = []byte(socket.NoiseStartPattern)
	} else {
		h := sha256.Sum256([]byte(socket.NoiseStartPattern))
		n.hash = h[:]
	}
	n.salt = n.hash
	if n.key, err = gcmutil.Prepare(n.hash); err != nil {
		return nil, err
	}
	n.authenticate(socket.WAConnHeader)
	n.authenticate(ce[:])
	se := keys.NewKeyPair()
	n.authenticate(se.Pub[:])
	if err := n.mixShared(*se.Priv, ce); err != nil {
		return nil, err
	}
	encStatic := n.encrypt(static.Pub[:])
	if err := n.mixShared(*static.Priv, ce); err != nil {
		return nil, err
	}
	encCert := n.encrypt(cert)
	out, _ := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{Ephemeral: se.Pub[:], Static: encStatic, Payload: encCert}})
	if err := c.writeFrame(ctx, out); err != nil {
		return nil, err
	}
	if f, err = c.readFrame(ctx); err != nil {
		return nil, fmt.Errorf("read finish: %w", err)
	}
	if err := proto.Unmarshal(f, &hm); err != nil || hm.GetClientFinish() == nil {
		return nil, errors.New("bad client finish")
	}
	cs, err := n.decrypt(hm.GetClientFinish().GetStatic())
	if err != nil || len(cs) != 32 {
		return nil, fmt.Errorf("decrypt client static: %v", err)
	}
	if err := n.mixShared(*se.Priv, [32]byte(cs)); err != nil {
		return nil, err
	}
	pl, err := n.decrypt(hm.GetClientFinish().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("decrypt client payload: %w", err)
	}
	var cp waWa6.ClientPayload
	if err := proto.Unmarshal(pl, &cp); err != nil {
		return nil, fmt.Errorf("client payload: %w", err)
	}
	cw, cr, err := expand(n.salt, nil)
	if err != nil {
		return nil, err
	}
	if c.rk, err = gcmutil.Prepare(cw); err != nil {
		return nil, err
	}
	if c.wk, err = gcmutil.Prepare(cr); err != nil {
		return nil, err
	}
	return &cp, nil
}

func (c *frameConn) readPlain(ctx context.Context) ([]byte, error) {
	f, err := c.readFrame(ctx)
	if err != nil {
		return nil, err
	}
	p, err := c.rk.Open(nil, ivFor(c.rc), f, nil)
	c.rc++
	return p, err
}

func (c *frameConn) writePlain(ctx context.Context, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ct := c.wk.Seal(nil, ivFor(c.wc), p, nil)
	c.wc++
	return c.writeFrame(ctx, ct)
}
