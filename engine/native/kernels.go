package native

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/agoranet/agora/engine/gguf"
)

// Determinism rules for every kernel in this package:
//   - each output element is one reduction whose order is fixed by the code
//     (by element index, in blocks), never by the thread or batch layout;
//   - products are rounded to float32 before they are added (the explicit
//     conversion forbids the compiler from fusing them into an FMA on
//     architectures where it would), so results do not depend on the CPU;
//   - exp is our own (expf below), not an assembly routine that differs by CPU.

// f16 to f32 conversion table (all 65,536 half-precision values).
var f16Table = func() []float32 {
	t := make([]float32, 1<<16)
	for i := range t {
		t[i] = f16ToF32(uint16(i))
	}
	return t
}()

func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToF16 rounds to nearest even half precision.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	if b&0x7fffffff > 0x7f800000 { // NaN
		return sign | 0x7e00
	}
	if exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 {
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++
	}
	return sign | uint16(r)
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Matrix is a weight matrix stored in a GGUF tensor: Rows rows of Cols
// elements (GGUF dims [Cols, Rows]). Its bytes are read in place.
type Matrix struct {
	Name     string
	Type     gguf.TensorType
	Rows     int
	Cols     int
	data     []byte
	rowBytes int
	f32      []float32 // data viewed in place as float32 (F32)
	u16      []uint16  // data viewed in place as uint16 (F16, BF16)
}

// supportedTypes are the weight types the kernels implement.
var supportedTypes = []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q4_0, gguf.Q4_1, gguf.Q5_0, gguf.Q5_1,
	gguf.Q8_0, gguf.Q2_K, gguf.Q3_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K}

func typeSupported(t gguf.TensorType) bool {
	for _, s := range supportedTypes {
		if s == t {
			return true
		}
	}
	return false
}

func newMatrix(name string, ti gguf.TensorInfo, data []byte) (*Matrix, error) {
	if len(ti.Dims) > 2 || len(ti.Dims) == 0 {
		return nil, fmt.Errorf("tensor %s: %d dimensions, want 1 or 2", name, len(ti.Dims))
	}
	if !typeSupported(ti.Type) {
		return nil, fmt.Errorf("tensor %s: weight type %s is not supported (supported: %v)", name, ti.Type, supportedTypes)
	}
	cols := int(ti.Dims[0])
	rows := 1
	if len(ti.Dims) == 2 {
		rows = int(ti.Dims[1])
	}
	elems, bytes, _ := ti.Type.BlockSize()
	if cols%elems != 0 {
		return nil, fmt.Errorf("tensor %s: row length %d is not a multiple of the %s block size %d", name, cols, ti.Type, elems)
	}
	m := &Matrix{Name: name, Type: ti.Type, Rows: rows, Cols: cols, data: data, rowBytes: cols / elems * bytes}
	if uint64(len(data)) != uint64(rows)*uint64(m.rowBytes) {
		return nil, fmt.Errorf("tensor %s: %d bytes, want %d for %d×%d %s", name, len(data), rows*m.rowBytes, rows, cols, ti.Type)
	}
	switch ti.Type {
	case gguf.F32:
		m.f32 = viewF32(data)
	case gguf.F16, gguf.BF16:
		m.u16 = viewU16(data)
	}
	return m, nil
}

func (m *Matrix) row(r int) []byte { return m.data[r*m.rowBytes : (r+1)*m.rowBytes] }

