package meter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/agoranet/agora/engine/wasm/internal/wasmgen"
)

type outcome struct {
	results []uint64
	trap    string // first line of the wasm error, "" when none
	memory  [32]byte
	globals []uint64
	gasLeft int64
	depth   uint64
}

func newRuntime(interp bool) wazero.Runtime {
	cfg := wazero.NewRuntimeConfigCompiler()
	if interp {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	return wazero.NewRuntimeWithConfig(context.Background(), cfg.WithCoreFeatures(api.CoreFeaturesV2))
}

func trapLine(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// call instantiates compiled, sets the gas (when metered) and calls the
// entry "f0"(7, 11).
func call(t *testing.T, rt wazero.Runtime, compiled wazero.CompiledModule, metered bool, gas int64) outcome {
	t.Helper()
	ctx := context.Background()
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(ctx)
	if metered {
		mod.ExportedGlobal(GasExport).(api.MutableGlobal).Set(uint64(gas))
		mod.ExportedGlobal(MemCapExport).(api.MutableGlobal).Set(65536)
	}
	var o outcome
	o.results, err = mod.ExportedFunction("f0").Call(ctx, 7, 11)
	o.trap = trapLine(err)
	if err == nil && len(o.results) == 0 {
		o.results = nil
	}
	mem, _ := mod.ExportedMemory("mem").Read(0, mod.ExportedMemory("mem").Size())
	o.memory = sha256.Sum256(mem)
	for i := 0; i < wasmgen.NGlobals; i++ {
		o.globals = append(o.globals, mod.ExportedGlobal(fmt.Sprintf("g%d", i)).Get())
	}
	if metered {
		o.gasLeft = int64(mod.ExportedGlobal(GasExport).Get())
		o.depth = mod.ExportedGlobal(DepthExport).Get()
	}
	return o
}

func (o outcome) String() string {
	return fmt.Sprintf("results %v trap %q memory %x globals %v gas left %d depth %d", o.results, o.trap, o.memory[:4], o.globals, o.gasLeft, o.depth)
}

func same(a, b outcome) bool {
	return fmt.Sprint(a.results, a.trap, a.memory, a.globals) == fmt.Sprint(b.results, b.trap, b.memory, b.globals)
}

// checkModule runs a module unmetered and metered (compiler and
// interpreter) and checks the metered runs behave as the original, use the
// same gas on both engines, succeed with exactly that much gas and run out
// with one less.
func checkModule(t *testing.T, wasm []byte, rts [2]wazero.Runtime) {
	t.Helper()
	ctx := context.Background()
	metered, _, err := Instrument(wasm)
	if err != nil {
		t.Fatalf("instrument: %v", err)
	}
	orig, err := rts[0].CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("the generated module is invalid: %v", err)
	}
	defer orig.Close(ctx)
	want := call(t, rts[0], orig, false, 0)
	var mc [2]wazero.CompiledModule
	for i, rt := range rts {
		if mc[i], err = rt.CompileModule(ctx, metered); err != nil {
			t.Fatalf("the metered module is invalid: %v", err)
		}
		defer mc[i].Close(ctx)
	}
	const limit = 1 << 40
	got := call(t, rts[0], mc[0], true, limit)
	if !same(got, want) {
		t.Fatalf("metered differs from the original:\n got  %v\n want %v", got, want)
	}
	if got.depth != 0 && got.trap == "" {
		t.Fatalf("depth %d after a return", got.depth)
	}
	interp := call(t, rts[1], mc[1], true, limit)
	if !same(interp, got) || interp.gasLeft != got.gasLeft {
		t.Fatalf("interpreter differs from compiler:\n interpreter %v\n compiler    %v", interp, got)
	}
	used := limit - got.gasLeft
	if want.trap != "" {
		// After a trap the global holds the balance as of the last call
		// or function entry (the rest was in a local): the same on both
		// engines (checked above), but not the exact cost of the path.
		return
	}
	if used <= 0 {
		t.Fatalf("no gas used: %v", got)
	}
	exact := call(t, rts[0], mc[0], true, used)
	if !same(exact, want) || exact.gasLeft != 0 {
		t.Fatalf("with exactly %d gas: %v, want %v and 0 left", used, exact, want)
	}
	short := call(t, rts[1], mc[1], true, used-1)
	if short.gasLeft >= 0 {
		t.Fatalf("with %d gas (one short): %v, want out of gas", used-1, short)
	}
}

func TestGeneratedModulesBehaveAsOriginal(t *testing.T) {
	rts := [2]wazero.Runtime{newRuntime(false), newRuntime(true)}
	defer rts[0].Close(context.Background())
	defer rts[1].Close(context.Background())
	n := 400
	if testing.Short() {
		n = 50
	}
	traps := 0
	for seed := uint64(0); seed < uint64(n); seed++ {
		wasm := wasmgen.Module(seed, false)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkModule(t, wasm, rts) })
		if o := call(t, rts[0], must(rts[0].CompileModule(context.Background(), wasm)), false, 0); o.trap != "" {
			traps++
		}
	}
	// The generator must exercise both outcomes.
	if traps == 0 || traps == n {
		t.Fatalf("%d of %d generated modules trap", traps, n)
	}
	t.Logf("%d of %d generated modules trap", traps, n)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzInstrument feeds arbitrary bytes (seeded with generated modules) to
// the pass: it never panics, and a module wazero accepts is either refused
// with an error or metered into a module wazero accepts.
func FuzzInstrument(f *testing.F) {
	for seed := uint64(0); seed < 20; seed++ {
		f.Add(wasmgen.Module(seed, false))
	}
	rt := newRuntime(true)
	defer rt.Close(context.Background())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		metered, _, err := Instrument(wasm)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			// Refused input never reaches wazero (whose decoder, fed
			// this seed's type of a billion values, exhausts memory).
			return
		}
		ctx := context.Background()
		cm, origErr := rt.CompileModule(ctx, wasm)
		if origErr == nil {
			cm.Close(ctx)
		}
		if origErr != nil {
			// Invalid input we did not catch must stay invalid.
			if mc, err := rt.CompileModule(ctx, metered); err == nil {
				mc.Close(ctx)
				t.Fatalf("an invalid module (%v) became valid once metered", origErr)
			}
			return
		}
		mc, err := rt.CompileModule(ctx, metered)
		if err != nil {
			t.Fatalf("a valid module metered into an invalid one: %v", err)
		}
		mc.Close(ctx)
	})
}

// FuzzGenerated checks the behaviour property on generated modules from
// fuzzed seeds.
func FuzzGenerated(f *testing.F) {
	f.Add(uint64(1))
	rts := [2]wazero.Runtime{newRuntime(false), newRuntime(true)}
	f.Fuzz(func(t *testing.T, seed uint64) { checkModule(t, wasmgen.Module(seed, false), rts) })
}

