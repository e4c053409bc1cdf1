// Command elfcheck proves that release binaries are static Linux executables
// built the way scripts/build-release promises. scripts/build-release and
// scripts/test-release run it; it reads files only and needs nothing but the
// standard library, so it works on a fresh machine without binutils.
//
// Usage: go run ./internal/elfcheck [-arch amd64|arm64|armv7|armv6] FILE...
//
// For each FILE it checks: an ELF executable for Linux; no PT_INTERP (no
// dynamic loader) and no PT_DYNAMIC or .dynamic section (nothing to resolve
// at load time); and, from the embedded Go build info, CGO_ENABLED=0,
// -trimpath, and the expected GOARCH and GOARM when -arch is given. It prints
// one line per file and exits 1 if any check fails, 2 on wrong usage.
//
// With -sizes it instead prints what takes the space in each FILE (which must
// be unstripped): file-backed ELF sections, then symbol bytes grouped by
// module and by package. scripts/build-release uses it for the size budget.
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	arch := flag.String("arch", "", "expected target: amd64, arm64, armv7 or armv6 (default: do not check)")
	sizes := flag.Bool("sizes", false, "print a size breakdown of each (unstripped) FILE instead of checking it")
	top := flag.Int("top", 12, "with -sizes, how many modules and packages to list")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: elfcheck [-arch amd64|arm64|armv7|armv6] FILE...\n       elfcheck -sizes [-top N] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	failed := false
	for _, f := range flag.Args() {
		if *sizes {
			if err := breakdown(f, *top); err != nil {
				fmt.Printf("FAIL %s: %v\n", f, err)
				failed = true
			}
			continue
		}
		if err := check(f, *arch); err != nil {
			fmt.Printf("FAIL %s: %v\n", f, err)
			failed = true
			continue
		}
		fmt.Printf("ok   %s: static ELF, no interpreter, no dynamic section, CGO_ENABLED=0, trimpath\n", f)
	}
	if failed {
		os.Exit(1)
	}
}

// targets maps a release name to the ELF machine, GOARCH and GOARM it must have.
var targets = map[string]struct {
	machine elf.Machine
	goarch  string
	goarm   string
}{
	"amd64": {elf.EM_X86_64, "amd64", ""},
	"arm64": {elf.EM_AARCH64, "arm64", ""},
	"armv7": {elf.EM_ARM, "arm", "7"},
	"armv6": {elf.EM_ARM, "arm", "6"},
}

func check(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	var problems []string
	if f.Type != elf.ET_EXEC {
		// A static-pie would be ET_DYN; Go's default static build is ET_EXEC.
		problems = append(problems, fmt.Sprintf("ELF type %v, want ET_EXEC", f.Type))
	}
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			problems = append(problems, "has PT_INTERP (needs a dynamic loader)")
		case elf.PT_DYNAMIC:
			problems = append(problems, "has PT_DYNAMIC")
		}
	}
	for _, name := range []string{".interp", ".dynamic", ".dynsym"} {
		if f.Section(name) != nil {
			problems = append(problems, "has section "+name)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		problems = append(problems, "imports "+strings.Join(libs, ", "))
	}

	var want struct {
		machine elf.Machine
		goarch  string
		goarm   string
	}
	if arch != "" {
		t, ok := targets[arch]
		if !ok {
			return fmt.Errorf("unknown -arch %q", arch)
		}
		want = t
		if f.Machine != t.machine {
			problems = append(problems, fmt.Sprintf("machine %v, want %v", f.Machine, t.machine))
		}
	}

	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		problems = append(problems, "no Go build info: "+err.Error())
	} else {
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if settings["CGO_ENABLED"] != "0" {
			problems = append(problems, fmt.Sprintf("CGO_ENABLED=%q, want 0", settings["CGO_ENABLED"]))
		}
		if settings["-trimpath"] != "true" {
			problems = append(problems, "not built with -trimpath")
		}
		if settings["GOOS"] != "linux" {
			problems = append(problems, fmt.Sprintf("GOOS=%q, want linux", settings["GOOS"]))
		}
		if want.goarch != "" && settings["GOARCH"] != want.goarch {
			problems = append(problems, fmt.Sprintf("GOARCH=%q, want %s", settings["GOARCH"], want.goarch))
		}
		if want.goarm != "" && settings["GOARM"] != want.goarm {
			problems = append(problems, fmt.Sprintf("GOARM=%q, want %s", settings["GOARM"], want.goarm))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// breakdown prints file-backed sections and symbol bytes per module and per
// package. BSS-like sections (SHT_NOBITS) take no file space and are skipped.
func breakdown(path string, top int) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("%v (a stripped binary has no symbols; build without -s -w)", err)
	}
	var secs []entry
	var fileBacked uint64
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL || s.Size == 0 || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		secs = append(secs, entry{s.Name, s.Size})
		fileBacked += s.Size
	}
	mods, pkgs := map[string]uint64{}, map[string]uint64{}
	var symTotal uint64
	for _, s := range syms {
		if s.Size == 0 || int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) {
			continue
		}
		if sec := f.Sections[s.Section]; sec.Type == elf.SHT_NOBITS || sec.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		pkg, mod := classify(s.Name)
		pkgs[pkg] += s.Size
		mods[mod] += s.Size
		symTotal += s.Size
	}
	fmt.Printf("%s: %.1f MB in loaded sections, %.1f MB of them attributed to symbols\n", path, mb(fileBacked), mb(symTotal))
	printTop("  sections:", toEntries(secs), top)
	printTop("  by module:", sorted(mods), top)
	printTop("  by package:", sorted(pkgs), top+4)
	return nil
}

type entry struct {
	name string
	size uint64
}

func toEntries(e []entry) []entry {
	sort.Slice(e, func(i, j int) bool { return e[i].size > e[j].size })
	return e
}

func sorted(m map[string]uint64) []entry {
	var e []entry
	for k, v := range m {
		e = append(e, entry{k, v})
	}
	sort.Slice(e, func(i, j int) bool { return e[i].size > e[j].size || e[i].size == e[j].size && e[i].name < e[j].name })
	return e
}

func printTop(title string, e []entry, n int) {
	fmt.Println(title)
	for i, x := range e {
		if i == n {
			break
		}
		fmt.Printf("    %6.2f MB  %s\n", mb(x.size), x.name)
	}
}

func mb(n uint64) float64 { return float64(n) / 1e6 }

// classify returns a Go symbol's package path and module. The package is the
// name up to the first "." after the last "/" (generic instantiations cut at
// "["); linker-made symbols (go:, type:) are grouped together.
func classify(name string) (pkg, mod string) {
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	if strings.HasPrefix(name, "go:") || strings.HasPrefix(name, "type:") {
		return "(linker: func tables, type data, strings)", "(linker data)"
	}
	pkg = name
	slash := strings.LastIndexByte(name, '/')
	if dot := strings.IndexByte(name[slash+1:], '.'); dot >= 0 {
		pkg = name[:slash+1+dot]
	}
	seg := strings.Split(pkg, "/")
	switch {
	case seg[0] == "waappliance":
		mod = "waappliance (this module)"
	case seg[0] == "vendor":
		mod = "std (vendored)"
	case !strings.Contains(seg[0], "."):
		mod = "std"
	case len(seg) >= 3 && (seg[0] == "github.com" || seg[0] == "golang.org" || seg[0] == "gitlab.com"):
		mod = strings.Join(seg[:3], "/")
	case len(seg) >= 2:
		mod = strings.Join(seg[:2], "/")
	default:
		mod = seg[0]
	}
	return pkg, mod
}
