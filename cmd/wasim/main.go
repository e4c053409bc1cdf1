// Command wasim runs the offline WhatsApp simulator standalone on loopback,
// with its own state, so that an appliance in another process
// (`waappliance serve --sandbox=HOST:PORT`, HOST:PORT being the control
// address printed here) can use it, and a test can kill and restart that
// appliance and count what arrived. See internal/wasim for what it
// simulates and what it does not.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"waappliance/internal/wasim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "websocket (TLS) address for WhatsApp clients")
	control := flag.String("control", "127.0.0.1:7355", "control API address (give it to waappliance --sandbox=)")
	state := flag.String("state", "", "directory for the simulated phones' and contacts' state (empty: in memory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o := wasim.Options{Addr: *listen, Logger: log}
	if *state != "" {
		if err := os.MkdirAll(*state, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "wasim:", err)
			os.Exit(1)
		}
		o.DBPath = filepath.Join(*state, "wasim.db")
	}
	srv, err := wasim.New(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasim:", err)
		os.Exit(1)
	}
	defer srv.Close()
	addr, err := srv.ServeControl(ctx, *control)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasim:", err)
		os.Exit(1)
	}
	fmt.Printf("wasim: websocket %s, control %s (waappliance serve --sandbox=%s)\n", srv.Addr(), addr, addr)
	<-ctx.Done()
}
