package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/agoranet/agora"

// roles are the daemons of the network. Each talks to the others only over
// the network, in the formats of protocol/... (and reqauth); importing
// another role's implementation would tie their releases together and let
// one role's internals leak into another's trust decisions.
var roles = []string{"provider", "gateway", "validator", "explorer"}

// roleOf returns the role a package belongs to ("" for none): the role's
// folder or any package below it.
func roleOf(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	if slices.Contains(roles, top) {
		return top
	}
	return ""
}

type listed struct {
	ImportPath   string
	Dir          string
	Standard     bool
	Deps         []string // transitive closure of the package's imports
	TestImports  []string
	XTestImports []string
}

// listPackages runs `go list -deps -json` over the module and decodes every
// package it prints (the module's own and their dependencies).
func listPackages(t *testing.T) map[string]listed {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
		// go test caches a passing result keyed on the files the test
		// opened, not on what `go list` read: opening every package's
		// folder (whose listing, with each file's size and time, enters
		// that key) makes an edit anywhere in the module rerun the test.
		if !p.Standard && p.Dir != "" && (p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/")) {
			touch(t, p.Dir)
		}
	}
	touch(t, filepath.Dir(pkgs[module+"/protocol"].Dir)) // the module root: a new top-level folder
	return pkgs
}

// touch opens and closes path, so that go test's cache key covers it.
func touch(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	f.Close()
}

// crossings returns, sorted, the packages of deps that belong to a role other
// than own (or to any role when own is ""), plus those under one of the
// extra prefixes.
func crossings(own string, deps []string, extra ...string) []string {
	var bad []string
	for _, d := range deps {
		r := roleOf(d)
		hit := r != "" && r != own
		for _, x := range extra {
			hit = hit || d == module+"/"+x || strings.HasPrefix(d, module+"/"+x+"/")
		}
		if hit {
			bad = append(bad, d)
		}
	}
	slices.Sort(bad)
	return bad
}

// TestRolesImportNoOtherRole checks, from the import graph as `go list` sees
// it, that no role package's dependency closure holds another role's
// package, nor do its tests import one directly (cross-role tests belong in
// e2e), and that the protocol packages are leaves: no role, no engine.
func TestRolesImportNoOtherRole(t *testing.T) {
	pkgs := listPackages(t)
	seen := map[string]int{}
	for _, path := range slices.Sorted(maps.Keys(pkgs)) {
		p := pkgs[path]
		if r := roleOf(path); r != "" {
			seen[r]++
			if bad := crossings(r, p.Deps); len(bad) > 0 {
				t.Errorf("role %s: package %s depends on %s", r, path, strings.Join(bad, ", "))
			}
			tests := append(append([]string(nil), p.TestImports...), p.XTestImports...)
			if bad := crossings(r, tests); len(bad) > 0 {
				t.Errorf("role %s: tests of %s import %s", r, path, strings.Join(bad, ", "))
			}
		}
		if path == module+"/protocol" || strings.HasPrefix(path, module+"/protocol/") || path == module+"/reqauth" {
			seen["protocol"]++
			if bad := crossings("", p.Deps, "engine"); len(bad) > 0 {
				t.Errorf("protocol package %s is not a leaf: it depends on %s", path, strings.Join(bad, ", "))
			}
		}
	}
	// A role or the protocol missing from the listing would make the checks
	// above vacuous (a renamed module, a moved folder).
	for _, r := range append(slices.Clone(roles), "protocol") {
		if seen[r] == 0 {
			t.Errorf("go list shows no package of %s: the check would pass vacuously", r)
		}
	}
}

// TestCrossings pins the classification the check relies on.
func TestCrossings(t *testing.T) {
	for _, c := range []struct {
		own  string
		deps []string
		want []string
	}{
		{"gateway", []string{module + "/gateway", module + "/reqauth", module + "/protocol/inference"}, nil},
		{"gateway", []string{module + "/provider", module + "/chain/app"}, []string{module + "/provider"}},
		{"validator", []string{module + "/explorer/web", module + "/validator/x"}, []string{module + "/explorer/web"}},
		{"gateway", []string{module + "/providers", "example.com/provider"}, nil}, // a prefix is not a role
		{"", []string{module + "/engine/native", module + "/enginex", module + "/chain/types"}, nil},
	} {
		if got := crossings(c.own, c.deps); !slices.Equal(got, c.want) {
			t.Errorf("crossings(%q, %v) = %v, want %v", c.own, c.deps, got, c.want)
		}
	}
	if got, want := crossings("", []string{module + "/engine/native", module + "/enginex", module + "/gateway"}, "engine"), []string{module + "/engine/native", module + "/gateway"}; !slices.Equal(got, want) {
		t.Errorf("crossings with engine = %v, want %v", got, want)
	}
}
