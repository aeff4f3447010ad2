package meter

import (
	"fmt"
)

// instr is one decoded instruction: its opcode (and 0xFC sub-opcode), its
// extent in the body, and the index immediate the pass checks.
type instr struct {
	op         byte
	sub        uint32
	start, end int
	idx        uint32
}

// rejected names the instructions the pass refuses, by opcode.
var rejected = map[byte]string{
	0x06: "try (exception handling)", 0x07: "catch (exception handling)", 0x08: "throw (exception handling)",
	0x09: "rethrow (exception handling)", 0x0a: "throw_ref (exception handling)", 0x18: "delegate (exception handling)",
	0x19: "catch_all (exception handling)", 0x1f: "try_table (exception handling)",
	0x12: "return_call (tail calls)", 0x13: "return_call_indirect (tail calls)",
	0x14: "call_ref (typed function references)", 0x15: "return_call_ref (typed function references)",
	0x26: "table.set (tables are not part of a job's state)",
	0xfd: "the 0xFD prefix (SIMD is not supported in v1)",
	0xfe: "the 0xFE prefix (threads and atomics are not supported)",
}

var rejectedFC = map[uint32]string{
	8: "memory.init", 9: "data.drop", 12: "table.init", 13: "elem.drop", 14: "table.copy", 15: "table.grow", 17: "table.fill",
}

// decode reads one instruction.
func (m *module) decode(r *reader, nLocals uint64) (instr, error) {
	in := instr{start: r.pos}
	op, err := r.byte()
	if err != nil {
		return in, err
	}
	in.op = op
	if why, ok := rejected[op]; ok {
		return in, fmt.Errorf("instruction %s is not allowed", why)
	}
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1:
	case op >= 0x45 && op <= 0xc4:
	case op >= 0x02 && op <= 0x04:
		err = m.blockType(r)
	case op == 0x0c, op == 0x0d:
		_, err = r.u32()
	case op == 0x0e:
		var n uint32
		if n, err = r.u32(); err == nil {
			if int(n) > len(r.b)-r.pos {
				return in, fmt.Errorf("br_table of %d labels past the body's end", n)
			}
			for i := uint32(0); i <= n && err == nil; i++ {
				_, err = r.u32()
			}
		}
	case op == 0x10, op == 0xd2:
		if in.idx, err = r.u32(); err == nil && in.idx >= m.nFuncOrig {
			err = fmt.Errorf("function index %d out of range", in.idx)
		}
	case op == 0x11:
		if in.idx, err = r.u32(); err == nil && in.idx >= m.nTypesOrig {
			err = fmt.Errorf("type index %d out of range", in.idx)
		}
		if err == nil {
			_, err = r.u32()
		}
	case op == 0x1c:
		var n uint32
		if n, err = r.u32(); err == nil {
			if n != 1 {
				return in, fmt.Errorf("typed select with %d types", n)
			}
			_, err = r.valType()
		}
	case op >= 0x20 && op <= 0x22:
		if in.idx, err = r.u32(); err == nil && uint64(in.idx) >= nLocals {
			err = fmt.Errorf("local index %d out of range", in.idx)
		}
	case op == 0x23, op == 0x24:
		if in.idx, err = r.u32(); err == nil && in.idx >= m.nGlobalOrig {
			err = fmt.Errorf("global index %d out of range", in.idx)
		}
	case op == 0x25:
		_, err = r.u32()
	case op >= 0x28 && op <= 0x3e:
		var align uint32
		if align, err = r.u32(); err == nil {
			if align >= 0x40 {
				return in, fmt.Errorf("memory access alignment %d (multiple memories are not supported)", align)
			}
			_, err = r.u32()
		}
	case op == 0x3f, op == 0x40:
		err = zeroByte(r)
	case op == 0x41:
		_, err = r.sleb(32)
	case op == 0x42:
		_, err = r.sleb(64)
	case op == 0x43:
		_, err = r.bytes(4)
	case op == 0x44:
		_, err = r.bytes(8)
	case op == 0xd0:
		var t byte
		if t, err = r.byte(); err == nil && t != 0x70 && t != 0x6f {
			err = fmt.Errorf("ref.null of type 0x%02x", t)
		}
	case op == 0xfc:
		if in.sub, err = r.u32(); err != nil {
			break
		}
		if name, ok := rejectedFC[in.sub]; ok {
			return in, fmt.Errorf("instruction %s is not allowed (its effect is not part of a job's state)", name)
		}
		switch in.sub {
		case 0, 1, 2, 3, 4, 5, 6, 7:
		case 10:
			if err = zeroByte(r); err == nil {
				err = zeroByte(r)
			}
		case 11:
			err = zeroByte(r)
		case 16:
			_, err = r.u32()
		default:
			return in, fmt.Errorf("unknown instruction 0xfc %d", in.sub)
		}
	default:
		return in, fmt.Errorf("unknown opcode 0x%02x", op)
	}
	in.end = r.pos
	return in, err
}

