package wasm

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Hand-assembled modules for the bad-input tests.

func leb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sec(out []byte, id byte, payload []byte) []byte {
	out = append(out, id)
	out = append(out, leb(uint32(len(payload)))...)
	return append(out, payload...)
}

func name(s string) []byte { return append(leb(uint32(len(s))), s...) }

// abiModule exports init () and step () -> i32 with the given step body
// (no locals), and a memory of minPages.
func abiModule(minPages uint32, stepType byte, step ...byte) []byte {
	w := []byte("\x00asm\x01\x00\x00\x00")
	types := []byte{2, 0x60, 0, 0, 0x60, 0, 1, 0x7f}
	if stepType == 0 {
		types = []byte{2, 0x60, 0, 0, 0x60, 0, 0}
	}
	w = sec(w, 1, types)
	w = sec(w, 3, []byte{2, 0, 1})
	w = sec(w, 5, append([]byte{1, 0}, leb(minPages)...))
	exp := []byte{3}
	exp = append(append(exp, name("init")...), 0, 0)
	exp = append(append(exp, name("step")...), 0, 1)
	exp = append(append(exp, name("memory")...), 2, 0)
	w = sec(w, 7, exp)
	initBody := []byte{0, 0x0b}
	stepBody := append(append([]byte{0}, step...), 0x0b)
	code := []byte{2}
	code = append(append(code, leb(uint32(len(initBody)))...), initBody...)
	code = append(append(code, leb(uint32(len(stepBody)))...), stepBody...)
	return sec(w, 10, code)
}

func TestBadModules(t *testing.T) {
	ctx := context.Background()
	e := engine(t, false)
	importing := func(mod, fn string) []byte {
		w := sec([]byte("\x00asm\x01\x00\x00\x00"), 1, []byte{1, 0x60, 0, 0})
		return sec(w, 2, append(append(append([]byte{1}, name(mod)...), name(fn)...), 0, 0))
	}
	cases := []struct {
		name string
		wasm []byte
		want string
	}{
		{"malformed", []byte("not a module at all"), "malformed module: not a WebAssembly binary"},
		{"truncated", abiModule(1, 1, 0x41, 0)[:40], "malformed module"},
		{"oversized", append(abiModule(1, 1, 0x41, 0), make([]byte, 33<<20)...), "over the 33554432-byte cap"},
		{"forbidden import", importing("env", "now"), `import "env.now" is not allowed`},
		{"socket import", importing("wasi_snapshot_preview1", "sock_send"), `import "wasi_snapshot_preview1.sock_send" is not allowed`},
		{"no ABI", sec([]byte("\x00asm\x01\x00\x00\x00"), 1, []byte{0}), ErrNoABI.Error()},
		{"step without result", abiModule(1, 0), "export step must have type () -> i32"},
		{"type error", abiModule(1, 1, 0x42, 0), "invalid module"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := e.Compile(ctx, c.wasm)
			if err == nil {
				m.Close(ctx)
				t.Fatal("compiled")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one containing %q", err, c.want)
			}
		})
	}
}

