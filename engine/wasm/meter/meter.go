// Package meter is the gas-injection pass of the WASM job runtime. It
// rewrites a module's binary so that it meters itself, deterministically and
// identically on any engine:
//
//   - gas: a mutable i64 global holds the gas remaining. Code is charged
//     in segments, each at its first instruction for all it holds: the
//     body's start, a loop's body, the arms of an if and the code after a
//     block's or if's end start segments (they can be entered by a branch);
//     a block's body and the code after a loop continue the segment they
//     are in. A segment costs its original instructions (a call to an
//     import counts ImportCallCost; end and else count nothing). Charges at
//     a function's entry and a loop's body then check the balance and trap
//     (unreachable) when it is negative; the others only subtract, since
//     every unbounded path passes a checked charge. While a function runs
//     the balance lives in a local (a register): loaded at entry and after
//     each call, stored back before each call, on the way out and before
//     the out-of-gas trap — so host functions (the clock) see it exact.
//     After any other trap the global holds the balance of the last store,
//     a fixed point of the code: deterministic, if not the path's exact
//     cost. The global stays
//     negative: the runtime tells "out of gas" from any other trap by its
//     sign, and treats a call that returns with it negative as out of gas
//     too. memory.grow becomes a call to an injected function that
//     refuses growth past the memory cap (a global the runtime sets) and
//     charges GrowPageCost per page granted; memory.fill and memory.copy
//     charge one gas per BulkBytesPerGas bytes first (both checked).
//   - call depth: a mutable i32 global counts frames; each function that
//     calls (leaves cannot deepen the stack further) increments it on entry
//     and traps past MaxCallDepth (leaving it above the limit, so the
//     runtime can tell this trap too), and decrements it on every way out:
//     the body is wrapped in a block of the function's result type and each
//     `return` becomes a branch to that block. wazero's own stack limits
//     differ between its interpreter and compiler; this one is reached
//     first, on both.
//   - floats: a NaN's sign and payload are left to the CPU by the spec
//     (whether a result is a NaN is not), so wherever a float's bits become
//     observable — a store, a reinterpret, a global.set, copysign's sign
//     operand — a NaN is first replaced by the canonical quiet NaN.
//     Arithmetic in between needs no rewriting: comparisons, conversions
//     and further arithmetic treat every NaN alike.
//   - state: every mutable global (the module's and the pass's own) and the
//     memory are exported under reserved names, so the runtime can read and
//     restore them for checkpoints; the start function is exported instead
//     of run at instantiation, so instantiating runs no code and the runtime
//     calls it once gas is set.
//
// Refused: imports other than the allowed wasi_snapshot_preview1 functions
// (the error names the import), the 0xFD prefix (SIMD, including relaxed
// SIMD — v1 admits no vector instruction, since relaxed SIMD is
// nondeterministic by design and plain SIMD has not been audited here), the
// 0xFE prefix (threads/atomics), tail calls, exception handling, memory64,
// multiple or shared memories, and the instructions whose effects live
// outside memory and globals (table.set, table.grow, table.fill, table.copy,
// table.init, elem.drop, memory.init, data.drop): with them, memory and
// globals would no longer be a job's whole state. Custom sections are
// dropped. Malformed input gives an error, never a panic.
package meter

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Costs and limits of the metering rules.
const (
	ImportCallCost  = 100  // a call to a WASI function, on top of nothing else
	GrowPageCost    = 1024 // per 64 KiB page memory.grow grants (zeroing it)
	BulkBytesPerGas = 64   // memory.fill / memory.copy: one gas per this many bytes
	MaxCallDepth    = 1000 // frames; wazero's interpreter stops at 2000
	MaxModuleBytes  = 32 << 20
	maxLocals       = 50_000 // per function, declared
	maxFuncs        = 1 << 20
)

// Reserved export names the pass adds.
const (
	GasExport    = "__agora_gas"    // i64, gas remaining; negative after running out
	DepthExport  = "__agora_depth"  // i32, frames open; above MaxCallDepth after overflowing
	MemCapExport = "__agora_memcap" // i32, pages memory.grow may reach
	MemoryExport = "__agora_memory"
	StartExport  = "__agora_start" // the former start function
	globalPrefix = "__agora_global_"
)

