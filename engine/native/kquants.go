package native

import (
	"encoding/binary"
	"math"

	"github.com/agoranet/agora/engine/gguf"
)

// K-quants use 256-element super-blocks (ggml's block_q2_K … block_q6_K).
// Their dot products run against activations quantized to Q8_K (one float32
// scale per 256 values, int8 quants, int16 sums per 16), as llama.cpp does:
// per super-block the weight × activation products are summed exactly as
// integers (isum, weighted by the sub-block scales) and, for the types with
// mins, the mins against the activation sums (msum). Only then are the two
// float scales applied, in one fixed expression (kCombine), so every
// implementation of the integer part — Go or SIMD, one token or several —
// gives the same bits.

const qkK = 256

// q8KRow is an activation row quantized to Q8_K.
type q8KRow struct {
	q     []int8
	d     []float32 // per super-block
	bsums []int16   // per 16 values
}

// nearestInt rounds to the nearest integer, ties to even, the way ggml's
// nearest_int does (adding 1.5·2^23 in float32).
func nearestInt(f float32) int32 {
	v := float32(f + 12582912)
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// quantizeQ8K quantizes x (a multiple of 256 long) like ggml's
// quantize_row_q8_K_ref: scale -127/max of the largest magnitude, so the
// quants lie in [-127, 127].
func quantizeQ8K(x []float32, out *q8KRow) {
	nb := len(x) / qkK
	if cap(out.q) < len(x) || cap(out.d) < nb {
		out.q = make([]int8, len(x))
		out.d = make([]float32, nb)
		out.bsums = make([]int16, nb*16)
	}
	out.q, out.d, out.bsums = out.q[:len(x)], out.d[:nb], out.bsums[:nb*16]
	for b := 0; b < nb; b++ {
		blk := x[b*qkK : (b+1)*qkK]
		q := out.q[b*qkK : (b+1)*qkK]
		var maxv, amax float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, maxv = a, v
			}
		}
		if amax == 0 {
			out.d[b] = 0
			clear(q)
			clear(out.bsums[b*16 : b*16+16])
			continue
		}
		iscale := float32(-127 / maxv)
		for i, v := range blk {
			q[i] = int8(min(127, nearestInt(float32(iscale*v))))
		}
		for j := 0; j < 16; j++ {
			var s int16
			for _, v := range q[j*16 : j*16+16] {
				s += int16(v)
			}
			out.bsums[b*16+j] = s
		}
		out.d[b] = 1 / iscale
	}
}

// kBlockBytes is the size of one super-block of a K type.
func kBlockBytes(t gguf.TensorType) int {
	_, n, _ := t.BlockSize()
	return n
}

// q4kScaleMin unpacks the 6-bit scale and min of sub-block j (Q4_K, Q5_K).
func q4kScaleMin(j int, q []byte) (uint8, uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// q3kScales unpacks Q3_K's sixteen 6-bit scales (stored biased by 32).
func q3kScales(s []byte, out *[16]int32) {
	for is := 0; is < 16; is++ {
		var lo uint8
		if is < 8 {
			lo = s[is] & 0xF
		} else {
			lo = s[is-8] >> 4
		}
		hi := (s[8+is%4] >> (2 * (is / 4))) & 3
		out[is] = int32(lo|hi<<4) - 32
	}
}

// kUnpack expands one super-block into its integer quants q (the values the
// scales multiply), the scale of each 16 values, the min of each 16 values
// (types with mins), and the block's float scales d and dmin.
func kUnpack(t gguf.TensorType, b []byte, q *[qkK]int8, sc, mn *[16]int32) (d, dmin float32) {
	switch t {
	case gguf.Q2_K:
		scales, qs := b[0:16], b[16:80]
		d, dmin = f16Table[binary.LittleEndian.Uint16(b[80:])], f16Table[binary.LittleEndian.Uint16(b[82:])]
		for e := 0; e < qkK; e++ {
			n, j, h, l := e/128, (e%128)/32, (e%32)/16, e%16
			q[e] = int8(qs[32*n+16*h+l] >> (2 * j) & 3)
		}
		for j := 0; j < 16; j++ {
			sc[j], mn[j] = int32(scales[j]&0xF), int32(scales[j]>>4)
		}
	case gguf.Q3_K:
		hm, qs := b[0:32], b[32:96]
		d = f16Table[binary.LittleEndian.Uint16(b[108:])]
		for e := 0; e < qkK; e++ {
			n, j, h, l := e/128, (e%128)/32, (e%32)/16, e%16
			v := int8(qs[32*n+16*h+l] >> (2 * j) & 3)
			if hm[16*h+l]&(1<<(4*n+j)) == 0 {
				v -= 4
			}
			q[e] = v
		}
		q3kScales(b[96:108], sc)
	case gguf.Q4_K, gguf.Q5_K:
		d, dmin = f16Table[binary.LittleEndian.Uint16(b)], f16Table[binary.LittleEndian.Uint16(b[2:])]
		scales := b[4:16]
		qs, qh := b[16:144], []byte(nil)
		if t == gguf.Q5_K {
			qh, qs = b[16:48], b[48:176]
		}
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				lo, hi := qs[32*c+l]&0xF, qs[32*c+l]>>4
				if qh != nil {
					lo |= (qh[l] >> (2 * c) & 1) << 4
					hi |= (qh[l] >> (2*c + 1) & 1) << 4
				}
				q[64*c+l], q[64*c+32+l] = int8(lo), int8(hi)
			}
		}
		for j := 0; j < 8; j++ {
			s, m := q4kScaleMin(j, scales)
			sc[2*j], sc[2*j+1] = int32(s), int32(s)
			mn[2*j], mn[2*j+1] = int32(m), int32(m)
		}
	case gguf.Q6_K:
		ql, qh, scales := b[0:128], b[128:192], b[192:208]
		d = f16Table[binary.LittleEndian.Uint16(b[208:])]
		for n := 0; n < 2; n++ {
			l0, h0 := ql[64*n:], qh[32*n:]
			for l := 0; l < 32; l++ {
				q[128*n+l] = int8(l0[l]&0xF|(h0[l]&3)<<4) - 32
				q[128*n+l+32] = int8(l0[l+32]&0xF|(h0[l]>>2&3)<<4) - 32
				q[128*n+l+64] = int8(l0[l]>>4|(h0[l]>>4&3)<<4) - 32
				q[128*n+l+96] = int8(l0[l+32]>>4|(h0[l]>>6&3)<<4) - 32
			}
		}
		for j := 0; j < 16; j++ {
			sc[j] = int32(int8(scales[j]))
		}
	}
	return d, dmin
}