func TestInstrumentRefuses(t *testing.T) {
	valid := wasmgen.Module(3, false)
	importMod := func(mod, name string) []byte {
		w := []byte("\x00asm\x01\x00\x00\x00")
		w = section(w, 1, []byte{1, 0x60, 0, 0})
		p := appendName(appendName([]byte{1}, mod), name)
		w = section(w, 2, append(p, 0, 0))
		return w
	}
	body := func(code ...byte) []byte {
		w := []byte("\x00asm\x01\x00\x00\x00")
		w = section(w, 1, []byte{1, 0x60, 0, 0})
		w = section(w, 3, []byte{1, 0})
		w = section(w, 5, []byte{1, 0, 1})
		b := append([]byte{0}, code...)
		b = append(b, 0x0b)
		return section(w, 10, append(appendU32([]byte{1}, uint32(len(b))), b...))
	}
	cases := []struct {
		name string
		wasm []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), "bad magic"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), "binary version"},
		{"truncated", valid[:len(valid)-3], "unexpected end of input"},
		{"oversized", append(bytes.Clone(valid), make([]byte, MaxModuleBytes)...), "over the 33554432-byte cap"},
		{"import from env", importMod("env", "f"), `import "env.f" is not allowed`},
		{"socket import", importMod(WASIModule, "sock_accept"), `import "wasi_snapshot_preview1.sock_accept" is not allowed`},
		{"SIMD", body(0xfd, 0x0c), "SIMD is not supported"},
		{"atomics", body(0xfe, 0x00), "threads and atomics"},
		{"memory.init", body(0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 8, 0, 0), "memory.init is not allowed"},
		{"table.set", body(0x26, 0), "table.set"},
		{"tail call", body(0x12, 0), "tail calls"},
		{"unknown opcode", body(0xff), "unknown opcode 0xff"},
		{"body ends early", body(0x02, 0x40), "open blocks"},
		{"global past the end", body(0x23, 0x00, 0x1a), "global index 0 out of range"},
		{"call past the end", body(0x10, 0x05), "function index 5 out of range"},
		{"bad LEB", body(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), "LEB128 too long"},
		{"sections out of order", append(section([]byte("\x00asm\x01\x00\x00\x00"), 3, []byte{0}), section(nil, 1, []byte{0})...), "out of order"},
		{"reserved export", func() []byte {
			w := section([]byte("\x00asm\x01\x00\x00\x00"), 5, []byte{1, 0, 1})
			return section(w, 7, append(appendName([]byte{1}, "__agora_gas"), 2, 0))
		}(), "reserved prefix"},
		{"v128 global", section([]byte("\x00asm\x01\x00\x00\x00"), 6, []byte{1, 0x7b, 1, 0x0b}), "v128 (SIMD)"},
		{"shared memory", section([]byte("\x00asm\x01\x00\x00\x00"), 5, []byte{1, 3, 1, 1}), "shared or 64-bit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Instrument(c.wasm)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// 0/0 is the canonical NaN, an infinite loop stops when the gas runs out,
// and unbounded recursion at the depth limit, the same on both engines.
func TestLoopAndRecursionStop(t *testing.T) {
	ctx := context.Background()
	mk := func(code ...byte) []byte {
		w := []byte("\x00asm\x01\x00\x00\x00")
		w = section(w, 1, []byte{1, 0x60, 2, I32, I64, 1, I64})
		w = section(w, 3, []byte{1, 0})
		w = section(w, 5, []byte{1, 0, 1})
		w = section(w, 6, []byte{5, I32, 1, 0x41, 0, 0x0b, I64, 1, 0x42, 0, 0x0b, F32, 1, 0x43, 0, 0, 0, 0, 0x0b, F64, 1, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, I32, 0, 0x41, 0, 0x0b})
		p := appendName([]byte{7}, "f0")
		p = append(p, 0, 0)
		for i := 0; i < 5; i++ {
			p = appendName(p, fmt.Sprintf("g%d", i))
			p = append(p, 3, byte(i))
		}
		p = appendName(p, "mem")
		p = append(p, 2, 0)
		w = section(w, 7, p)
		b := append([]byte{0}, code...)
		b = append(b, 0x0b)
		return section(w, 10, append(appendU32([]byte{1}, uint32(len(b))), b...))
	}
	nan := mk(0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0xbd) // i64.reinterpret_f64(0.0 / 0.0)
	loop := mk(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x42, 0x00)                              // loop br 0 end; i64.const 0
	recurse := mk(0x20, 0x00, 0x20, 0x01, 0x10, 0x00, 0x42, 0x01, 0x7c)               // f0(a, b) + 1
	for _, interp := range []bool{false, true} {
		rt := newRuntime(interp)
		defer rt.Close(ctx)
		for _, c := range []struct {
			name  string
			wasm  []byte
			check func(o outcome) bool
		}{
			{"canonical NaN", nan, func(o outcome) bool { return o.trap == "" && len(o.results) == 1 && o.results[0] == 0x7ff8000000000000 }},
			{"loop", loop, func(o outcome) bool { return o.gasLeft < 0 && strings.Contains(o.trap, "unreachable") }},
			{"recursion", recurse, func(o outcome) bool {
				return o.gasLeft >= 0 && o.depth == MaxCallDepth+1 && strings.Contains(o.trap, "unreachable")
			}},
		} {
			m, _, err := Instrument(c.wasm)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := rt.CompileModule(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if o := call(t, rt, cm, true, 1_000_000); !c.check(o) {
				t.Errorf("interpreter=%v %s: %v", interp, c.name, o)
			}
		}
	}
}

// The pass is a function of its input: the module hash names the metered
// module too.
func TestInstrumentDeterministic(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		w := wasmgen.Module(seed, false)
		a, ia, err := Instrument(w)
		if err != nil {
			t.Fatal(err)
		}
		b, ib, _ := Instrument(bytes.Clone(w))
		if !bytes.Equal(a, b) || fmt.Sprint(ia) != fmt.Sprint(ib) {
			t.Fatalf("seed %d: two passes differ", seed)
		}
		// Every mutable global is exported, the pass's own among them.
		names := map[string]bool{}
		for _, g := range ia.Globals {
			names[g.Export] = true
		}
		for _, n := range []string{GasExport, DepthExport, MemCapExport, globalPrefix + "0", globalPrefix + "3"} {
			if !names[n] {
				t.Fatalf("seed %d: %s not exported (%v)", seed, n, ia.Globals)
			}
		}
		if names[globalPrefix+"4"] {
			t.Fatalf("seed %d: the immutable global 4 is exported as state", seed)
		}
	}
}