// AllowedImports are the wasi_snapshot_preview1 functions a job may import.
// No socket function is among them: a job has no network.
var AllowedImports = []string{
	"args_get", "args_sizes_get", "environ_get", "environ_sizes_get",
	"clock_res_get", "clock_time_get",
	"fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get", "fd_fdstat_set_flags",
	"fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times",
	"fd_pread", "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir",
	"fd_renumber", "fd_seek", "fd_sync", "fd_tell", "fd_write",
	"path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
	"path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
	"path_unlink_file",
	"poll_oneoff", "proc_exit", "random_get", "sched_yield",
}

// WASIModule is the only module a job may import from.
const WASIModule = "wasi_snapshot_preview1"

// Value types.
const (
	I32 byte = 0x7f
	I64 byte = 0x7e
	F32 byte = 0x7d
	F64 byte = 0x7c
)

// Global is a mutable global of the metered module.
type Global struct {
	Index  uint32 `json:"index"`
	Type   byte   `json:"type"` // I32, I64, F32 or F64
	Export string `json:"export"`
}

// Info describes what the pass added, for the runtime.
type Info struct {
	Globals   []Global // every mutable global, by index (the pass's own last)
	HasMemory bool
	MinPages  uint32 // the memory's declared minimum
	HasStart  bool   // StartExport exists
	Funcs     []string
	Imports   []string // "module.name", in order
}

// Instrument returns the metered module and what the runtime needs to
// drive it. The output is a function of the input alone.
func Instrument(wasm []byte) ([]byte, *Info, error) {
	if len(wasm) > MaxModuleBytes {
		return nil, nil, fmt.Errorf("module is %d bytes, over the %d-byte cap", len(wasm), MaxModuleBytes)
	}
	m, err := parse(wasm)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed module: %w", err)
	}
	out, err := m.emit()
	if err != nil {
		return nil, nil, err
	}
	return out, m.info, nil
}

type funcType struct{ params, results []byte }

type export struct {
	name string
	kind byte
	idx  uint32
}

type global struct {
	typ  byte
	mut  bool
	init []byte // raw init expression, end included
}

type module struct {
	types       []funcType
	importRaw   []byte // import section payload, unchanged
	nImportFn   uint32
	funcTypes   []uint32 // defined functions' type indices
	tableRaw    []byte
	memoryRaw   []byte
	hasMemory   bool
	minPages    uint32
	globals     []global
	exports     []export
	start       *uint32
	elemRaw     []byte
	dataCount   []byte
	hasDataCnt  bool
	bodies      [][]byte
	dataRaw     []byte
	info        *Info
	nTypesOrig  uint32
	nGlobalOrig uint32
	nFuncOrig   uint32
}

// section order rank (the data count section sits between element and code).
var rank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

func parse(wasm []byte) (*module, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (bad magic)")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("unsupported binary version (want 1)")
	}
	m := &module{info: &Info{}}
	r := &reader{b: wasm, pos: 8}
	last := 0
	var codeCount *uint32
	for !r.eof() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d size: %w", id, err)
		}
		payload, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if id == 0 {
			// Custom sections carry no semantics and are dropped, but
			// must still be well formed.
			if _, err := (&reader{b: payload}).name(); err != nil {
				return nil, fmt.Errorf("custom section name: %w", err)
			}
			continue
		}
		rk, ok := rank[id]
		if !ok {
			return nil, fmt.Errorf("unknown section id %d", id)
		}
		if rk <= last {
			return nil, fmt.Errorf("section %d out of order or repeated", id)
		}
		last = rk
		s := &reader{b: payload}
		switch id {
		case 1:
			err = m.parseTypes(s)
		case 2:
			m.importRaw = payload
			err = m.parseImports(s)
		case 3:
			err = m.parseFuncs(s)
		case 4:
			m.tableRaw = payload
			err = checkTables(s)
		case 5:
			m.memoryRaw = payload
			err = m.parseMemory(s)
		case 6:
			err = m.parseGlobals(s)
		case 7:
			err = m.parseExports(s)
		case 8:
			var f uint32
			f, err = s.u32()
			m.start = &f
		case 9:
			m.elemRaw = payload
			err = m.checkElems(s)
		case 12:
			m.dataCount, m.hasDataCnt = payload, true
			_, err = s.u32()
		case 10:
			var n uint32
			n, err = s.u32()
			if err == nil {
				codeCount = &n
				err = m.parseCode(s, n)
			}
		case 11:
			m.dataRaw = payload
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if id != 11 && !s.eof() {
			return nil, fmt.Errorf("section %d: %d trailing bytes", id, len(s.b)-s.pos)
		}
	}
	if codeCount == nil && len(m.funcTypes) > 0 || codeCount != nil && int(*codeCount) != len(m.funcTypes) {
		return nil, errors.New("function and code section counts differ")
	}
	m.nTypesOrig = uint32(len(m.types))
	m.nGlobalOrig = uint32(len(m.globals))
	m.nFuncOrig = m.nImportFn + uint32(len(m.funcTypes))
	for _, t := range m.funcTypes {
		if t >= m.nTypesOrig {
			return nil, fmt.Errorf("function type index %d out of range", t)
		}
	}
	if m.start != nil && *m.start >= m.nFuncOrig {
		return nil, fmt.Errorf("start function %d out of range", *m.start)
	}
	for _, e := range m.exports {
		if e.kind == 0 && e.idx >= m.nFuncOrig || e.kind == 3 && e.idx >= m.nGlobalOrig {
			return nil, fmt.Errorf("export %q: index %d out of range", e.name, e.idx)
		}
	}
	return m, nil
}