// kHasMin reports whether a K type subtracts per-sub-block mins.
func kHasMin(t gguf.TensorType) bool {
	return t == gguf.Q2_K || t == gguf.Q4_K || t == gguf.Q5_K
}

// dequantK expands one super-block into 256 values: d·sc·q − dmin·m.
func dequantK(t gguf.TensorType, b []byte, y []float32) {
	var q [qkK]int8
	var sc, mn [16]int32
	d, dmin := kUnpack(t, b, &q, &sc, &mn)
	for j := 0; j < 16; j++ {
		dl, ml := float32(d*float32(sc[j])), float32(dmin*float32(mn[j]))
		for i := j * 16; i < j*16+16; i++ {
			y[i] = float32(dl*float32(q[i])) - ml
		}
	}
}

func (m *Matrix) rowK(r int, dst []float32) {
	bs := kBlockBytes(m.Type)
	b := m.row(r)
	for blk := 0; blk < m.Cols/qkK; blk++ {
		dequantK(m.Type, b[blk*bs:], dst[blk*qkK:blk*qkK+qkK])
	}
}

// kCombine adds one super-block's contribution to s: the integer sums
// scaled by the weight's d (and dmin) times the activation's d, in this
// one order for every implementation.
func kCombine(s float32, hasMin bool, dw, dminw, dx float32, isum, msum int32) float32 {
	a := float32(float32(dw*dx) * float32(isum))
	if hasMin {
		a = a - float32(float32(dminw*dx)*float32(msum))
	}
	return s + a
}

// kSumsGo computes one super-block's integer sums against activation
// quants x (256) and their sums per 16 (bsums), from the unpacked weights.
func kSumsGo(q *[qkK]int8, sc, mn *[16]int32, hasMin bool, x []int8, bsums []int16) (isum, msum int32) {
	x = x[:qkK]
	for j := 0; j < 16; j++ {
		var s int32
		qq, xx := q[j*16:j*16+16], x[j*16:j*16+16]
		for i := range qq {
			s += int32(qq[i]) * int32(xx[i])
		}
		isum += sc[j] * s
		if hasMin {
			msum += mn[j] * int32(bsums[j])
		}
	}
	return isum, msum
}

// dotKGo is the portable K-quant row kernel: row r against the activation
// rows xs (each super-block unpacked once for all of them).
func (m *Matrix) dotKGo(r int, xs []*q8KRow, out []float32) {
	bs := kBlockBytes(m.Type)
	hasMin := kHasMin(m.Type)
	b := m.row(r)
	var q [qkK]int8
	var sc, mn [16]int32
	var s [4]float32
	for blk := 0; blk < m.Cols/qkK; blk++ {
		d, dmin := kUnpack(m.Type, b[blk*bs:(blk+1)*bs], &q, &sc, &mn)
		for t, x := range xs {
			isum, msum := kSumsGo(&q, &sc, &mn, hasMin, x.q[blk*qkK:], x.bsums[blk*16:blk*16+16])
			s[t] = kCombine(s[t], hasMin, d, dmin, x.d[blk], isum, msum)
		}
	}
	copy(out, s[:len(xs)])
}
