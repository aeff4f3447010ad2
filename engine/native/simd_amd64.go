package native

import (
	"golang.org/x/sys/cpu"

	"github.com/agoranet/agora/engine/gguf"
)

// useVNNI picks the kernels that fuse multiply and add with AVX512-VNNI
// (VPDPWSSD, VPDPBUSD on 256-bit registers) where the CPU has it; integer
// sums are exact either way, so the bits do not change. Tests clear it.
var useVNNI = cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW

// The K-quant kernels (kquants_amd64.s) compute each super-block's exact
// integer sums for one or four activation rows, then apply the float scales
// with kCombine's expression (scalar multiplies, a subtract and an add, each
// rounded, no FMA), so they give the Go kernel's bits.

//go:noescape
func q4kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q4kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q5kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q5kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q2kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q2kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q3kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q3kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q6kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q6kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

func (m *Matrix) simdK(r int, qz *quantized, t0, n int, out *[4]float32) bool {
	if !haveAVX2 || !useSIMD || (n != 1 && n != 4) {
		return false
	}
	switch m.Type {
	case gguf.Q2_K, gguf.Q3_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K:
	default:
		return false
	}
	b := m.row(r)
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
	*out = [4]float32{}
	// direct calls: through a func value the stack arrays would escape
	switch {
	case m.Type == gguf.Q2_K && n == 1:
		if useVNNI {
			q2kDot1VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q2kDot1AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q2_K:
		if useVNNI {
			q2kDot4VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q2kDot4AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q3_K && n == 1:
		if useVNNI {
			q3kDot1VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q3kDot1AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q3_K:
		if useVNNI {
			q3kDot4VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q3kDot4AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q4_K && n == 1:
		if useVNNI {
			q4kDot1VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q4kDot1AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q4_K:
		if useVNNI {
			q4kDot4VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q4kDot4AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q5_K && n == 1:
		if useVNNI {
			q5kDot1VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q5kDot1AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case m.Type == gguf.Q5_K:
		if useVNNI {
			q5kDot4VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q5kDot4AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	case n == 1:
		if useVNNI {
			q6kDot1VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q6kDot1AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	default:
		if useVNNI {
			q6kDot4VNNI(&b[0], &xs, &bs, &xd, nb, out)
		} else {
			q6kDot4AVX2(&b[0], &xs, &bs, &xd, nb, out)
		}
	}
	return true
}

//go:noescape
func q40Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q40Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q41Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q41Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q50Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q50Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q51Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q51Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q80Dot1AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q80Dot4AVX2(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q4kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q4kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q5kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q5kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q2kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q2kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q3kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q3kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q6kDot1VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q6kDot4VNNI(w *byte, xs *[4]*int8, bs *[4]*int16, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func q40Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q40Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q41Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q41Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q50Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q50Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q51Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q51Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q80Dot1VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

//go:noescape
func q80Dot4VNNI(w *byte, xq *[4]*int8, xd *float32, xs *float32, nb int, out *float32)

// simd32 runs the 32-element block kernels (blocks_amd64.s): exact int32
// block sums and combine32's float expression, for one token or four (their
// scales and sums interleaved by block).
func (m *Matrix) simd32(r int, qz *quantized, t0, n int, out *[4]float32) bool {
	if !haveAVX2 || !haveF16C || !useSIMD || (n != 1 && n != 4) {
		return false
	}
	b := m.row(r)
	nb := m.Cols / 32
	var xq [4]*int8
	for k := 0; k < n; k++ {
		x := &qz.xq[t0+k]
		_, _, _ = x.q[nb*32-1], x.d[nb-1], x.s[nb-1]
		xq[k] = &x.q[0]
	}
	xd, xs := &qz.xq[t0].d[0], &qz.xq[t0].s[0]
	if n == 4 {
		d4, s4 := qz.xd4[t0/4], qz.xs4[t0/4]
		_, _ = d4[4*nb-1], s4[4*nb-1]
		xd, xs = &d4[0], &s4[0]
	}
	_ = b[len(b)-1]
	o := &out[0]
	switch {
	case m.Type == gguf.Q4_0 && n == 1:
		if useVNNI {
			q40Dot1VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q40Dot1AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q4_0:
		if useVNNI {
			q40Dot4VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q40Dot4AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q4_1 && n == 1:
		if useVNNI {
			q41Dot1VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q41Dot1AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q4_1:
		if useVNNI {
			q41Dot4VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q41Dot4AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q5_0 && n == 1:
		if useVNNI {
			q50Dot1VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q50Dot1AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q5_0:
		if useVNNI {
			q50Dot4VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q50Dot4AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q5_1 && n == 1:
		if useVNNI {
			q51Dot1VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q51Dot1AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q5_1:
		if useVNNI {
			q51Dot4VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q51Dot4AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q8_0 && n == 1:
		if useVNNI {
			q80Dot1VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q80Dot1AVX2(&b[0], &xq, xd, xs, nb, o)
		}
	case m.Type == gguf.Q8_0:
		if useVNNI {
			q80Dot4VNNI(&b[0], &xq, xd, xs, nb, o)
		} else {
			q80Dot4AVX2(&b[0], &xq, xd, xs, nb, o)
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