func valType(b byte) bool {
	return b == I32 || b == I64 || b == F32 || b == F64 || b == 0x70 || b == 0x6f
}

func (r *reader) valType() (byte, error) {
	b, err := r.byte()
	if err != nil {
		return 0, err
	}
	if b == 0x7b {
		return 0, errors.New("v128 (SIMD) is not supported")
	}
	if !valType(b) {
		return 0, fmt.Errorf("bad value type 0x%02x", b)
	}
	return b, nil
}

func (r *reader) valTypes() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if n > 1000 {
		return nil, fmt.Errorf("%d values in a function type", n)
	}
	out := make([]byte, n)
	for i := range out {
		if out[i], err = r.valType(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *module) parseTypes(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n > maxFuncs {
		return fmt.Errorf("%d types", n)
	}
	for i := uint32(0); i < n; i++ {
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return fmt.Errorf("type %d: form 0x%02x is not a function type", i, form)
		}
		var t funcType
		if t.params, err = r.valTypes(); err != nil {
			return fmt.Errorf("type %d: %w", i, err)
		}
		if t.results, err = r.valTypes(); err != nil {
			return fmt.Errorf("type %d: %w", i, err)
		}
		m.types = append(m.types, t)
	}
	return nil
}

func (m *module) parseImports(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		mod, err := r.name()
		if err != nil {
			return err
		}
		name, err := r.name()
		if err != nil {
			return err
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		full := mod + "." + name
		if kind != 0 {
			return fmt.Errorf("import %q: only functions may be imported", full)
		}
		if mod != WASIModule || !slices.Contains(AllowedImports, name) {
			return fmt.Errorf("import %q is not allowed (a job may import only the %s functions %v)", full, WASIModule, AllowedImports)
		}
		if _, err := r.u32(); err != nil {
			return err
		}
		m.nImportFn++
		m.info.Imports = append(m.info.Imports, full)
	}
	return nil
}

