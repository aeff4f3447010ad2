package layout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// pkg is what the rules need of a `go list -json` record.
type pkg struct {
	ImportPath string
	Imports    []string // direct imports, to show how a forbidden package is reached
	Deps       []string // the whole dependency closure
}

// roles are the off-chain daemons' packages; none may link another.
var roles = []string{"provider", "gateway", "validator", "explorer"}

// under reports whether import path p is dir or inside it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// chainViolations lists, for every package under mod/chain, each package of
// module mod outside mod/chain in its dependency closure, with the import
// path that reaches it.
func chainViolations(mod string, pkgs []pkg) []string {
	chain := mod + "/chain"
	var out []string
	for _, p := range pkgs {
		if !under(p.ImportPath, chain) {
			continue
		}
		for _, d := range p.Deps {
			if under(d, mod) && !under(d, chain) {
				out = append(out, route(mod, pkgs, p.ImportPath, d))
			}
		}
	}
	return out
}

// roleViolations lists, for every package of a role, each package of
// another role in its dependency closure, with the import path that
// reaches it.
func roleViolations(mod string, pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range roles {
			if !under(p.ImportPath, mod+"/"+r) {
				continue
			}
			for _, d := range p.Deps {
				for _, other := range roles {
					if other != r && under(d, mod+"/"+other) {
						out = append(out, route(mod, pkgs, p.ImportPath, d))
					}
				}
			}
		}
	}
	return out
}

// route renders the shortest import chain from one package to another
// ("chain/audit → verify → engine/native"), module prefix trimmed.
func route(mod string, pkgs []pkg, from, to string) string {
	imports := make(map[string][]string, len(pkgs))
	for _, p := range pkgs {
		imports[p.ImportPath] = p.Imports
	}
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 && queue[0] != to {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range imports[cur] {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	if _, ok := prev[to]; !ok { // Deps without the Imports behind them
		return trim(mod, from) + " → … → " + trim(mod, to)
	}
	var hops []string
	for at := to; at != ""; at = prev[at] {
		hops = append(hops, trim(mod, at))
	}
	slices.Reverse(hops)
	return strings.Join(hops, " → ")
}

func trim(mod, p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, mod), "/") }

// listed is the one `go list -deps -json ./...` run the tests share.
var listed = sync.OnceValues(func() (listing, error) { return goList() })

type listing struct {
	mod  string
	pkgs []pkg
}

// goList runs `go list -deps -json ./...` at the module root and returns
// the module path and its packages (dependencies outside the module
// dropped).
func goList() (listing, error) {
	root, mod, err := moduleRoot()
	if err != nil {
		return listing{}, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return listing{}, fmt.Errorf("go list -deps -json ./...: %w\n%s", err, stderr.Bytes())
	}
	l := listing{mod: mod}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return listing{}, fmt.Errorf("decoding go list output: %w", err)
		}
		if under(p.ImportPath, mod) {
			l.pkgs = append(l.pkgs, p)
		}
	}
	return l, nil
}

// modulePackages returns the module's packages, failing the test when go
// list fails or finds too little for the rules to mean anything.
func modulePackages(t *testing.T) (string, []pkg) {
	t.Helper()
	l, err := listed()
	if err != nil {
		t.Fatal(err)
	}
	have := func(dir string) bool {
		return slices.ContainsFunc(l.pkgs, func(p pkg) bool { return under(p.ImportPath, dir) })
	}
	for _, dir := range append([]string{"chain/app", "chain/types"}, roles...) {
		if !have(l.mod + "/" + dir) {
			t.Fatalf("go list found no package %s/%s: the layering rules would check nothing", l.mod, dir)
		}
	}
	return l.mod, l.pkgs
}

