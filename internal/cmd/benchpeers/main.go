// Command benchpeers adds N peers to a state directory in one process, for
// scripts/bench-tunnel's 10,000-peer figures (10,000 CLI runs would measure
// process start-up, not the appliance).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"waappliance/app"
	"waappliance/peers"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: benchpeers STATE_DIR N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "benchpeers: N must be a positive integer")
		os.Exit(2)
	}
	ctx := context.Background()
	a, err := app.Open(ctx, app.Options{StateDir: os.Args[1], NoWhatsApp: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(1)
	}
	defer a.Close()
	opts := make([]peers.AddOptions, n)
	for i := range opts {
		priv, _ := peers.GeneratePrivateKey()
		opts[i] = peers.AddOptions{Name: fmt.Sprintf("bulk-%05d", i), PublicKey: priv.Public(), Scopes: []peers.Scope{peers.ScopeRead}}
	}
	if _, err := a.Peers().AddBatch(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(1)
	}
}