func (m *module) parseFuncs(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n > maxFuncs {
		return fmt.Errorf("%d functions", n)
	}
	m.funcTypes = make([]uint32, n)
	for i := range m.funcTypes {
		if m.funcTypes[i], err = r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) limits() (min uint32, err error) {
	flag, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch flag {
	case 0:
		return r.u32()
	case 1:
		if min, err = r.u32(); err != nil {
			return 0, err
		}
		_, err = r.u32()
		return min, err
	default:
		return 0, fmt.Errorf("limits flag 0x%02x (shared or 64-bit memories are not supported)", flag)
	}
}

func checkTables(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		t, err := r.byte()
		if err != nil {
			return err
		}
		if t != 0x70 && t != 0x6f {
			return fmt.Errorf("table %d: bad element type 0x%02x", i, t)
		}
		if _, err := r.limits(); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) parseMemory(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n > 1 {
		return fmt.Errorf("%d memories (at most one)", n)
	}
	if n == 1 {
		if m.minPages, err = r.limits(); err != nil {
			return err
		}
		m.hasMemory = true
	}
	return nil
}

// constExpr reads a constant expression up to its end and returns it raw,
// checking the function it may reference.
func (m *module) constExpr(r *reader) ([]byte, error) {
	start := r.pos
	for {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x0b:
			return r.b[start:r.pos], nil
		case 0x41:
			_, err = r.sleb(32)
		case 0x42:
			_, err = r.sleb(64)
		case 0x43:
			_, err = r.bytes(4)
		case 0x44:
			_, err = r.bytes(8)
		case 0x23:
			_, err = r.u32()
		case 0xd0:
			_, err = r.byte()
		case 0xd2:
			var f uint32
			if f, err = r.u32(); err == nil && f >= m.nImportFn+uint32(len(m.funcTypes)) {
				err = fmt.Errorf("ref.func %d out of range", f)
			}
		default:
			return nil, fmt.Errorf("opcode 0x%02x in a constant expression", op)
		}
		if err != nil {
			return nil, err
		}
	}
}

func (m *module) parseGlobals(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n > maxFuncs {
		return fmt.Errorf("%d globals", n)
	}
	for i := uint32(0); i < n; i++ {
		var g global
		if g.typ, err = r.valType(); err != nil {
			return err
		}
		mut, err := r.byte()
		if err != nil {
			return err
		}
		if mut > 1 {
			return fmt.Errorf("global %d: bad mutability %d", i, mut)
		}
		g.mut = mut == 1
		if g.init, err = m.constExpr(r); err != nil {
			return fmt.Errorf("global %d: %w", i, err)
		}
		m.globals = append(m.globals, g)
	}
	return nil
}

func (m *module) parseExports(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		var e export
		if e.name, err = r.name(); err != nil {
			return err
		}
		if e.kind, err = r.byte(); err != nil {
			return err
		}
		if e.kind > 3 {
			return fmt.Errorf("export %q: bad kind %d", e.name, e.kind)
		}
		if e.idx, err = r.u32(); err != nil {
			return err
		}
		if len(e.name) >= 8 && e.name[:8] == "__agora_" {
			return fmt.Errorf("export %q uses the reserved prefix __agora_", e.name)
		}
		m.exports = append(m.exports, e)
	}
	return nil
}

// checkElems walks the element segments for their function indices: an
// index past the module's functions would otherwise name an injected one.
func (m *module) checkElems(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	nf := m.nImportFn + uint32(len(m.funcTypes))
	for i := uint32(0); i < n; i++ {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags > 7 {
			return fmt.Errorf("element %d: bad flags %d", i, flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if flags&1 == 0 { // active: offset expression
			if _, err := m.constExpr(r); err != nil {
				return err
			}
		}
		if flags&3 != 0 { // element kind or reference type byte
			if _, err := r.byte(); err != nil {
				return err
			}
		}
		cnt, err := r.u32()
		if err != nil {
			return err
		}
		for j := uint32(0); j < cnt; j++ {
			if flags&4 != 0 {
				if _, err := m.constExpr(r); err != nil {
					return err
				}
				continue
			}
			f, err := r.u32()
			if err != nil {
				return err
			}
			if f >= nf {
				return fmt.Errorf("element %d: function %d out of range", i, f)
			}
		}
	}
	return nil
}

func (m *module) parseCode(r *reader, n uint32) error {
	if int(n) != len(m.funcTypes) {
		return fmt.Errorf("%d bodies for %d functions", n, len(m.funcTypes))
	}
	m.bodies = make([][]byte, n)
	for i := range m.bodies {
		size, err := r.u32()
		if err != nil {
			return err
		}
		if m.bodies[i], err = r.bytes(size); err != nil {
			return fmt.Errorf("body %d: %w", i, err)
		}
	}
	return nil
}

func section(out []byte, id byte, payload []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(payload)))
	return append(out, payload...)
}

