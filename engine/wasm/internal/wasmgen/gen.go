// Package wasmgen writes random valid WebAssembly modules for the tests of
// the metering pass and the job runtime.
package wasmgen

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// Value types.
const (
	I32 byte = 0x7f
	I64 byte = 0x7e
	F32 byte = 0x7d
	F64 byte = 0x7c
)

func appendU32(b []byte, v uint32) []byte {
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

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func section(out []byte, id byte, payload []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(payload)))
	return append(out, payload...)
}

// gen writes random valid modules for the fuzz tests: every function has
// type (i32, i64) -> R for a random R (none, one value, or i64 i32), calls
// only functions after it (no recursion), loops only under a counter, and
// makes float bits observable (stores, reinterprets, globals, results) only
// through x == x ? x : 0, since a NaN's payload is the one thing metering is
// allowed to change.
type gen struct {
	r      *rand.Rand
	nfunc  int
	cur    int
	res    [][]byte // result types per function
	labels []label
	loops  int // loop nesting (each level has its own counter local)
	size   int // instructions emitted in the current function
	b      []byte
}

type label struct {
	arity int
	loop  bool
}

var valTypes = []byte{I32, I64, F32, F64}

// local indices of each type (params 0: i32, 1: i64).
var localsOf = map[byte][]uint32{I32: {0, 2, 3}, I64: {1, 4, 5}, F32: {6, 7}, F64: {8, 9}}

const (
	counterBase = 10 // i32 loop counters 10..13
	tmpF32      = 14
	tmpF64      = 15
	// NGlobals are the generated globals: g0 i32, g1 i64, g2 f32, g3 f64
	// (mutable), g4 i32 (immutable).
	NGlobals = 5
)

var globalTypes = []byte{I32, I64, F32, F64, I32}

func (g *gen) op(b ...byte)          { g.b = append(g.b, b...); g.size++ }
func (g *gen) u32(v uint32)          { g.b = appendU32(g.b, v) }
func (g *gen) s64(v int64)           { g.b = appendS64(g.b, v) }
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) constOf(t byte) {
	switch t {
	case I32:
		g.op(0x41)
		g.s64(int64(int32(g.pickInt())))
	case I64:
		g.op(0x42)
		g.s64(g.pickInt())
	case F32:
		g.op(0x43)
		g.b = binary.LittleEndian.AppendUint32(g.b, math.Float32bits(float32(g.pickFloat())))
	case F64:
		g.op(0x44)
		g.b = binary.LittleEndian.AppendUint64(g.b, math.Float64bits(g.pickFloat()))
	}
}

func (g *gen) pickInt() int64 {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1:
		return int64(g.r.IntN(16))
	case 2:
		return -1
	case 3:
		return math.MinInt64 >> uint(g.r.IntN(64))
	default:
		return int64(g.r.Uint64())
	}
}

func (g *gen) pickFloat() float64 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return math.Inf(1)
	case 2:
		return math.Inf(-1)
	case 3:
		return -0.5
	case 4:
		return math.Float64frombits(0xfff0000000000001) // a signalling NaN with a payload
	default:
		return (g.r.Float64() - 0.5) * math.Pow(10, float64(g.r.IntN(20)-10))
	}
}