// Row dequantizes row r into dst (len Cols).
func (m *Matrix) Row(r int, dst []float32) {
	b := m.row(r)
	switch m.Type {
	case gguf.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case gguf.F16:
		for i := range dst {
			dst[i] = f16Table[binary.LittleEndian.Uint16(b[2*i:])]
		}
	case gguf.BF16:
		for i := range dst {
			dst[i] = bf16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case gguf.Q4_0, gguf.Q4_1, gguf.Q5_0, gguf.Q5_1, gguf.Q8_0:
		bs := m.rowBytes / (m.Cols / 32)
		var q [32]int8
		for blk := 0; blk < m.Cols/32; blk++ {
			d, mn := unpack32(m.Type, b[blk*bs:(blk+1)*bs], &q)
			for i := 0; i < 32; i++ {
				dst[blk*32+i] = float32(float32(q[i]) * d)
				if m.Type == gguf.Q4_1 || m.Type == gguf.Q5_1 {
					dst[blk*32+i] += mn
				}
			}
		}
	default:
		m.rowK(r, dst)
	}
}

// unpack32 expands one block of a 32-element type into its integer quants
// and returns its scale d and min m (value = q·d + m; m is 0 for the types
// without one).
func unpack32(t gguf.TensorType, b []byte, q *[32]int8) (d, m float32) {
	d = f16Table[binary.LittleEndian.Uint16(b)]
	switch t {
	case gguf.Q8_0:
		for i := range q {
			q[i] = int8(b[2+i])
		}
	case gguf.Q4_0:
		for i := 0; i < 16; i++ {
			q[i], q[16+i] = int8(b[2+i]&0xF)-8, int8(b[2+i]>>4)-8
		}
	case gguf.Q4_1:
		m = f16Table[binary.LittleEndian.Uint16(b[2:])]
		for i := 0; i < 16; i++ {
			q[i], q[16+i] = int8(b[4+i]&0xF), int8(b[4+i]>>4)
		}
	case gguf.Q5_0, gguf.Q5_1:
		off, bias := 2, int8(16)
		if t == gguf.Q5_1 {
			m = f16Table[binary.LittleEndian.Uint16(b[2:])]
			off, bias = 4, 0
		}
		qh := binary.LittleEndian.Uint32(b[off:])
		qs := b[off+4 : off+20]
		for i := 0; i < 16; i++ {
			q[i] = int8(qs[i]&0xF|uint8(qh>>i&1)<<4) - bias
			q[16+i] = int8(qs[i]>>4|uint8(qh>>(i+16)&1)<<4) - bias
		}
	}
	return d, m
}

// q8Row is an activation row quantized to Q8_0 (32-element blocks, one
// float32 scale each, rounded through f16 as llama.cpp does) and, for the
// types with mins, Q8_1's block sums s = d·Σq (also rounded through f16);
// i holds the exact Σq per block (for kernels that take weights as
// unsigned bytes with an offset).
type q8Row struct {
	q []int8
	d []float32
	s []float32
	i []int32
}

func quantizeQ8(x []float32, out *q8Row) {
	n := len(x) / 32
	if cap(out.q) < len(x) || cap(out.d) < n {
		out.q = make([]int8, len(x))
		out.d = make([]float32, n)
		out.s = make([]float32, n)
		out.i = make([]int32, n)
	}
	out.q, out.d, out.s, out.i = out.q[:len(x)], out.d[:n], out.s[:n], out.i[:n]
	for b := 0; b < n; b++ {
		blk := x[b*32 : b*32+32]
		// Branch-free (signs are random, so branches mispredict): the
		// absolute value's bits order like the value, NaN is skipped as
		// `v > amax` would skip it, and rounding takes the sign back after
		// rounding the magnitude: roundHalfAway's results, bit for bit.
		var abits uint32
		for _, v := range blk {
			ab := math.Float32bits(v) &^ (1 << 31)
			if ab > 0x7f800000 {
				ab = 0
			}
			abits = max(abits, ab)
		}
		amax := math.Float32frombits(abits)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var sum int32
		qs := out.q[b*32 : b*32+32]
		for i, v := range blk {
			q := roundHalfAwayI8(v * id)
			qs[i] = q
			sum += int32(q)
		}
		out.d[b] = f16Table[F32ToF16(d)]
		out.s[b] = f16Table[F32ToF16(float32(d*float32(sum)))]
		out.i[b] = sum
	}
}

// roundHalfAwayI8 is int8(roundHalfAway(x)) for |x| < 128 (quantizeQ8's
// range), without math.Floor or a branch on the sign: float64(|x|) + 0.5
// is exact in float64 and truncating a non-negative value is its floor;
// the sign is put back on the integer.
func roundHalfAwayI8(x float32) int8 {
	bits := math.Float32bits(x)
	r := int32(float64(math.Float32frombits(bits&^(1<<31))) + 0.5)
	neg := -int32(bits >> 31)
	return int8((r ^ neg) - neg)
}

func roundHalfAway(x float32) float32 {
	if x < 0 {
		return -float32(math.Floor(float64(-x) + 0.5))
	}
	return float32(math.Floor(float64(x) + 0.5))
}

// dotF32 is the fixed-order float32 dot product: eight interleaved partial
// sums (lane k takes the indices ≡ k mod 8, in order) combined pairwise,
// then the tail in order. The SIMD version keeps the eight lanes in one
// vector register and gives the same bits.
func dotF32(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var lanes [8]float32
	n8 := n &^ 7
	if n8 > 0 {
		lanesF32(a[:n8], b[:n8], &lanes)
	}
	s := combine8(&lanes)
	for i := n8; i < n; i++ {
		s += float32(a[i] * b[i])
	}
	return s
}

func combine8(l *[8]float32) float32 {
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// lanesF32Go accumulates a·b (len a multiple of 8) into eight lanes.
func lanesF32Go(a, b []float32, l *[8]float32) {
	s0, s1, s2, s3, s4, s5, s6, s7 := l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]
	for i := 0; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += float32(aa[0] * bb[0])
		s1 += float32(aa[1] * bb[1])
		s2 += float32(aa[2] * bb[2])
		s3 += float32(aa[3] * bb[3])
		s4 += float32(aa[4] * bb[4])
		s5 += float32(aa[5] * bb[5])
		s6 += float32(aa[6] * bb[6])
		s7 += float32(aa[7] * bb[7])
	}
	*l = [8]float32{s0, s1, s2, s3, s4, s5, s6, s7}
}