// blockTypeFor returns the block type encoding of a block yielding results.
func (m *module) blockTypeFor(results []byte) []byte {
	switch len(results) {
	case 0:
		return []byte{0x40}
	case 1:
		return []byte{results[0]}
	}
	for i, t := range m.types {
		if len(t.params) == 0 && slices.Equal(t.results, results) {
			return appendS64(nil, int64(i))
		}
	}
	m.types = append(m.types, funcType{results: slices.Clone(results)})
	return appendS64(nil, int64(len(m.types)-1))
}

func (m *module) typeIndex(params, results []byte) uint32 {
	for i, t := range m.types {
		if slices.Equal(t.params, params) && slices.Equal(t.results, results) {
			return uint32(i)
		}
	}
	m.types = append(m.types, funcType{params: params, results: results})
	return uint32(len(m.types) - 1)
}

// injected holds the indices of what the pass adds.
type injected struct {
	gas, depth, memcap uint32 // globals
	charge, grow       uint32 // functions
}

func (m *module) emit() ([]byte, error) {
	inj := injected{
		gas:    m.nGlobalOrig,
		depth:  m.nGlobalOrig + 1,
		memcap: m.nGlobalOrig + 2,
		charge: m.nFuncOrig,
		grow:   m.nFuncOrig + 1,
	}
	chargeType := m.typeIndex([]byte{I64}, nil)
	growType := m.typeIndex([]byte{I32}, []byte{I32})

	// Rewrite the bodies first: they may add block types.
	bodies := make([][]byte, 0, len(m.bodies)+2)
	for i, body := range m.bodies {
		b, err := m.rewrite(body, m.types[m.funcTypes[i]], inj)
		if err != nil {
			return nil, fmt.Errorf("malformed module: function %d: %w", m.nImportFn+uint32(i), err)
		}
		bodies = append(bodies, b)
	}
	bodies = append(bodies, chargeBody(inj))
	funcTypes := append(slices.Clone(m.funcTypes), chargeType)
	if m.hasMemory {
		bodies = append(bodies, growBody(inj))
		funcTypes = append(funcTypes, growType)
	}

	out := []byte("\x00asm\x01\x00\x00\x00")
	var p []byte
	p = appendU32(nil, uint32(len(m.types)))
	for _, t := range m.types {
		p = append(p, 0x60)
		p = appendU32(p, uint32(len(t.params)))
		p = append(p, t.params...)
		p = appendU32(p, uint32(len(t.results)))
		p = append(p, t.results...)
	}
	out = section(out, 1, p)
	if m.importRaw != nil {
		out = section(out, 2, m.importRaw)
	}
	p = appendU32(nil, uint32(len(funcTypes)))
	for _, t := range funcTypes {
		p = appendU32(p, t)
	}
	out = section(out, 3, p)
	if m.tableRaw != nil {
		out = section(out, 4, m.tableRaw)
	}
	if m.memoryRaw != nil {
		out = section(out, 5, m.memoryRaw)
	}
	globals := append(slices.Clone(m.globals),
		global{typ: I64, mut: true, init: []byte{0x42, 0x00, 0x0b}},
		global{typ: I32, mut: true, init: []byte{0x41, 0x00, 0x0b}},
		global{typ: I32, mut: true, init: []byte{0x41, 0x00, 0x0b}},
	)
	p = appendU32(nil, uint32(len(globals)))
	for _, g := range globals {
		p = append(p, g.typ)
		if g.mut {
			p = append(p, 1)
		} else {
			p = append(p, 0)
		}
		p = append(p, g.init...)
	}
	out = section(out, 6, p)

	exports := slices.Clone(m.exports)
	for i, g := range globals {
		if !g.mut {
			continue
		}
		name := globalPrefix + strconv.Itoa(i)
		switch uint32(i) {
		case inj.gas:
			name = GasExport
		case inj.depth:
			name = DepthExport
		case inj.memcap:
			name = MemCapExport
		}
		if g.typ != I32 && g.typ != I64 && g.typ != F32 && g.typ != F64 {
			return nil, fmt.Errorf("global %d: a mutable reference global is not supported", i)
		}
		exports = append(exports, export{name: name, kind: 3, idx: uint32(i)})
		m.info.Globals = append(m.info.Globals, Global{Index: uint32(i), Type: g.typ, Export: name})
	}
	if m.hasMemory {
		exports = append(exports, export{name: MemoryExport, kind: 2, idx: 0})
		m.info.HasMemory, m.info.MinPages = true, m.minPages
	}
	if m.start != nil {
		exports = append(exports, export{name: StartExport, kind: 0, idx: *m.start})
		m.info.HasStart = true
	}
	for _, e := range m.exports {
		if e.kind == 0 {
			m.info.Funcs = append(m.info.Funcs, e.name)
		}
	}
	p = appendU32(nil, uint32(len(exports)))
	for _, e := range exports {
		p = appendName(p, e.name)
		p = append(p, e.kind)
		p = appendU32(p, e.idx)
	}
	out = section(out, 7, p)
	// No start section: instantiation runs no code.
	if m.elemRaw != nil {
		out = section(out, 9, m.elemRaw)
	}
	if m.hasDataCnt {
		out = section(out, 12, m.dataCount)
	}
	p = appendU32(nil, uint32(len(bodies)))
	for _, b := range bodies {
		p = appendU32(p, uint32(len(b)))
		p = append(p, b...)
	}
	out = section(out, 10, p)
	if m.dataRaw != nil {
		out = section(out, 11, m.dataRaw)
	}
	return out, nil
}

