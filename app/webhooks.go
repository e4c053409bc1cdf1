package app

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"waappliance/netstack"
	"waappliance/webhooks"
)

// tunnelDialer dials webhooks through the WireGuard device once it
// exists (the manager is made before the device, with the API handler).
type tunnelDialer struct {
	dev atomic.Pointer[netstack.Device]
}

func (d *tunnelDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	dev := d.dev.Load()
	if dev == nil {
		return nil, errors.New("app: the tunnel is not up")
	}
	return dev.DialContext(ctx, network, addr)
}

// newWebhooks makes the appliance's webhook manager; startWebhooks starts
// its deliveries once the device is up.
func (a *Appliance) newWebhooks() error {
	a.hookDial = &tunnelDialer{}
	m, err := webhooks.New(webhooks.Config{DB: a.db, Events: a.events, Peers: a.reg, Dialer: a.hookDial,
		Audit: a.audit, Logger: a.log, Now: a.opts.Now, Schedule: a.opts.WebhookSchedule})
	if err != nil {
		return err
	}
	a.hooks = m
	return nil
}

func (a *Appliance) startWebhooks(ctx context.Context, dev *netstack.Device) error {
	a.hookDial.dev.Store(dev)
	return a.hooks.Start(ctx)
}

// Webhooks is the webhook manager (tests); nil before Start.
func (a *Appliance) Webhooks() *webhooks.Manager { return a.hooks }
