// Command tunbaseline is a bench-only stand-in for the appliance: the same
// state, keys, port and API handler, but on a kernel TUN interface with the
// kernel's TCP stack instead of the in-process gVisor netstack. It exists so
// scripts/bench-tunnel can compare the two in one run; it is never part of
// the product (it needs root and opens a kernel TCP listener).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"waappliance/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tunbaseline:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := os.Getenv("WAAPPLIANCE_STATE")
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.Open(ctx, app.Options{StateDir: dir, Logger: log, NoWhatsApp: true})
	if err != nil {
		return err
	}
	defer a.Close()
	const ifname = "waabase0"
	tdev, err := tun.CreateTUN(ifname, a.MTU())
	if err != nil {
		return fmt.Errorf("create TUN: %w", err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "tunbaseline: "))
	defer dev.Close()
	uapi, _ := a.UAPI()
	if err := dev.IpcSet(uapi); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	if err := dev.Up(); err != nil {
		return err
	}
	sub := a.Server().Subnet
	for _, args := range [][]string{
		{"addr", "add", a.TunnelAddr().String() + "/" + strconv.Itoa(sub.Bits()), "dev", ifname},
		{"link", "set", ifname, "mtu", strconv.Itoa(a.MTU()), "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.TunnelAddr().String(), strconv.Itoa(app.APIPort)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler()}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Fprintf(os.Stderr, "tunbaseline up on %s (kernel TCP over a wireguard-go TUN)\n", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
