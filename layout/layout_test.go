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
	ImportPath   string
	Dir          string
	Imports      []string // direct imports, to show how a forbidden package is reached
	Deps         []string // the whole dependency closure
	TestImports  []string // direct imports of the package's tests
	XTestImports []string
}

// roles are the off-chain daemons' packages; none may link another.
var roles = []string{"provider", "gateway", "validator", "explorer", "executor", "storer"}

// leaves are the folders of the formats roles exchange: every role may
// import them, so they may link no role and no inference engine.
var leaves = []string{"protocol", "reqauth"}

// composers are the folders that wire roles together or test them: the
// command tree, the node, the end-to-end tests and the test fixtures. A
// library under internal/ links none of them and no role.
var composers = []string{"cmd", "node", "e2e", "testutil"}

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
			// A role's tests may not drive another role either: tests
			// across roles belong in e2e.
			for _, d := range slices.Concat(p.TestImports, p.XTestImports) {
				for _, other := range roles {
					if other != r && under(d, mod+"/"+other) {
						out = append(out, trim(mod, p.ImportPath)+" (tests) → "+trim(mod, d))
					}
				}
			}
		}
	}
	return out
}

// leafViolations lists, for every package of a leaf folder (protocol/...,
// reqauth), each role or engine package in its dependency closure, with the
// import path that reaches it.
func leafViolations(mod string, pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if !slices.ContainsFunc(leaves, func(l string) bool { return under(p.ImportPath, mod+"/"+l) }) {
			continue
		}
		for _, d := range p.Deps {
			if under(d, mod+"/engine") || slices.ContainsFunc(roles, func(r string) bool { return under(d, mod+"/"+r) }) {
				out = append(out, route(mod, pkgs, p.ImportPath, d))
			}
		}
	}
	return out
}

// libraryViolations lists, for every package under internal/, each role,
// node, command or test-fixture package in its dependency closure: internal/
// holds libraries only.
func libraryViolations(mod string, pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if !under(p.ImportPath, mod+"/internal") {
			continue
		}
		for _, d := range p.Deps {
			if slices.ContainsFunc(slices.Concat(roles, composers), func(r string) bool { return under(d, mod+"/"+r) }) {
				out = append(out, route(mod, pkgs, p.ImportPath, d))
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
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Dir,Imports,Deps,TestImports,XTestImports", "./...")
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
			// go test caches a pass keyed on the files the test opened,
			// not on what go list read: opening each package's folder
			// (its listing, with each file's size and time, enters the
			// key) makes an edit anywhere in the module rerun the tests.
			if err := touch(p.Dir); err != nil {
				return listing{}, err
			}
		}
	}
	return l, touch(root) // and a new top-level folder
}

// touch opens and closes path, so that go test's cache key covers it.
func touch(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
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
	for _, dir := range slices.Concat([]string{"chain/app", "chain/types"}, roles, leaves) {
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
	if bad := roleViolations(mod, pkgs); len(bad) > 0 {
		t.Fatalf("a role links another role (share the format through protocol/... instead):\n  %s", strings.Join(bad, "\n  "))
	}
}

// TestProtocolIsALeaf: the packages every role imports for the formats they
// exchange (protocol/..., reqauth) link no role and no inference engine.
func TestProtocolIsALeaf(t *testing.T) {
	mod, pkgs := modulePackages(t)
	if bad := leafViolations(mod, pkgs); len(bad) > 0 {
		t.Fatalf("a protocol package links a role or the engine:\n  %s", strings.Join(bad, "\n  "))
	}
}

// TestInternalHoldsLibraries: internal/ holds libraries; the composition
// root is cmd/agora, test fixtures are under testutil/.
func TestInternalHoldsLibraries(t *testing.T) {
	mod, pkgs := modulePackages(t)
	if bad := libraryViolations(mod, pkgs); len(bad) > 0 {
		t.Fatalf("a package under internal/ links a role, the node, a command or a test fixture:\n  %s", strings.Join(bad, "\n  "))
	}
	if bad := libraryViolations(mod, []pkg{{ImportPath: mod + "/internal/lib", Deps: []string{mod + "/node"}}}); len(bad) != 1 {
		t.Fatalf("the rule did not catch internal/lib → node: %v", bad)
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
		name              string
		pkgs              []pkg
		chain, role, leaf []string
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
		{name: "a role's tests import another role", pkgs: func() []pkg {
			g := p("gateway")
			g.XTestImports = []string{m + "/provider", m + "/protocol/inference"}
			return closure(p("provider"), p("protocol/inference"), g)
		}(), role: []string{"gateway (tests) → provider"}},
		{name: "protocol through a library to a role and the engine", pkgs: closure(
			p("engine/native"), p("gateway"), p("lib", "gateway"), p("protocol/inference", "lib"), p("reqauth", "engine/native"), p("protocol/payment"),
		), leaf: []string{"protocol/inference → lib → gateway", "reqauth → engine/native"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := chainViolations(m, c.pkgs); !slices.Equal(sorted(got), sorted(c.chain)) {
				t.Errorf("chain rule: got %q, want %q", got, c.chain)
			}
			if got := roleViolations(m, c.pkgs); !slices.Equal(sorted(got), sorted(c.role)) {
				t.Errorf("role rule: got %q, want %q", got, c.role)
			}
			if got := leafViolations(m, c.pkgs); !slices.Equal(sorted(got), sorted(c.leaf)) {
				t.Errorf("leaf rule: got %q, want %q", got, c.leaf)
			}
		})
	}
}

func sorted(xs []string) []string { return slices.Sorted(slices.Values(xs)) }
