package wasm

import (
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"testing"

	"github.com/agoranet/agora/engine/wasm/examples"
)

var (
	buildMu   sync.Mutex
	built     = map[string][]byte{}
	engines   = map[bool]*Engine{}
	enginesMu sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, e := range engines {
		_ = e.Close(context.Background())
	}
	os.Exit(code)
}

// example builds an example job once per test binary.
func example(t testing.TB, name string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[name]; ok {
		return b
	}
	b, err := examples.Build(context.Background(), name)
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

// compile meters and compiles wasm once per engine for the whole test
// binary: the example modules are megabytes of Go, whose compilation is
// most of the package's test time under the race detector.
func compile(t testing.TB, interp bool, wasm []byte) *Module {
	t.Helper()
	key := compiledKey{interp, sha256.Sum256(wasm)}
	compiledMu.Lock()
	defer compiledMu.Unlock()
	if m, ok := compiled[key]; ok {
		return m
	}
	m, err := engine(t, interp).Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	compiled[key] = m
	return m
}

type compiledKey struct {
	interp bool
	sum    [32]byte
}

var (
	compiledMu sync.Mutex
	compiled   = map[compiledKey]*Module{}
)
