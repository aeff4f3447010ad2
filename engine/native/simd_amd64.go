package native

// Dispatch to the assembly kernels (kquants_amd64.s, blocks_amd64.s,
// half_amd64.s). Each kernel is called directly: through a func value the
// stack arrays passed to it would escape to the heap.

import (
	"golang.org/x/sys/cpu"

	"github.com/agoranet/agora/engine/gguf"
)

// useVNNI picks the kernels that fuse multiply and add with AVX512-VNNI
// (VPDPWSSD, VPDPBUSD on 256-bit registers) where the CPU has it; integer
// sums are exact either way, so the bits do not change. Tests clear it.
var useVNNI = cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW

// The quantized kernels each take a range of consecutive rows against one or
// four activation rows (out[row·n+t]): the K-quants' exact super-block
// integer sums then kCombine's float expression, the 32-element types' exact
// block sums then combine32's (scalar or lane-wise multiplies, a subtract
// or add, each rounded, no FMA), so they give the Go kernels' bits.

//go:noescape
func q2kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q2kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q3kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q3kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q4kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q4kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q5kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q5kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q6kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q6kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q40Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q40Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q41Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q41Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q50Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q50Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q51Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q51Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q80Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q80Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q2kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q2kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q3kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q3kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q4kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q4kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q5kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q5kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q6kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q6kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *float32, rows int)

//go:noescape
func q40Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q40Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q41Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q41Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q50Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q50Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q51Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q51Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q80Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

//go:noescape
func q80Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, xi *int32, nb int, out *float32, rows int)

// simdRows computes rows [r0, r1) against n (1 or 4) activation rows from
// token t0 into out[(r-r0)·n+t], if a kernel exists for the type and CPU.
func (m *Matrix) simdRows(r0, r1 int, qz *quantized, t0, n int, out []float32) bool {
	if !haveAVX2 || !haveF16C || !useSIMD || (n != 1 && n != 4) || r1 <= r0 {
		return false
	}
	_ = out[(r1-r0)*n-1]
	switch m.act() {
	case actQ8K:
		return m.simdKRows(r0, r1, qz, t0, n, out)
	case actQ8:
		return m.simd32Rows(r0, r1, qz, t0, n, out)
	}
	return false
}