func TestBadJobs(t *testing.T) {
	ctx := context.Background()
	loop := abiModule(1, 1, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00) // loop br 0 end; 0
	divZero := abiModule(1, 1, 0x41, 0x01, 0x41, 0x00, 0x6d)          // 1 / 0
	grow := abiModule(1, 1, 0x41, 0x0a, 0x40, 0x00)                   // memory.grow(10)
	recurse := abiModule(1, 1, 0x10, 0x01, 0x1a, 0x41, 0x00)          // step(); 0
	bigMemory := abiModule(10, 1, 0x41, 0x00)                         // 10 pages at least
	cases := []struct {
		name  string
		wasm  []byte
		job   Job
		fail  string // the Failure's reason, or
		err   string // the error's text
		check func(t *testing.T, r *Result)
	}{
		{name: "infinite loop", wasm: loop, job: Job{Gas: 1_000_000}, fail: "out of gas", check: func(t *testing.T, r *Result) {
			if r.GasUsed != 1_000_000 || r.Failure.GasUsed != 1_000_000 {
				t.Fatalf("gas used %d, want the whole limit", r.GasUsed)
			}
		}},
		{name: "trap", wasm: divZero, job: Job{Gas: 1000}, fail: "trap: integer divide by zero"},
		{name: "grow past the cap", wasm: grow, job: Job{Gas: 1 << 30, MemoryPages: 5}, fail: "step returned -1 (want 0 done or 1 more)"},
		{name: "grow within the cap", wasm: grow, job: Job{Gas: 1 << 30, MemoryPages: 11}, check: func(t *testing.T, r *Result) {
			// grow returns the old size, 1: "more"; the second step
			// fails (11 pages + 10 > the cap), after 10 pages' gas.
			if r.Failure == nil || r.Failure.Reason != "step returned -1 (want 0 done or 1 more)" || r.Steps != 2 {
				t.Fatalf("%+v", r.Failure)
			}
			if r.GasUsed < 10*1024 {
				t.Fatalf("growing 10 pages cost %d gas", r.GasUsed)
			}
		}},
		{name: "memory over the cap", wasm: bigMemory, job: Job{Gas: 1000, MemoryPages: 5}, err: "module's memory needs 10 pages, over the job's cap of 5"},
		{name: "call depth", wasm: recurse, job: Job{Gas: 1 << 30}, fail: "call depth over 1000"},
		{name: "no gas", wasm: loop, job: Job{}, err: "gas limit 0 out of range"},
		{name: "bad input name", wasm: loop, job: Job{Gas: 1, Inputs: []Blob{{Name: "../x"}}}, err: `input name "../x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var prev *Result
			for _, interp := range []bool{false, true} {
				m := compile(t, interp, c.wasm)
				r, err := m.Run(ctx, c.job)
				if c.err != "" {
					if err == nil || !strings.Contains(err.Error(), c.err) {
						t.Fatalf("error %v, want %q", err, c.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.fail != "" && (r.Failure == nil || r.Failure.Reason != c.fail) {
					t.Fatalf("interpreter=%v: failure %+v, want %q", interp, r.Failure, c.fail)
				}
				if c.check != nil {
					c.check(t, r)
				}
				if prev != nil && !reflect.DeepEqual(prev, r) {
					t.Fatalf("compiler and interpreter differ:\n%+v\n%+v", prev, r)
				}
				prev = r
			}
		})
	}
}

// A Go job that runs out of gas fails identically on both engines, at the
// limit; a restore of a state that does not fit the module is refused.
func TestGoJobOutOfGasAndBadRestore(t *testing.T) {
	ctx := context.Background()
	job := Job{Args: []string{"24", "16", "4"}, Gas: 3_000_000}
	var fails [2]*Failure
	for i, interp := range []bool{false, true} {
		r, err := compile(t, interp, example(t, "raytrace")).Run(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		if r.Failure == nil || r.Failure.Reason != "out of gas" || r.GasUsed != job.Gas {
			t.Fatalf("interpreter=%v: %+v, %d gas", interp, r.Failure, r.GasUsed)
		}
		fails[i] = r.Failure
	}
	if *fails[0] != *fails[1] {
		t.Fatalf("failures differ: %+v %+v", fails[0], fails[1])
	}
	var f *Failure
	if !errors.As(error(fails[0]), &f) || !strings.Contains(f.Error(), "out of gas") {
		t.Fatal(fails[0].Error())
	}

	// A job holding a file open across steps fails after init.
	r, err := compile(t, false, example(t, "memtouch")).Run(ctx, Job{Args: []string{"1", "2", "10", "leak"}, Gas: 1 << 40})
	if err != nil || r.Failure == nil || r.Failure.Reason != "1 files left open at the end of a step (a step must close the files it opens)" || r.Failure.Phase != "init" {
		t.Fatalf("leaking a file: %v %+v", err, r.Failure)
	}

	m := compile(t, false, example(t, "raytrace"))
	job.Gas = 1 << 40
	in, err := m.Start(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	st := in.Snapshot()
	in.Close(ctx)
	edits := []struct {
		name string
		edit func(s *State)
		want string
	}{
		{"ragged memory", func(s *State) { s.Memory = s.Memory[:len(s.Memory)-1] }, "not a whole number of pages"},
		{"missing global", func(s *State) { s.Globals = s.Globals[1:] }, "globals, the module"},
		{"gas over the limit", func(s *State) { s.GasUsed = job.Gas + 1 }, "over the job's limit"},
		{"stdin past its end", func(s *State) { s.StdinOffset = 5 }, "stdin offset 5"},
		{"fewer pages", func(s *State) { s.Memory = nil }, "fewer than the module's minimum"},
	}
	for _, e := range edits {
		s := *st
		s.Memory = bytes.Clone(st.Memory)
		s.Globals = append([]uint64(nil), st.Globals...)
		e.edit(&s)
		if _, err := m.Restore(ctx, job, &s); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("%s: %v, want %q", e.name, err, e.want)
		}
		if _, err := m.ReplayStep(ctx, job, &s); err == nil {
			t.Errorf("%s: replayed", e.name)
		}
	}
}