// canonObs makes the float on top of the stack observable: NaN becomes 0.
func (g *gen) canonObs(t byte) {
	if t != F32 && t != F64 {
		return
	}
	tmp, eq := uint32(tmpF32), byte(0x5b)
	if t == F64 {
		tmp, eq = tmpF64, 0x61
	}
	g.op(0x22)
	g.u32(tmp)
	if t == F32 {
		g.op(0x43, 0, 0, 0, 0)
	} else {
		g.op(0x44, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	g.op(0x20)
	g.u32(tmp)
	g.op(0x20)
	g.u32(tmp)
	g.op(eq, 0x1b)
}

// addr pushes an in-bounds address for an access of up to 8 bytes at
// offsets up to 7 (or, rarely, any address: a trap).
func (g *gen) addr(d int) {
	g.expr(I32, d-1)
	if g.chance(0.03) {
		return
	}
	g.op(0x41)
	g.s64(0xfff0)
	g.op(0x71)
}

var (
	binops = map[byte][]byte{
		I32: {0x6a, 0x6b, 0x6c, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78},
		I64: {0x7c, 0x7d, 0x7e, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a},
		F32: {0x92, 0x93, 0x94, 0x95, 0x96, 0x97},
		F64: {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5},
	}
	trapBinops = map[byte][]byte{I32: {0x6d, 0x6e, 0x6f, 0x70}, I64: {0x7f, 0x80, 0x81, 0x82}}
	unops      = map[byte][]byte{
		I32: {0x67, 0x68, 0x69, 0xc0, 0xc1},
		I64: {0x79, 0x7a, 0x7b, 0xc2, 0xc3, 0xc4},
		F32: {0x8d, 0x8e, 0x8f, 0x90, 0x91},
		F64: {0x9b, 0x9c, 0x9d, 0x9e, 0x9f},
	}
	cmps = map[byte][]byte{
		I32: {0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f},
		I64: {0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a},
		F32: {0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60},
		F64: {0x61, 0x62, 0x63, 0x64, 0x65, 0x66},
	}
	// conversions: to type → list of (from type, opcode, 0xFC sub or -1)
	convs = map[byte][]struct {
		from byte
		op   byte
		sub  int
	}{
		I32: {{I64, 0xa7, -1}, {F32, 0xfc, 0}, {F64, 0xfc, 3}, {F32, 0xa8, -1}, {F64, 0xab, -1}, {F32, 0xbc, -1}},
		I64: {{I32, 0xac, -1}, {I32, 0xad, -1}, {F64, 0xfc, 6}, {F32, 0xfc, 5}, {F64, 0xb0, -1}, {F64, 0xbd, -1}},
		F32: {{I32, 0xb2, -1}, {I64, 0xb5, -1}, {F64, 0xb6, -1}, {I32, 0xbe, -1}},
		F64: {{I32, 0xb7, -1}, {I64, 0xba, -1}, {F32, 0xbb, -1}, {I64, 0xbf, -1}},
	}
	loads  = map[byte][]byte{I32: {0x28, 0x2c, 0x2d, 0x2e, 0x2f}, I64: {0x29, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35}, F32: {0x2a}, F64: {0x2b}}
	stores = map[byte][]byte{I32: {0x36, 0x3a, 0x3b}, I64: {0x37, 0x3c, 0x3d, 0x3e}, F32: {0x38}, F64: {0x39}}
)

func (g *gen) pick(b []byte) byte { return b[g.r.IntN(len(b))] }

// expr emits code that pushes one value of type t.
func (g *gen) expr(t byte, d int) {
	if d <= 0 || g.size > 400 || g.chance(0.2) {
		switch g.r.IntN(3) {
		case 0:
			g.constOf(t)
		case 1:
			ls := localsOf[t]
			g.op(0x20)
			g.u32(ls[g.r.IntN(len(ls))])
		default:
			for i, gt := range globalTypes {
				if gt == t {
					g.op(0x23)
					g.u32(uint32(i))
					return
				}
			}
		}
		return
	}
	switch g.r.IntN(14) {
	case 0, 1, 2:
		g.expr(t, d-1)
		g.expr(t, d-1)
		if tb := trapBinops[t]; tb != nil && g.chance(0.1) {
			g.op(g.pick(tb))
		} else {
			g.op(g.pick(binops[t]))
		}
	case 3:
		g.expr(t, d-1)
		g.op(g.pick(unops[t]))
	case 4:
		if t != I32 {
			g.expr(t, d-1)
			return
		}
		ct := g.pick(valTypes)
		g.expr(ct, d-1)
		g.expr(ct, d-1)
		g.op(g.pick(cmps[ct]))
	case 5:
		c := convs[t][g.r.IntN(len(convs[t]))]
		g.expr(c.from, d-1)
		if c.op == 0xbc || c.op == 0xbd { // reinterpret a float: observe it canonically
			g.canonObs(c.from)
		}
		if c.sub >= 0 {
			g.op(0xfc)
			g.u32(uint32(c.sub))
		} else {
			g.op(c.op)
		}
	case 6:
		g.addr(d)
		g.op(g.pick(loads[t]))
		g.u32(0)
		g.u32(uint32(g.r.IntN(8)))
	case 7: // if (result t)
		g.expr(I32, d-1)
		g.op(0x04, t)
		g.labels = append(g.labels, label{arity: 1})
		g.expr(t, d-1)
		g.op(0x05)
		g.expr(t, d-1)
		g.op(0x0b)
		g.labels = g.labels[:len(g.labels)-1]
	case 8: // block (result t) with a br_if carrying the value out
		g.op(0x02, t)
		g.labels = append(g.labels, label{arity: 1})
		g.stmt(d - 1)
		g.expr(t, d-1)
		g.expr(I32, d-1)
		g.op(0x0d, 0x00)
		g.labels = g.labels[:len(g.labels)-1]
		g.op(0x0b)
	case 9: // call a later function with a single result of type t
		for j := g.cur + 1; j < g.nfunc; j++ {
			if len(g.res[j]) == 1 && g.res[j][0] == t {
				g.expr(I32, d-1)
				g.expr(I64, d-1)
				g.op(0x10)
				g.u32(uint32(j))
				return
			}
		}
		g.constOf(t)
	case 10:
		g.expr(t, d-1)
		g.expr(t, d-1)
		g.expr(I32, d-1)
		g.op(0x1b)
	case 11:
		ls := localsOf[t]
		g.expr(t, d-1)
		g.op(0x22)
		g.u32(ls[g.r.IntN(len(ls))])
	case 12:
		if t != I32 {
			g.constOf(t)
			return
		}
		if g.chance(0.5) {
			g.op(0x3f, 0x00)
		} else {
			g.op(0x41)
			g.s64(int64(g.r.IntN(3)))
			g.op(0x40, 0x00)
		}
	default:
		g.constOf(t)
	}
}

// stmt emits code with no net stack effect.
func (g *gen) stmt(d int) {
	if d <= 0 || g.size > 400 {
		g.op(0x01)
		return
	}
	switch g.r.IntN(12) {
	case 0, 1:
		t := g.pick(valTypes)
		ls := localsOf[t]
		g.expr(t, d-1)
		g.op(0x21)
		g.u32(ls[g.r.IntN(len(ls))])
	case 2:
		i := g.r.IntN(4) // mutable globals
		g.expr(globalTypes[i], d-1)
		g.canonObs(globalTypes[i])
		g.op(0x24)
		g.u32(uint32(i))
	case 3:
		t := g.pick(valTypes)
		g.addr(d)
		g.expr(t, d-1)
		g.canonObs(t)
		g.op(g.pick(stores[t]))
		g.u32(0)
		g.u32(uint32(g.r.IntN(8)))
	case 4: // a counted loop
		if g.loops >= 3 {
			g.op(0x01)
			return
		}
		c := uint32(counterBase + g.loops)
		g.op(0x41)
		g.s64(int64(1 + g.r.IntN(4)))
		g.op(0x21)
		g.u32(c)
		g.op(0x03, 0x40)
		g.labels = append(g.labels, label{loop: true})
		g.loops++
		g.stmt(d - 1)
		g.stmt(d - 1)
		g.loops--
		g.op(0x20)
		g.u32(c)
		g.op(0x41, 0x01, 0x6b, 0x22)
		g.u32(c)
		g.op(0x0d, 0x00)
		g.labels = g.labels[:len(g.labels)-1]
		g.op(0x0b)
	case 5:
		g.expr(I32, d-1)
		g.op(0x04, 0x40)
		g.labels = append(g.labels, label{})
		g.stmt(d - 1)
		if g.chance(0.5) {
			g.op(0x05)
			g.stmt(d - 1)
		}
		g.labels = g.labels[:len(g.labels)-1]
		g.op(0x0b)
	case 6: // nested blocks left by br_if or br_table
		g.op(0x02, 0x40)
		g.labels = append(g.labels, label{})
		g.op(0x02, 0x40)
		g.labels = append(g.labels, label{})
		g.stmt(d - 1)
		g.expr(I32, d-1)
		if g.chance(0.5) {
			g.op(0x0d)
			g.u32(uint32(g.r.IntN(2)))
		} else {
			g.op(0x0e, 0x02, 0x00, 0x01, 0x01)
		}
		g.stmt(d - 1)
		g.labels = g.labels[:len(g.labels)-1]
		g.op(0x0b)
		g.stmt(d - 1)
		g.labels = g.labels[:len(g.labels)-1]
		g.op(0x0b)
	case 7: // return from inside a block
		g.expr(I32, d-1)
		g.op(0x04, 0x40)
		g.labels = append(g.labels, label{})
		g.results(d - 1)
		g.op(0x0f)
		g.labels = g.labels[:len(g.labels)-1]
		g.op(0x0b)
	case 8: // memory.fill / memory.copy within the first page
		g.expr(I32, d-1)
		g.op(0x41)
		g.s64(0x7fff)
		g.op(0x71)
		fill := g.chance(0.5)
		if fill {
			g.expr(I32, d-1) // the byte value
		} else {
			g.op(0x41) // the source address
			g.s64(int64(g.r.IntN(0x7fff)))
		}
		g.op(0x41)
		g.s64(int64(g.r.IntN(0x8000)))
		if fill {
			g.op(0xfc, 11, 0x00)
		} else {
			g.op(0xfc, 10, 0x00, 0x00)
		}
	case 9: // call any later function and drop its results
		if g.cur+1 < g.nfunc {
			j := g.cur + 1 + g.r.IntN(g.nfunc-g.cur-1)
			g.expr(I32, d-1)
			g.expr(I64, d-1)
			g.op(0x10)
			g.u32(uint32(j))
			for range g.res[j] {
				g.op(0x1a)
			}
		}
	default:
		g.stmt(d - 1)
		g.stmt(d - 1)
	}
}

// results pushes the current function's results, floats observable.
func (g *gen) results(d int) {
	for _, t := range g.res[g.cur] {
		g.expr(t, d)
		g.canonObs(t)
	}
}

// Module returns a random valid module: its functions, one memory of
// 1..4 pages, five globals, all exported; "f0" is the entry, of type
// (i32, i64) -> i64. With abi, it is also a job: a counter global (index
// 5) set to 1..4, "init" () storing a word to memory, and "step" () -> i32
// calling f0(7, 11), storing its result, and returning 1 until the
// counter runs out.
func Module(seed uint64, abi bool) []byte {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	g.nfunc = 1 + g.r.IntN(5)
	resultSets := [][]byte{nil, {I32}, {I64}, {F32}, {F64}, {I64, I32}}
	g.res = make([][]byte, g.nfunc)
	for i := range g.res {
		g.res[i] = resultSets[g.r.IntN(len(resultSets))]
	}
	g.res[0] = []byte{I64}
	nf := g.nfunc
	extra := 0
	if abi {
		extra = 2
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	// types: one per function, then () -> () and () -> i32
	p := appendU32(nil, uint32(nf+extra))
	for _, r := range g.res {
		p = append(p, 0x60, 2, I32, I64)
		p = appendU32(p, uint32(len(r)))
		p = append(p, r...)
	}
	if abi {
		p = append(p, 0x60, 0, 0, 0x60, 0, 1, I32)
	}
	out = section(out, 1, p)
	p = appendU32(nil, uint32(nf+extra))
	for i := 0; i < nf+extra; i++ {
		p = appendU32(p, uint32(i))
	}
	out = section(out, 3, p)
	out = section(out, 5, []byte{1, 1, 1, 4})
	ng := NGlobals
	if abi {
		ng++
	}
	p = []byte{byte(ng)}
	for i, t := range globalTypes {
		mut := byte(1)
		if i == 4 {
			mut = 0
		}
		p = append(p, t, mut)
		g.b = nil
		g.constOf(t)
		if t == F32 || t == F64 {
			g.b = g.b[:1]
			g.b = append(g.b, make([]byte, map[byte]int{F32: 4, F64: 8}[t])...)
		}
		p = append(p, g.b...)
		p = append(p, 0x0b)
	}
	if abi {
		p = append(p, I32, 1, 0x41, byte(1+seed%4), 0x0b)
	}
	out = section(out, 6, p)
	p = appendU32(nil, uint32(nf+NGlobals+1+extra))
	for i := 0; i < nf; i++ {
		p = appendName(p, "f"+string(rune('0'+i)))
		p = append(p, 0)
		p = appendU32(p, uint32(i))
	}
	for i := 0; i < NGlobals; i++ {
		p = appendName(p, "g"+string(rune('0'+i)))
		p = append(p, 3, byte(i))
	}
	p = appendName(p, "mem")
	p = append(p, 2, 0)
	if abi {
		p = appendName(p, "init")
		p = append(p, 0, byte(nf))
		p = appendName(p, "step")
		p = append(p, 0, byte(nf+1))
	}
	out = section(out, 7, p)
	p = appendU32(nil, uint32(nf+extra))
	for i := 0; i < nf; i++ {
		g.cur, g.size, g.loops = i, 0, 0
		g.labels = []label{{arity: len(g.res[i])}}
		g.b = []byte{7, 2, I32, 2, I64, 2, F32, 2, F64, 4, I32, 1, F32, 1, F64}
		g.stmt(4)
		g.stmt(3)
		g.results(4)
		g.op(0x0b)
		p = appendU32(p, uint32(len(g.b)))
		p = append(p, g.b...)
	}
	if abi {
		// init: mem[64] = seed
		b := []byte{0, 0x41, 0xc0, 0x00, 0x42}
		b = appendS64(b, int64(seed))
		b = append(b, 0x37, 0x03, 0x00, 0x0b)
		p = appendU32(p, uint32(len(b)))
		p = append(p, b...)
		// step: counter--; mem[72 + 8*counter] = f0(7, 11); counter != 0
		b = []byte{0, 0x23, 5, 0x41, 1, 0x6b, 0x24, 5, // counter--
			0x23, 5, 0x41, 3, 0x74, 0x41, 0xc8, 0x00, 0x6a, // 72 + counter<<3
			0x41, 7, 0x42, 11, 0x10, 0, // f0(7, 11)
			0x37, 0x03, 0x00, // i64.store
			0x23, 5, 0x41, 0, 0x47, 0x0b} // counter != 0
		p = appendU32(p, uint32(len(b)))
		p = append(p, b...)
	}
	out = section(out, 10, p)
	return out
}
