// Command waappliance is a WhatsApp HTTP API reachable only through its own
// userspace WireGuard tunnel. See the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"waappliance/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