// appendCharge appends the charge of a constant cost, with the balance
// check when check is set.
func appendCharge(b []byte, gas uint32, cost int64, check bool) []byte {
	b = append(b, 0x23)
	b = appendU32(b, gas)
	b = append(b, 0x42)
	b = appendS64(b, cost)
	b = append(b, 0x7d, 0x24) // i64.sub, global.set
	b = appendU32(b, gas)
	if !check {
		return b
	}
	return appendGasCheck(b, gas)
}

// appendGasCheck traps when the gas global is negative.
func appendGasCheck(b []byte, gas uint32) []byte {
	b = append(b, 0x23)
	b = appendU32(b, gas)
	return append(b, 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b) // i64.const 0, i64.lt_s, if, unreachable, end
}

// chargeBody is func (cost i64): subtract cost, trap when below zero.
func chargeBody(inj injected) []byte {
	b := []byte{0x00} // no locals
	b = append(b, 0x23)
	b = appendU32(b, inj.gas)
	b = append(b, 0x20, 0x00, 0x7d, 0x24) // local.get 0, i64.sub, global.set
	b = appendU32(b, inj.gas)
	b = appendGasCheck(b, inj.gas)
	return append(b, 0x0b)
}

// growBody is func (pages i32) i32: memory.grow, refused (-1) past the cap
// and charged per page granted.
func growBody(inj injected) []byte {
	b := []byte{0x00}
	// memory.size + pages > memcap (in i64, so it cannot wrap) → -1
	b = append(b, 0x3f, 0x00, 0xad, 0x20, 0x00, 0xad, 0x7c, 0x23)
	b = appendU32(b, inj.memcap)
	b = append(b, 0xad, 0x56, 0x04, 0x40, 0x41, 0x7f, 0x0f, 0x0b)
	// charge pages × GrowPageCost
	b = append(b, 0x20, 0x00, 0xad, 0x42)
	b = appendS64(b, GrowPageCost)
	b = append(b, 0x7e, 0x10)
	b = appendU32(b, inj.charge)
	b = append(b, 0x20, 0x00, 0x40, 0x00, 0x0b)
	return b
}

// Canonical NaNs, little-endian.
var (
	nan32 = [4]byte{0x00, 0x00, 0xc0, 0x7f}
	nan64 = [8]byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}
)

// observesFloat reports whether an instruction makes the bits of the float
// on top of the stack observable, and its type: a store, a reinterpret, a
// global.set (globals are state), copysign's sign operand. Whether a value
// is a NaN is the same on every CPU; only a NaN's sign and payload are
// not, and they matter only where the bits are seen.
func (m *module) observesFloat(in instr) (byte, bool) {
	switch in.op {
	case 0x38, 0xbc, 0x98: // f32.store, i32.reinterpret_f32, f32.copysign
		return F32, true
	case 0x39, 0xbd, 0xa6: // f64.store, i64.reinterpret_f64, f64.copysign
		return F64, true
	case 0x24: // global.set
		if t := m.globals[in.idx].typ; t == F32 || t == F64 {
			return t, true
		}
	}
	return 0, false
}
