package app_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"waappliance/app"
)

// TestMain lets the test binary run as the waappliance command, so crash
// tests can SIGKILL a real appliance process without building one.
//
// No test asks web.whatsapp.com for its web client version: serve skips
// the check under this variable, and child processes inherit it.
func TestMain(m *testing.M) {
	os.Setenv("WAAPPLIANCE_NO_WEB_VERSION_CHECK", "1")
	if os.Getenv("WAAPPLIANCE_TEST_AS_MAIN") == "1" {
		serveProfiles()
		serveMemTrace()
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	if err := checkEngineEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
