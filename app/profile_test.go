package app_test

import (
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// profileEnv names a directory: an appliance process run by a benchmark
// (TestMain as main) then profiles itself between SIGUSR1 and SIGUSR2
// (cpu.pprof, block.pprof, mutex.pprof there), so that a benchmark can
// profile exactly its burst. See benchProfile.
const profileEnv = "WAA_BENCH_PROFILE"

// serveProfiles is the appliance side of profileEnv.
func serveProfiles() {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var cpu *os.File
		for s := range sig {
			switch {
			case s == syscall.SIGUSR1 && cpu == nil:
				runtime.SetBlockProfileRate(100_000) // one sample per 100 µs blocked
				runtime.SetMutexProfileFraction(5)
				cpu, _ = os.Create(filepath.Join(dir, "cpu.pprof"))
				if cpu != nil {
					pprof.StartCPUProfile(cpu)
				}
			case s == syscall.SIGUSR2 && cpu != nil:
				pprof.StopCPUProfile()
				cpu.Close()
				cpu = nil
				for _, p := range []string{"block", "mutex", "goroutine"} {
					if f, err := os.Create(filepath.Join(dir, p+".pprof")); err == nil {
						pprof.Lookup(p).WriteTo(f, 0)
						f.Close()
					}
				}
				runtime.SetBlockProfileRate(0)
				runtime.SetMutexProfileFraction(0)
			}
		}
	}()
}

// benchProfile sends the appliance process pid sig (SIGUSR1: start,
// SIGUSR2: stop and write) when profileEnv is set.
func benchProfile(pid int, sig syscall.Signal) {
	if os.Getenv(profileEnv) != "" {
		syscall.Kill(pid, sig)
	}
}
