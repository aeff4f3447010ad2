package native

import (
	"encoding/binary"
	"math"

	"github.com/agoranet/agora/engine/gguf"
)

// K-quants use 256-element super-blocks. Rows are dequantized one super-block
// at a time into a stack buffer and dotted in block order, so the reduction
// order is fixed as for every other type.

// q4kScaleMin unpacks the 6-bit scale and min of sub-block j.
func q4kScaleMin(j int, q []byte) (uint8, uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// dequantQ4K expands one 144-byte Q4_K block into 256 values.
func dequantQ4K(b []byte, y []float32) {
	d := f16Table[binary.LittleEndian.Uint16(b)]
	dmin := f16Table[binary.LittleEndian.Uint16(b[2:])]
	scales, q := b[4:16], b[16:144]
	for c := 0; c < 4; c++ {
		sc1, m1 := q4kScaleMin(2*c, scales)
		sc2, m2 := q4kScaleMin(2*c+1, scales)
		d1, min1 := float32(d*float32(sc1)), float32(dmin*float32(m1))
		d2, min2 := float32(d*float32(sc2)), float32(dmin*float32(m2))
		qq := q[32*c : 32*c+32]
		for l := 0; l < 32; l++ {
			y[64*c+l] = float32(d1*float32(qq[l]&0xF)) - min1
			y[64*c+32+l] = float32(d2*float32(qq[l]>>4)) - min2
		}
	}
}

// dequantQ6K expands one 210-byte Q6_K block into 256 values.
func dequantQ6K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16Table[binary.LittleEndian.Uint16(b[208:])]
	for n := 0; n < 2; n++ {
		l0, h0, s0 := ql[64*n:], qh[32*n:], sc[8*n:]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int8((l0[l]&0xF)|((h0[l]>>0)&3)<<4) - 32
			q2 := int8((l0[l+32]&0xF)|((h0[l]>>2)&3)<<4) - 32
			q3 := int8((l0[l]>>4)|((h0[l]>>4)&3)<<4) - 32
			q4 := int8((l0[l+32]>>4)|((h0[l]>>6)&3)<<4) - 32
			y[128*n+l] = float32(d*float32(int8(s0[is]))) * float32(q1)
			y[128*n+l+32] = float32(d*float32(int8(s0[is+2]))) * float32(q2)
			y[128*n+l+64] = float32(d*float32(int8(s0[is+4]))) * float32(q3)
			y[128*n+l+96] = float32(d*float32(int8(s0[is+6]))) * float32(q4)
		}
	}
}

func kBlock(t gguf.TensorType) (int, func([]byte, []float32)) {
	if t == gguf.Q4_K {
		return 144, dequantQ4K
	}
	return 210, dequantQ6K
}

func (m *Matrix) rowK(r int, dst []float32) {
	bs, deq := kBlock(m.Type)
	b := m.row(r)
	for blk := 0; blk < m.Cols/256; blk++ {
		deq(b[blk*bs:], dst[blk*256:blk*256+256])
	}
}

func (m *Matrix) dotK(r int, x []float32) float32 {
	bs, deq := kBlock(m.Type)
	b := m.row(r)
	var tmp [256]float32
	var s float32
	for blk := 0; blk < m.Cols/256; blk++ {
		deq(b[blk*bs:], tmp[:])
		s += dotF32(tmp[:], x[blk*256:blk*256+256])
	}
	return s
}

// encodeQ6K quantizes values (a multiple of 256) to Q6_K: a scale per
// 16 values (int8, relative to the block's f16 scale) and 6-bit quants.
func encodeQ6K(vals []float32) []byte {
	out := make([]byte, 0, len(vals)/256*210)
	for b := 0; b < len(vals)/256; b++ {
		x := vals[b*256 : b*256+256]
		var sub [16]float32
		var maxSub float32
		for s := 0; s < 16; s++ {
			var amax float32
			for _, v := range x[s*16 : s*16+16] {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			sub[s] = amax / 31
			maxSub = max(maxSub, sub[s])
		}
		d := maxSub / 127
		dh := F32ToF16(d)
		dq := f16Table[dh]
		var sc [16]int8
		var q [256]uint8
		for s := 0; s < 16; s++ {
			if dq > 0 {
				sc[s] = int8(min(127, roundHalfAway(sub[s]/dq)))
			}
			step := dq * float32(sc[s])
			for i := 0; i < 16; i++ {
				v := 0
				if step != 0 {
					v = int(roundHalfAway(x[s*16+i] / step))
				}
				q[s*16+i] = uint8(min(31, max(-32, v)) + 32)
			}
		}
		var ql [128]byte
		var qh [64]byte
		for n := 0; n < 2; n++ {
			for l := 0; l < 32; l++ {
				q1, q2, q3, q4 := q[128*n+l], q[128*n+l+32], q[128*n+l+64], q[128*n+l+96]
				ql[64*n+l] = q1&0xF | (q3&0xF)<<4
				ql[64*n+l+32] = q2&0xF | (q4&0xF)<<4
				qh[32*n+l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
		out = append(out, ql[:]...)
		out = append(out, qh[:]...)
		for _, s := range sc {
			out = append(out, byte(s))
		}
		out = binary.LittleEndian.AppendUint16(out, dh)
	}
	return out
}

// encodeQ4K quantizes values to Q4_K: per 32 values a 6-bit scale and min
// (relative to the block's f16 d and dmin) and 4-bit quants.
func encodeQ4K(vals []float32) []byte {
	out := make([]byte, 0, len(vals)/256*144)
	for b := 0; b < len(vals)/256; b++ {
		x := vals[b*256 : b*256+256]
		var scale, mins [8]float32
		var maxScale, maxMin float32
		for s := 0; s < 8; s++ {
			lo, hi := x[s*32], x[s*32]
			for _, v := range x[s*32 : s*32+32] {
				lo, hi = min(lo, v), max(hi, v)
			}
			lo = min(lo, 0)
			scale[s], mins[s] = (hi-lo)/15, -lo
			maxScale, maxMin = max(maxScale, scale[s]), max(maxMin, mins[s])
		}
		dh, mh := F32ToF16(maxScale/63), F32ToF16(maxMin/63)
		d, dmin := f16Table[dh], f16Table[mh]
		var sc, mn [8]uint8
		var q [256]uint8
		for s := 0; s < 8; s++ {
			if d > 0 {
				sc[s] = uint8(min(63, roundHalfAway(scale[s]/d)))
			}
			if dmin > 0 {
				mn[s] = uint8(min(63, roundHalfAway(mins[s]/dmin)))
			}
			step, off := d*float32(sc[s]), dmin*float32(mn[s])
			for i := 0; i < 32; i++ {
				v := 0
				if step != 0 {
					v = int(roundHalfAway((x[s*32+i] + off) / step))
				}
				q[s*32+i] = uint8(min(15, max(0, v)))
			}
		}
		var scales [12]byte
		for j := 0; j < 4; j++ {
			scales[j] = sc[j]&63 | (sc[j+4]>>4)<<6
			scales[j+4] = mn[j]&63 | (mn[j+4]>>4)<<6
			scales[j+8] = sc[j+4]&0xF | (mn[j+4]&0xF)<<4
		}
		out = binary.LittleEndian.AppendUint16(out, dh)
		out = binary.LittleEndian.AppendUint16(out, mh)
		out = append(out, scales[:]...)
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				out = append(out, q[64*c+l]|q[64*c+32+l]<<4)
			}
		}
	}
	return out
}
