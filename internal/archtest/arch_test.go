// Package archtest keeps the repository's shape: imports point down the
// package table of ARCHITECTURE.md, and every Go file is gofmt-formatted.
package archtest

import (
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "waappliance"

// allowed lists, for each of our packages, which of our packages it may
// import directly. Standard library and third-party imports are not listed.
// A package missing from this table fails the test until it is placed.
var allowed = map[string][]string{
	"cmd/waappliance":    {"app"},
	"app":                {"*"},
	"api":                {"peers", "audit", "whatsapp", "events", "webhooks", "media"},
	"netstack":           {"peers"},
	"peers":              {"store"},
	"audit":              {"store"},
	"store":              {},
	"events":             {"store"},
	"webhooks":           {"events", "peers", "store", "audit"},
	"whatsapp":           {"store", "events", "internal/backoff", "media"}, // never the simulator: sandbox wiring is app's
	"media":              {"store"},
	"internal/wgclient":  {"peers"},
	"internal/wasim":     {},
	"internal/elfcheck":  {},
	"internal/pgtest":    {},
	"internal/backoff":   {},
	"internal/archtest":  {},
	"cmd/wasim":          {"internal/wasim"},
	"internal/cmd/*":     {"*"},
	"internal/wasim/...": {"internal/wasim", "internal/wasim/..."},
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func rule(pkg string) ([]string, bool) {
	if r, ok := allowed[pkg]; ok {
		return r, true
	}
	for k, r := range allowed {
		if p, ok := strings.CutSuffix(k, "/*"); ok && strings.HasPrefix(pkg, p+"/") && !strings.Contains(pkg[len(p)+1:], "/") {
			return r, true
		}
		if p, ok := strings.CutSuffix(k, "/..."); ok && strings.HasPrefix(pkg, p+"/") {
			return r, true
		}
	}
	return nil, false
}

func permits(r []string, imp string) bool {
	for _, a := range r {
		if a == "*" || a == imp {
			return true
		}
		if p, ok := strings.CutSuffix(a, "/..."); ok && strings.HasPrefix(imp, p+"/") {
			return true
		}
	}
	return false
}

func TestImportsPointDown(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fs := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fs[0], module), "/")
		r, ok := rule(pkg)
		if !ok {
			t.Errorf("package %s is not in the dependency table of internal/archtest; place it", pkg)
			continue
		}
		for _, imp := range fs[1:] {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			ours := strings.TrimPrefix(imp, module+"/")
			if ours == "app" || strings.HasPrefix(ours, "cmd/") {
				if pkg != "cmd/waappliance" && !strings.HasPrefix(pkg, "internal/cmd/") {
					t.Errorf("%s imports %s: nothing imports app or cmd", pkg, ours)
				}
			}
			if !permits(r, ours) {
				t.Errorf("%s imports %s: the arrow points the wrong way (allowed: %v)", pkg, ours, r)
			}
		}
	}
}

func TestGofmt(t *testing.T) {
	root := repoRoot(t)
	n := 0
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "dist") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if got, err := format.Source(src); err != nil {
			t.Errorf("%s: %v", path, err)
		} else if string(got) != string(src) {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s is not gofmt-formatted (run gofmt -w %s)", rel, rel)
		}
		return nil
	})
	if n < 10 {
		t.Fatalf("only %d Go files found under %s", n, root)
	}
}
