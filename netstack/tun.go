/* SPDX-License-Identifier: MIT
 *
 * Derived from golang.zx2c4.com/wireguard/tun/netstack (tun.go),
 * Copyright (C) 2017-2025 WireGuard LLC. All Rights Reserved.
 * Changed for the appliance: packets leave the gVisor stack in batches
 * instead of through a synchronous one-packet hand-off, and only the parts
 * the appliance uses (a TCP listener) are kept, and TCP buffers are bounded.
 */

package netstack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// batchSize is how many packets one Read hands to wireguard-go, which then
// encrypts and sends them as a batch: deviceBatch, since the device's TUN
// reader keeps that many 64 KiB buffers for good (see deviceBatch).
const batchSize = deviceBatch

// TCP buffer sizes per connection. gVisor's defaults (1 MiB each way,
// receive auto-tuning up to 4 MiB) let every connection hold megabytes a
// peer never reads or that the appliance has not read yet; thousands of
// connections then outgrow a Pi. 64 KiB each way takes a maximal request
// body (64 KiB) in one or two round trips, and even a window of 40 KiB moves
// 40 MB/s at a LAN round trip of 1 ms; API answers are small. Auto-tuning
// is off so the receive window stays at the default. At the default total
// cap (1024 connections) the buffers can then hold at most 128 MiB of
// payload in the very worst case (every connection full both ways), a peer
// at its default cap (32) 4 MiB.
const (
	tcpBufferMin     = 4 << 10
	tcpBufferDefault = 64 << 10
	tcpBufferMax     = 64 << 10
)

// outboundQueue is how many packets the stack may queue for wireguard-go
// (each at most the MTU): about 6 MiB, shared by every connection.
const outboundQueue = 4096

// netTun is a tun.Device whose other side is a gVisor stack. The stack's
// outbound packets queue in the channel endpoint; WriteNotify only wakes the
// reader, which drains up to a batch at a time.
type netTun struct {
	ep     *channel.Endpoint
	stack  *stack.Stack
	events chan tun.Event
	notify chan struct{}
	mtu    int

	closeOnce sync.Once
	closed    chan struct{}
}

// newNetTun creates the stack with one IPv4 address (TCP only).
func newNetTun(addr netip.Addr, mtu int) (*netTun, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("netstack: %s: only IPv4 tunnel addresses", addr)
	}
	t := &netTun{
		ep: channel.New(outboundQueue, uint32(mtu), ""),
		stack: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
			HandleLocal:        true,
		}),
		events: make(chan tun.Event, 10),
		notify: make(chan struct{}, 1),
		closed: make(chan struct{}),
		mtu:    mtu,
	}
	sack := tcpip.TCPSACKEnabled(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcpBufferMin, Default: tcpBufferDefault, Max: tcpBufferMax}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: tcpBufferMin, Default: tcpBufferDefault, Max: tcpBufferMax}
	moderate := tcpip.TCPModerateReceiveBufferOption(false)
	for name, opt := range map[string]tcpip.SettableTransportProtocolOption{"SACK": &sack, "receive buffer": &rcv, "send buffer": &snd, "receive auto-tuning": &moderate} {
		if err := t.stack.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return nil, fmt.Errorf("netstack: %s: %v", name, err)
		}
	}
	t.ep.AddNotify(t)
	if err := t.stack.CreateNIC(1, t.ep); err != nil {
		return nil, fmt.Errorf("netstack: CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFromSlice(addr.AsSlice()).WithPrefix()}
	if err := t.stack.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("netstack: address %s: %v", addr, err)
	}
	t.stack.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: 1})
	// No tun.EventUp here: wireguard-go would bring the device up (bind
	// the UDP port) from its event goroutine at once, racing New's
	// configuration of the key and peers. New calls Up itself, last.
	return t, nil
}

func (t *netTun) Name() (string, error)    { return "netstack", nil }
func (t *netTun) File() *os.File           { return nil }
func (t *netTun) Events() <-chan tun.Event { return t.events }
func (t *netTun) MTU() (int, error)        { return t.mtu, nil }
func (t *netTun) BatchSize() int           { return batchSize }

// WriteNotify is called by the channel endpoint when the stack queued a
// packet; it only wakes Read.
func (t *netTun) WriteNotify() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// Read hands up to len(bufs) queued packets to wireguard-go, blocking only
// while the queue is empty.
func (t *netTun) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for {
		n := 0
		for n < len(bufs) {
			pkt := t.ep.Read()
			if pkt == nil {
				break
			}
			view := pkt.ToView()
			pkt.DecRef()
			m, err := view.Read(bufs[n][offset:])
			view.Release()
			if err != nil {
				return n, err
			}
			sizes[n] = m
			n++
		}
		if n > 0 {
			return n, nil
		}
		select {
		case <-t.notify:
		case <-t.closed:
			return 0, os.ErrClosed
		}
	}
}

// Write injects decrypted packets into the stack.
func (t *netTun) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		packet := b[offset:]
		if len(packet) == 0 {
			continue
		}
		if packet[0]>>4 != 4 {
			return 0, syscall.EAFNOSUPPORT
		}
		pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(packet)})
		t.ep.InjectInbound(header.IPv4ProtocolNumber, pkb)
		pkb.DecRef()
	}
	return len(bufs), nil
}

func (t *netTun) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.stack.RemoveNIC(1)
		t.stack.Close()
		t.ep.Close()
		close(t.events)
	})
	return nil
}

// listenTCP listens inside the stack.
func (t *netTun) listenTCP(addr netip.AddrPort) (*gonet.TCPListener, error) {
	fa := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(addr.Addr().AsSlice()), Port: addr.Port()}
	return gonet.ListenTCP(t.stack, fa, ipv4.ProtocolNumber)
}

// dialTCP connects from the stack to addr, as upstream's
// Net.DialContextTCPAddrPort does.
func (t *netTun) dialTCP(ctx context.Context, addr netip.AddrPort) (*gonet.TCPConn, error) {
	fa := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(addr.Addr().AsSlice()), Port: addr.Port()}
	return gonet.DialContextTCP(ctx, t.stack, fa, ipv4.ProtocolNumber)
}
