package wasm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildDir  string
	buildMu   sync.Mutex
	built     = map[string][]byte{}
	engines   = map[bool]*Engine{}
	enginesMu sync.Mutex
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agora-wasm-jobs-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	for _, e := range engines {
		_ = e.Close(context.Background())
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// example builds testdata/jobs/<name> for wasip1 once per test binary: as a
// c-shared module (the job ABI) unless it is a plain command.
func example(t testing.TB, name string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[name]; ok {
		return b
	}
	src, err := filepath.Abs(filepath.Join("testdata", "jobs", name))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(buildDir, name+".wasm")
	args := []string{"build", "-trimpath", "-o", out}
	if name != "echo" {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[name] = b
	return b
}

// engine returns a shared engine: wazero's interpreter or its compiler.
func engine(t testing.TB, interp bool) *Engine {
	t.Helper()
	enginesMu.Lock()
	defer enginesMu.Unlock()
	if e, ok := engines[interp]; ok {
		return e
	}
	e, err := NewEngine(context.Background(), Options{Interpreter: interp})
	if err != nil {
		t.Fatal(err)
	}
	engines[interp] = e
	return e
}

func compile(t testing.TB, interp bool, wasm []byte) *Module {
	t.Helper()
	m, err := engine(t, interp).Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}