// moduleRoot walks up from the test's directory to go.mod and reads the
// module path from it.
func moduleRoot() (dir, mod string, err error) {
	dir, err = os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			for sc := bufio.NewScanner(f); sc.Scan(); {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(m), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s/go.mod has no module line", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestChainLinksNothingOffChain: the state machine must not link an
// inference engine, a role, HTTP serving or any other off-chain code of
// this module, so that consensus depends only on chain/....
func TestChainLinksNothingOffChain(t *testing.T) {
	mod, pkgs := modulePackages(t)
	if bad := chainViolations(mod, pkgs); len(bad) > 0 {
		t.Fatalf("chain/... links %d off-chain packages of this module (only chain/... may be imported):\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
}

// TestRolesDoNotLinkEachOther: a role (provider, gateway, validator,
// explorer) shares formats with the others through leaf packages, never by
// importing another role's implementation.
func TestRolesDoNotLinkEachOther(t *testing.T) {
	mod, pkgs := modulePackages(t)
	bad := roleViolations(mod, pkgs)
	// Waiver until branch protocol (formats shared through leaf packages)
	// is merged: remove this block then. It covers only these two imports,
	// so any other role import still fails the test.
	if slices.Equal(sorted(bad), []string{"gateway → provider", "validator → provider"}) {
		t.Skip("role rule: see branch protocol (broken by gateway → provider and validator → provider)")
	}
	if len(bad) > 0 {
		t.Fatalf("a role links another role:\n  %s", strings.Join(bad, "\n  "))
	}
}

// TestRulesCatchViolations runs the rules on made-up graphs, so a rule that
// stopped seeing anything would fail here.
func TestRulesCatchViolations(t *testing.T) {
	const m = "example.com/m"
	p := func(path string, imports ...string) pkg {
		for i, x := range imports {
			imports[i] = m + "/" + x
		}
		return pkg{ImportPath: m + "/" + path, Imports: imports}
	}
	// closure fills Deps from Imports, as go list does.
	closure := func(pkgs ...pkg) []pkg {
		byPath := map[string]pkg{}
		for _, x := range pkgs {
			byPath[x.ImportPath] = x
		}
		for i := range pkgs {
			seen := map[string]bool{}
			var walk func(string)
			walk = func(at string) {
				for _, d := range byPath[at].Imports {
					if !seen[d] {
						seen[d] = true
						walk(d)
					}
				}
			}
			walk(pkgs[i].ImportPath)
			for d := range seen {
				pkgs[i].Deps = append(pkgs[i].Deps, d)
			}
			slices.Sort(pkgs[i].Deps)
		}
		return pkgs
	}
	for _, c := range []struct {
		name        string
		pkgs        []pkg
		chain, role []string
	}{
		{name: "clean", pkgs: closure(
			p("chain/types"), p("chain/audit", "chain/types"), p("engine/native"),
			p("verify", "engine/native", "chain/audit"), p("provider", "verify"), p("gateway", "chain/types"),
		)},
		{name: "chain through verify to the engine", pkgs: closure(
			p("chain/types"), p("engine/native"), p("verify", "engine/native"), p("chain/audit", "chain/types", "verify"),
		), chain: []string{"chain/audit → verify", "chain/audit → verify → engine/native"}},
		{name: "a folder named like chain is not chain", pkgs: closure(
			p("chainx"), p("chain", "chainx"),
		), chain: []string{"chain → chainx"}},
		{name: "role through a library to another role", pkgs: closure(
			p("provider"), p("lib", "provider"), p("gateway", "lib"), p("validator/sub", "explorer"), p("explorer"),
		), role: []string{"gateway → lib → provider", "validator/sub → explorer"}},
		{name: "a role's own subpackage is fine", pkgs: closure(
			p("provider/store"), p("provider", "provider/store"),
		)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := chainViolations(m, c.pkgs); !slices.Equal(sorted(got), sorted(c.chain)) {
				t.Errorf("chain rule: got %q, want %q", got, c.chain)
			}
			if got := roleViolations(m, c.pkgs); !slices.Equal(sorted(got), sorted(c.role)) {
				t.Errorf("role rule: got %q, want %q", got, c.role)
			}
		})
	}
}

func sorted(xs []string) []string { return slices.Sorted(slices.Values(xs)) }