func (m *Matrix) simdKRows(r0, r1 int, qz *quantized, t0, n int, out []float32) bool {
	nb := m.Cols / qkK
	var xs [4]*int8
	var bs [4]*int16
	var xd [4]*float32
	for t := 0; t < n; t++ {
		x := &qz.xk[t0+t]
		_, _, _ = x.q[nb*qkK-1], x.bsums[nb*16-1], x.d[nb-1]
		xs[t], bs[t], xd[t] = &x.q[0], &x.bsums[0], &x.d[0]
	}
	if n == 4 { // the four-token kernels read the scales interleaved by block
		d4 := qz.xkd4[t0/4]
		_ = d4[4*nb-1]
		xd[0] = &d4[0]
	}
	w := m.data[r0*m.rowBytes : r1*m.rowBytes]
	rows, o := r1-r0, &out[0]
	switch {
	case m.Type == gguf.Q2_K && n == 1:
		if useVNNI {
			q2kDot1VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q2kDot1AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q2_K && n == 4:
		if useVNNI {
			q2kDot4VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q2kDot4AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q3_K && n == 1:
		if useVNNI {
			q3kDot1VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q3kDot1AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q3_K && n == 4:
		if useVNNI {
			q3kDot4VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q3kDot4AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q4_K && n == 1:
		if useVNNI {
			q4kDot1VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q4kDot1AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q4_K && n == 4:
		if useVNNI {
			q4kDot4VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q4kDot4AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q5_K && n == 1:
		if useVNNI {
			q5kDot1VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q5kDot1AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q5_K && n == 4:
		if useVNNI {
			q5kDot4VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q5kDot4AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q6_K && n == 1:
		if useVNNI {
			q6kDot1VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q6kDot1AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	case m.Type == gguf.Q6_K && n == 4:
		if useVNNI {
			q6kDot4VNNI(&w[0], &xs, &bs, &xd, nb, o, rows)
		} else {
			q6kDot4AVX2(&w[0], &xs, &bs, &xd, nb, o, rows)
		}
	default:
		return false
	}
	return true
}

func (m *Matrix) simd32Rows(r0, r1 int, qz *quantized, t0, n int, out []float32) bool {
	nb := m.Cols / 32
	var xq [4]*int8
	for k := 0; k < n; k++ {
		x := &qz.xq[t0+k]
		_, _, _, _ = x.q[nb*32-1], x.d[nb-1], x.s[nb-1], x.i[nb-1]
		xq[k] = &x.q[0]
	}
	xd, xs, xi := &qz.xq[t0].d[0], &qz.xq[t0].s[0], &qz.xq[t0].i[0]
	if n == 4 { // the four-token kernels read scales and sums interleaved by block
		g := &qz.xq4[t0/4]
		_, _, _ = g.d[4*nb-1], g.s[4*nb-1], g.i[4*nb-1]
		xd, xs, xi = &g.d[0], &g.s[0], &g.i[0]
	}
	w := m.data[r0*m.rowBytes : r1*m.rowBytes]
	rows, o := r1-r0, &out[0]
	switch {
	case m.Type == gguf.Q4_0 && n == 1:
		if useVNNI {
			q40Dot1VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q40Dot1AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q4_0 && n == 4:
		if useVNNI {
			q40Dot4VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q40Dot4AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q4_1 && n == 1:
		if useVNNI {
			q41Dot1VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q41Dot1AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q4_1 && n == 4:
		if useVNNI {
			q41Dot4VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q41Dot4AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q5_0 && n == 1:
		if useVNNI {
			q50Dot1VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q50Dot1AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q5_0 && n == 4:
		if useVNNI {
			q50Dot4VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q50Dot4AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q5_1 && n == 1:
		if useVNNI {
			q51Dot1VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q51Dot1AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q5_1 && n == 4:
		if useVNNI {
			q51Dot4VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q51Dot4AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q8_0 && n == 1:
		if useVNNI {
			q80Dot1VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q80Dot1AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	case m.Type == gguf.Q8_0 && n == 4:
		if useVNNI {
			q80Dot4VNNI(&w[0], &xq, xd, xs, xi, nb, o, rows)
		} else {
			q80Dot4AVX2(&w[0], &xq, xd, xs, xi, nb, o, rows)
		}
	default:
		return false
	}
	return true
}

//go:noescape
func halfLanesAVX2(w *uint16, x *float32, n int, bf16 int, out *[8]float32)

// simdHalf runs the F16/BF16 kernel: the row converted in registers (F16C
// or a shift), halfLanesGo's four accumulators, then halfTail in Go.
func (m *Matrix) simdHalf(r int, qz *quantized, t0, n int, out *[4]float32) bool {
	if !haveAVX2 || !haveF16C || !useSIMD {
		return false
	}
	cols := m.Cols
	n32 := cols &^ 31
	w := m.u16[r*cols : (r+1)*cols]
	bf := 0
	if m.Type == gguf.BF16 {
		bf = 1
	}
	var tail [31]float32
	if n32 < cols {
		widen(m.Type, w[n32:], tail[:cols-n32])
	}
	for k := 0; k < n; k++ {
		x := qz.x[(t0+k)*cols : (t0+k+1)*cols]
		var v [8]float32
		if n32 > 0 {
			halfLanesAVX2(&w[0], &x[0], n32, bf, &v)
		}
		s := combine8(&v)
		for i := n32; i < cols; i++ {
			s += float32(tail[i-n32] * x[i])
		}
		out[k] = s
	}
	return true
}
