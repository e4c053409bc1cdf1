package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// usageError is a wrong use of the command line: exit code 2 with a one-line hint.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// parseArgs parses flags that may come before or after positional
// arguments ("peer add bob --scopes send" and "peer add --scopes send bob").
// On a parse error it returns a usageError (a one-line hint) instead of
// letting the flag package print the whole usage; -h/--help prints it.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.Usage()
			return nil, flag.ErrHelp
		}
	}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// defaultStateDir is /var/lib/waappliance for root, else the XDG state dir.
func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/waappliance"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "waappliance")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "waappliance")
	}
	return "waappliance-state"
}

// stateFlag adds --state to fs; the env WAAPPLIANCE_STATE comes next, then
// the default.
func stateFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("WAAPPLIANCE_STATE")
	if def == "" {
		def = defaultStateDir()
	}
	return fs.String("state", def, "state directory (env WAAPPLIANCE_STATE; default /var/lib/waappliance as root, else $XDG_STATE_HOME/waappliance)")
}

// parseSize parses "64MiB", "512KiB", "1GiB", "100MB" or plain bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mul := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mul = strings.TrimSuffix(s, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want e.g. 64MiB", s)
	}
	return n * mul, nil
}

// errHelp is returned after printing help on request (exit 0).
var errHelp = flag.ErrHelp

// noArgs parses flags for a command that takes no positional argument.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// limitFlags are serve's resource bounds (see Limits).
type limitFlags struct{ peerConns, conns, peerStreams, streams *int }

func addLimitFlags(fs *flag.FlagSet) limitFlags {
	return limitFlags{
		peerConns:   fs.Int("peer-max-conns", DefaultPeerConns, "concurrent TCP connections to the API a peer may hold, unless it has its own (peer set --max-conns)"),
		conns:       fs.Int("max-conns", DefaultConns, "concurrent TCP connections to the API of all peers together"),
		peerStreams: fs.Int("peer-max-streams", DefaultPeerStreams, "concurrent event streams a peer may hold, unless it has its own (peer set --max-streams)"),
		streams:     fs.Int("max-streams", DefaultStreams, "concurrent event streams of all peers together"),
	}
}

func (f limitFlags) parse() (Limits, error) {
	for _, v := range []struct {
		name string
		n    int
	}{{"peer-max-conns", *f.peerConns}, {"max-conns", *f.conns}, {"peer-max-streams", *f.peerStreams}, {"max-streams", *f.streams}} {
		if v.n < 1 || v.n > 1_000_000 {
			return Limits{}, usagef("--%s: want 1-1000000, got %d", v.name, v.n)
		}
	}
	return Limits{PeerConns: *f.peerConns, Conns: *f.conns, PeerStreams: *f.peerStreams, Streams: *f.streams}, nil
}
