package native

import (
	"encoding/binary"

	"github.com/agoranet/agora/engine/gguf"
)

// The K-quant kernels (kquants_amd64.s) compute each super-block's exact
// integer sums for one or four activation rows; the float scales are then
// applied here by kCombine, the same expression the Go kernel uses.

//go:noescape
func q4kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)

//go:noescape
func q4kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)

//go:noescape
func q5kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)

//go:noescape
func q5kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)

//go:noescape
func q6kDot1AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)

//go:noescape
func q6kDot4AVX2(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)

// kChunk is how many super-blocks one assembly call covers.
const kChunk = 16

func (m *Matrix) simdK(r int, qz *quantized, t0, n int, out *[4]float32) bool {
	if !haveAVX2 || !useSIMD || (n != 1 && n != 4) {
		return false
	}
	var kern func(w *byte, xs *[4]*int8, bs *[4]*int16, nb int, out *int32)
	dOff, hasMin, q6 := 0, true, false
	switch m.Type {
	case gguf.Q4_K:
		kern = q4kDot1AVX2
		if n == 4 {
			kern = q4kDot4AVX2
		}
	case gguf.Q5_K:
		kern = q5kDot1AVX2
		if n == 4 {
			kern = q5kDot4AVX2
		}
	case gguf.Q6_K:
		kern = q6kDot1AVX2
		if n == 4 {
			kern = q6kDot4AVX2
		}
		dOff, hasMin, q6 = 208, false, true
	default:
		return false
	}
	bsz := kBlockBytes(m.Type)
	b := m.row(r)
	nb := m.Cols / qkK
	var sums [2 * 4 * kChunk]int32
	var s [4]float32
	var xs [4]*int8
	var bs [4]*int16
	for b0 := 0; b0 < nb; b0 += kChunk {
		k := min(kChunk, nb-b0)
		for t := 0; t < n; t++ {
			x := &qz.xk[t0+t]
			_, _ = x.q[(b0+k)*qkK-1], x.bsums[(b0+k)*16-1]
			xs[t], bs[t] = &x.q[b0*qkK], &x.bsums[b0*16]
		}
		_ = b[(b0+k)*bsz-1]
		kern(&b[b0*bsz], &xs, &bs, k, &sums[0])
		for i := 0; i < k; i++ {
			blk := b0 + i
			w := b[blk*bsz:]
			d := f16Table[binary.LittleEndian.Uint16(w[dOff:])]
			var dmin float32
			if hasMin {
				dmin = f16Table[binary.LittleEndian.Uint16(w[2:])]
			}
			for t := 0; t < n; t++ {
				isum, msum := sums[2*(i*n+t)], sums[2*(i*n+t)+1]
				if q6 {
					isum, msum = isum-32*msum, 0
				}
				s[t] = kCombine(s[t], hasMin, d, dmin, qz.xk[t0+t].d[blk], isum, msum)
			}
		}
	}
	*out = s
	return true
}

// simd32 runs the SIMD kernel of a 32-element block type, if there is one
// (the four-token Q8_0 kernel is called by dotTile directly).
func (m *Matrix) simd32(r int, qz *quantized, t0, n int, out *[4]float32) bool {
	if !haveAVX2 || !useSIMD || m.Type != gguf.Q8_0 {
		return false
	}
	b := m.row(r)
	nb := m.Cols / 32
	var sums [64]int32
	for k := 0; k < n; k++ {
		x := &qz.xq[t0+k]
		var s float32
		for b0 := 0; b0 < nb; b0 += len(sums) {
			c := min(len(sums), nb-b0)
			dotQ8Sums(b[b0*34:(b0+c)*34], x.q[b0*32:(b0+c)*32], sums[:c])
			for i := 0; i < c; i++ {
				blk := b0 + i
				d := f16Table[binary.LittleEndian.Uint16(b[blk*34:])]
				s = combine32(s, false, d, 0, x.d[blk], 0, sums[i])
			}
		}
		out[k] = s
	}
	return true
}

// simdHalf runs the SIMD kernel of F16/BF16, if there is one.
func (m *Matrix) simdHalf(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }
