package app

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at release build time with
// -ldflags "-X waappliance/app.version=V -X waappliance/app.commit=C".
var (
	version = ""
	commit  = ""
)

// Version returns the stamped version, else the module version from the
// build info, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Commit returns the stamped commit, else the VCS revision from the build
// info, else "unknown".
func Commit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// VersionLine is what `waappliance version` prints.
func VersionLine() string {
	return fmt.Sprintf("waappliance %s (commit %s, %s, %s/%s%s)", Version(), Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH, goarm())
}

func goarm() string {
	if runtime.GOARCH != "arm" {
		return ""
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				return "v" + s.Value
			}
		}
	}
	return ""
}