// widen converts a row of F16 or BF16 values to float32 (exact).
func widen(t gguf.TensorType, w []uint16, dst []float32) {
	if t == gguf.F16 {
		for i, h := range w {
			dst[i] = f16Table[h]
		}
		return
	}
	for i, h := range w {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// dot32Go is the portable kernel of the 32-element block types: row r
// against the activation rows xs, each block unpacked once for all of them.
// Per block: the exact integer sum, then s += sum·(d·dx) (+ m·sx for the
// types with a min), in block order.
func (m *Matrix) dot32Go(r int, xs []*q8Row, out []float32) {
	b := m.row(r)
	nb := m.Cols / 32
	bs := m.rowBytes / nb
	hasMin := m.Type == gguf.Q4_1 || m.Type == gguf.Q5_1
	var q [32]int8
	var s [4]float32
	for blk := 0; blk < nb; blk++ {
		d, mn := unpack32(m.Type, b[blk*bs:(blk+1)*bs], &q)
		for t, x := range xs {
			xx := x.q[blk*32 : blk*32+32]
			var sum int32
			for i := range q {
				sum += int32(q[i]) * int32(xx[i])
			}
			s[t] = combine32(s[t], hasMin, d, mn, x.d[blk], x.s[blk], sum)
		}
	}
	copy(out, s[:len(xs)])
}

// combine32 adds one 32-element block's contribution: the one float
// expression every implementation uses.
func combine32(s float32, hasMin bool, d, m, dx, sx float32, sum int32) float32 {
	a := float32(float32(sum) * float32(d*dx))
	if hasMin {
		a = float32(a + float32(m*sx))
	}
	return s + a
}

// actKind is the form of activations a weight type multiplies.
type actKind int

const (
	actFloat actKind = iota // F32, F16, BF16: float32 activations
	actQ8                   // 32-element blocks: Q8_0 (with Q8_1 sums)
	actQ8K                  // K-quants: Q8_K
)

func (m *Matrix) act() actKind {
	switch m.Type {
	case gguf.F32, gguf.F16, gguf.BF16:
		return actFloat
	case gguf.Q2_K, gguf.Q3_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K:
		return actQ8K
	}
	return actQ8
}

// dotTile computes row r against n (1 to 4) activation rows starting at
// token t0, writing out[0:n]. Every implementation below gives each token
// exactly the bits it gets alone (n = 1), so prefill equals decode.
func (m *Matrix) dotTile(r int, qz *quantized, t0, n int, out *[4]float32) {
	switch m.act() {
	case actFloat:
		m.dotFloat(r, qz, t0, n, out)
	case actQ8:
		if m.simdRows(r, r+1, qz, t0, n, out[:n]) {
			return
		}
		var xs [4]*q8Row
		for k := 0; k < n; k++ {
			xs[k] = &qz.xq[t0+k]
		}
		m.dot32Go(r, xs[:n], out[:n])
	case actQ8K:
		if m.simdRows(r, r+1, qz, t0, n, out[:n]) {
			return
		}
		var xs [4]*q8KRow
		for k := 0; k < n; k++ {
			xs[k] = &qz.xk[t0+k]
		}
		m.dotKGo(r, xs[:n], out[:n])
	}
}

// dotRows computes rows [r0, r1) against n (1 or 4) activation rows from
// token t0 into out[(r-r0)·n+t]: one assembly call for the range where a
// kernel exists, else dotTile row by row — the same bits either way.
func (m *Matrix) dotRows(r0, r1 int, qz *quantized, t0, n int, out []float32) {
	if m.simdRows(r0, r1, qz, t0, n, out) {
		return
	}
	var tile [4]float32
	for r := r0; r < r1; r++ {
		m.dotTile(r, qz, t0, n, &tile)
		copy(out[(r-r0)*n:(r-r0+1)*n], tile[:n])
	}
}

// dotFloat: F32 rows are dotted in place with dotF32; F16 and BF16 rows
// are widened to float32 (exactly) and dotted with dotHalf.
func (m *Matrix) dotFloat(r int, qz *quantized, t0, n int, out *[4]float32) {
	cols := m.Cols
	if m.Type == gguf.F32 {
		w := m.f32[r*cols : (r+1)*cols]
		if n == 4 && haveAVX2 && useSIMD && cols >= 8 {
			// Four tokens per pass over the row: each token's lanes are
			// dotF32's, so the same bits as one token at a time.
			n8 := cols &^ 7
			x := qz.x[t0*cols : (t0+4)*cols]
			var l [4][8]float32
			lanesF32x4AVX2(&w[0], &x[0], cols, n8, &l)
			for k := 0; k < 4; k++ {
				xk := x[k*cols : (k+1)*cols]
				s := combine8(&l[k])
				for i := n8; i < cols; i++ {
					s += float32(w[i] * xk[i])
				}
				out[k] = s
			}
			return
		}
		for k := 0; k < n; k++ {
			out[k] = dotF32(w, qz.x[(t0+k)*cols:(t0+k+1)*cols])
		}
		return
	}
	if m.simdHalf(r, qz, t0, n, out) {
		return
	}
	var buf [4096]float32
	var w []float32
	if cols <= len(buf) {
		w = buf[:cols]
	} else {
		w = make([]float32, cols)
	}
	widen(m.Type, m.u16[r*cols:(r+1)*cols], w)
	for k := 0; k < n; k++ {
		x := qz.x[(t0+k)*cols : (t0+k+1)*cols]
		n32 := cols &^ 31
		var v [8]float32
		halfLanesGo(w[:n32], x[:n32], &v)
		out[k] = halfTail(&v, w, x, n32)
	}
}

// halfLanesGo is the F16/BF16 reduction (on widened weights, len a multiple
// of 32): four 8-lane accumulators (element i in accumulator (i/8)%4, lane
// i%8) — four independent chains, so the SIMD version is not bound by the
// add latency — folded lane-wise as (a0 + a1) + (a2 + a3).
func halfLanesGo(w, x []float32, v *[8]float32) {
	var a [32]float32
	x = x[:len(w)]
	for i := 0; i+32 <= len(w); i += 32 {
		ww, xx := w[i:i+32:i+32], x[i:i+32:i+32]
		for k := 0; k < 32; k++ {
			a[k] += float32(ww[k] * xx[k])
		}
	}
	for k := 0; k < 8; k++ {
		v[k] = (a[k] + a[8+k]) + (a[16+k] + a[24+k])
	}
}

// halfTail folds the lanes pairwise (combine8) and adds the elements from
// n32 on in order.
func halfTail(v *[8]float32, w, x []float32, n32 int) float32 {
	s := combine8(v)
	for i := n32; i < len(w); i++ {
		s += float32(w[i] * x[i])
	}
	return s
}

// expf is a portable single-precision exp: range reduction by ln 2 and a
// degree-6 polynomial, using only +, *, and exact scaling by 2^n.
func expf(x float32) float32 {
	if x > 88.7 {
		return float32(math.Inf(1))
	}
	if x < -103.9 {
		return 0
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	n := float32(math.Floor(float64(float32(x*log2e)) + 0.5))
	r := float32(x - float32(n*ln2hi))
	r = float32(r - float32(n*ln2lo))
	// Cephes expf polynomial
	p := float32(1.9875691500e-4)
	p = float32(float32(p*r) + 1.3981999507e-3)
	p = float32(float32(p*r) + 8.3334519073e-3)
	p = float32(float32(p*r) + 4.1665795894e-2)
	p = float32(float32(p*r) + 1.6666665459e-1)
	p = float32(float32(p*r) + 5.0000001201e-1)
	y := float32(float32(float32(p*r)*r) + r)
	y = y + 1
	// y·2^n: exact in float64 (|n| ≤ 150, far inside its exponent range),
	// then rounded once to float32 — the same bits as math.Ldexp, cheaper.
	return float32(float64(y) * math.Float64frombits(uint64(int64(n)+1023)<<52))
}

// exp64 is a portable float64 exp (Go's amd64 math.Exp takes an FMA path on
// some CPUs, which would make RoPE tables differ between machines).
func exp64(x float64) float64 {
	n := math.Floor(float64(x*math.Log2E) + 0.5)
	r := float64(x - float64(n*6.93147180369123816490e-01))
	r = float64(r - float64(n*1.90821492927058770002e-10))
	sum, term := 1.0, 1.0
	for k := 1; k < 30; k++ {
		term = float64(term*r) / float64(k)
		sum = float64(sum + term)
	}
	return math.Ldexp(sum, int(n))
}

// WeightTypes lists the tensor types the engine runs (and the model
// generator writes).
func WeightTypes() []gguf.TensorType { return append([]gguf.TensorType(nil), supportedTypes...) }

// q8Group is four activation rows' block scales, Q8_1 sums and exact
// quant sums interleaved by block (d[4*b+t] = xq[t].d[b]), as the
// four-token assembly reads them.
type q8Group struct {
	d, s []float32
	i    []int32
}

func interleaveScales(xq []q8Row) q8Group {
	nb := len(xq[0].d)
	g := q8Group{make([]float32, 4*nb), make([]float32, 4*nb), make([]int32, 4*nb)}
	for b := 0; b < nb; b++ {
		for t := 0; t < 4; t++ {
			g.d[4*b+t], g.s[4*b+t], g.i[4*b+t] = xq[t].d[b], xq[t].s[b], xq[t].i[b]
		}
	}
	return g
}