func zeroByte(r *reader) error {
	b, err := r.byte()
	if err == nil && b != 0 {
		err = fmt.Errorf("memory index %d (only memory 0 exists)", b)
	}
	return err
}

func (m *module) blockType(r *reader) error {
	if r.pos >= len(r.b) {
		return errEOF
	}
	b := r.b[r.pos]
	if b == 0x40 || valType(b) {
		r.pos++
		return nil
	}
	if b == 0x7b {
		return fmt.Errorf("v128 (SIMD) is not supported")
	}
	t, err := r.sleb(33)
	if err != nil {
		return err
	}
	if t < 0 || t >= int64(m.nTypesOrig) {
		return fmt.Errorf("block type %d out of range", t)
	}
	return nil
}

// weight is an instruction's static gas.
func (m *module) weight(in instr) int64 {
	switch in.op {
	case 0x0b, 0x05:
		return 0
	case 0x10:
		if in.idx < m.nImportFn {
			return ImportCallCost
		}
	}
	return 1
}

// rewrite meters one function body (see the package comment).
func (m *module) rewrite(body []byte, ft funcType, inj injected) ([]byte, error) {
	r := &reader{b: body}
	nDecl, err := r.u32()
	if err != nil {
		return nil, err
	}
	declStart := r.pos
	nLocals := uint64(len(ft.params))
	for i := uint32(0); i < nDecl; i++ {
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		if _, err := r.valType(); err != nil {
			return nil, err
		}
		nLocals += uint64(c)
		if nLocals > maxLocals {
			return nil, fmt.Errorf("more than %d locals", maxLocals)
		}
	}
	declEnd := r.pos
	var insts []instr
	depth := 1
	for depth > 0 {
		if r.eof() {
			return nil, fmt.Errorf("body ends inside %d open blocks", depth)
		}
		in, err := m.decode(r, nLocals)
		if err != nil {
			return nil, fmt.Errorf("offset %d: %w", in.start, err)
		}
		switch in.op {
		case 0x02, 0x03, 0x04:
			depth++
		case 0x0b:
			depth--
		}
		insts = append(insts, in)
	}
	if !r.eof() {
		return nil, fmt.Errorf("%d bytes after the body's end", len(r.b)-r.pos)
	}

	// Segment costs. A segment is charged once, at its first instruction,
	// for all it holds. Code that can be entered other than by falling in
	// from above starts a segment: the body's first instruction, a loop's
	// body (the target of its back edges), the arms of an if, and the
	// code after a block's or if's end (the target of branches out). A
	// block's body continues the segment it is in, and the code after a
	// loop continues the segment that entered the loop: both only run
	// when that segment ran. A branch out of a segment leaves it charged
	// in full, so a run may pay for a few instructions it skipped; the
	// charge is still a function of the path taken.
	cost := make([]int64, len(insts))
	seg := 0
	type open struct {
		loop  bool
		outer int // the segment the construct was entered from
	}
	stack := []open{}
	for i, in := range insts {
		cost[seg] += m.weight(in)
		switch in.op {
		case 0x02:
			stack = append(stack, open{outer: seg})
		case 0x03:
			stack = append(stack, open{loop: true, outer: seg})
			seg = i + 1
		case 0x04:
			stack = append(stack, open{outer: seg})
			seg = i + 1
		case 0x05:
			seg = i + 1
		case 0x0b:
			if len(stack) == 0 { // the function's end
				break
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if top.loop {
				seg = top.outer
			} else {
				seg = i + 1
			}
		}
	}

	s32 := uint32(nLocals)
	gasL := s32 + 3 // the function's copy of the gas global
	out := appendU32(make([]byte, 0, len(body)*2+64), nDecl+4)
	out = append(out, body[declStart:declEnd]...)
	out = append(out, 1, I32, 1, F32, 1, F64, 1, I64)
	// The gas lives in a local while the function runs (a register, where
	// the global is a memory access): loaded at entry and after each call,
	// stored before each call and on the way out, and before the trap of
	// an empty balance. After any other trap the global holds the balance
	// at the last store — a fixed point of the code, so still a function
	// of the path.
	sync := func(b []byte) []byte { // local → global
		b = append(b, 0x20)
		b = appendU32(b, gasL)
		b = append(b, 0x24)
		return appendU32(b, inj.gas)
	}
	reload := func(b []byte) []byte { // global → local
		b = append(b, 0x23)
		b = appendU32(b, inj.gas)
		b = append(b, 0x21)
		return appendU32(b, gasL)
	}
	out = reload(out)
	// A leaf (a function that calls nothing) cannot deepen the stack past
	// itself: it skips the depth count, so the real depth is at most one
	// frame over MaxCallDepth (plus the pass's own helpers).
	leaf := true
	for _, in := range insts {
		if in.op == 0x10 || in.op == 0x11 {
			leaf = false
			break
		}
	}
	if !leaf {
		// Prologue: depth++, trap past the limit.
		out = append(out, 0x23)
		out = appendU32(out, inj.depth)
		out = append(out, 0x41, 0x01, 0x6a, 0x24)
		out = appendU32(out, inj.depth)
		out = append(out, 0x23)
		out = appendU32(out, inj.depth)
		out = append(out, 0x41)
		out = appendS64(out, MaxCallDepth)
		out = append(out, 0x4b, 0x04, 0x40, 0x00, 0x0b)
	}
	// The body, in a block of the function's result type, so every way
	// out passes the epilogue.
	out = append(out, 0x02)
	out = append(out, m.blockTypeFor(ft.results)...)
	label := uint32(0)
	last := len(insts) - 1
	for i, in := range insts {
		if cost[i] > 0 {
			// Only a function's entry and a loop's body check the
			// balance: every unbounded path passes one of them, and
			// the rest merely subtract.
			out = append(out, 0x20)
			out = appendU32(out, gasL)
			out = append(out, 0x42)
			out = appendS64(out, cost[i])
			out = append(out, 0x7d) // i64.sub
			if i == 0 || insts[i-1].op == 0x03 {
				out = append(out, 0x22) // local.tee
				out = appendU32(out, gasL)
				out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40) // i64.const 0, i64.lt_s, if
				out = sync(out)
				out = append(out, 0x00, 0x0b) // unreachable, end
			} else {
				out = append(out, 0x21) // local.set
				out = appendU32(out, gasL)
			}
		}
		raw := body[in.start:in.end]
		switch in.op {
		case 0x02, 0x03, 0x04:
			label++
			out = append(out, raw...)
		case 0x0b:
			out = append(out, 0x0b)
			if i == last {
				// Epilogue: store the gas, depth--, the function's end.
				out = sync(out)
				if !leaf {
					out = append(out, 0x23)
					out = appendU32(out, inj.depth)
					out = append(out, 0x41, 0x01, 0x6b, 0x24)
					out = appendU32(out, inj.depth)
				}
				out = append(out, 0x0b)
			} else {
				label--
			}
		case 0x0f: // return: branch to the wrapping block
			out = append(out, 0x0c)
			out = appendU32(out, label)
		case 0x10, 0x11: // calls see and update the global
			out = sync(out)
			out = append(out, raw...)
			out = reload(out)
		case 0x40: // memory.grow
			out = sync(out)
			out = append(out, 0x10)
			out = appendU32(out, inj.grow)
			out = reload(out)
		case 0xfc:
			if in.sub == 10 || in.sub == 11 {
				// n is on top: charge n / BulkBytesPerGas first.
				out = sync(out)
				out = append(out, 0x22)
				out = appendU32(out, s32)
				out = append(out, 0x20)
				out = appendU32(out, s32)
				out = append(out, 0xad, 0x42, 0x06, 0x88, 0x10) // i64.extend_i32_u, i64.const 6, i64.shr_u, call
				out = appendU32(out, inj.charge)
				out = reload(out)
			}
			out = append(out, raw...)
		default:
			if t, ok := m.observesFloat(in); ok {
				out = appendCanon(out, t, s32)
			}
			out = append(out, raw...)
		}
	}
	return out, nil
}

// appendCanon replaces a NaN on top of the stack by the canonical NaN:
// x == x ? x : NaN, through a scratch local of x's type.
func appendCanon(b []byte, t byte, s32 uint32) []byte {
	tmp, eq := s32+1, byte(0x5b) // f32 scratch, f32.eq
	if t == F64 {
		tmp, eq = s32+2, 0x61
	}
	b = append(b, 0x22)
	b = appendU32(b, tmp)
	if t == F64 {
		b = append(b, 0x44)
		b = append(b, nan64[:]...)
	} else {
		b = append(b, 0x43)
		b = append(b, nan32[:]...)
	}
	b = append(b, 0x20)
	b = appendU32(b, tmp)
	b = append(b, 0x20)
	b = appendU32(b, tmp)
	return append(b, eq, 0x1b)
}
