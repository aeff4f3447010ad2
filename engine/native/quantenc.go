package native

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/agoranet/agora/engine/gguf"
)

// Encoders for every weight type, used by the model generator (tests,
// benchmarks, `agora model new --type`). They write ggml's exact block
// layouts; the quantization itself is simple (round to the nearest level
// of a max- or range-derived scale), not llama.cpp's error-minimizing
// search, which only matters for the quality of converted real models.

// encodeQuant stores vals (rows of whole blocks) in a quantized type.
func encodeQuant(typ gguf.TensorType, vals []float32) ([]byte, error) {
	switch typ {
	case gguf.Q4_0:
		return encodeQ4_0(vals), nil
	case gguf.Q4_1:
		return encodeQx1(vals, 4), nil
	case gguf.Q5_0:
		return encodeQ5_0(vals), nil
	case gguf.Q5_1:
		return encodeQx1(vals, 5), nil
	case gguf.Q8_0:
		return encodeQ8_0(vals), nil
	case gguf.Q2_K:
		return encodeQ2K(vals), nil
	case gguf.Q3_K:
		return encodeQ3K(vals), nil
	case gguf.Q4_K:
		return encodeQ45K(vals, false), nil
	case gguf.Q5_K:
		return encodeQ45K(vals, true), nil
	case gguf.Q6_K:
		return encodeQ6K(vals), nil
	}
	return nil, fmt.Errorf("cannot write tensor type %s", typ)
}

func encodeQ8_0(vals []float32) []byte {
	out := make([]byte, 0, len(vals)/32*34)
	var q q8Row
	quantizeQ8(vals, &q)
	for b := 0; b < len(vals)/32; b++ {
		amax := float32(0)
		for _, v := range vals[b*32 : b*32+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		out = binary.LittleEndian.AppendUint16(out, F32ToF16(amax/127))
		for i := 0; i < 32; i++ {
			out = append(out, byte(q.q[b*32+i]))
		}
	}
	return out
}

// signedMax returns the value of largest magnitude in x.
func signedMax(x []float32) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	return mx
}

func encodeQ4_0(vals []float32) []byte {
	out := make([]byte, 0, len(vals)/32*18)
	for b := 0; b < len(vals)/32; b++ {
		blk := vals[b*32 : b*32+32]
		d := signedMax(blk) / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, F32ToF16(d))
		for i := 0; i < 16; i++ {
			lo := min(15, int(int8(blk[i]*id+8.5)))
			hi := min(15, int(int8(blk[16+i]*id+8.5)))
			out = append(out, byte(lo)|byte(hi)<<4)
		}
	}
	return out
}

func encodeQ5_0(vals []float32) []byte {
	out := make([]byte, 0, len(vals)/32*22)
	for b := 0; b < len(vals)/32; b++ {
		blk := vals[b*32 : b*32+32]
		d := signedMax(blk) / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, F32ToF16(d))
		var qh uint32
		var qs [16]byte
		for i := 0; i < 16; i++ {
			lo := uint8(min(31, int(int8(blk[i]*id+16.5))))
			hi := uint8(min(31, int(int8(blk[16+i]*id+16.5))))
			qs[i] = lo&0xF | (hi&0xF)<<4
			qh |= uint32(lo>>4) << i
			qh |= uint32(hi>>4) << (i + 16)
		}
		out = binary.LittleEndian.AppendUint32(out, qh)
		out = append(out, qs[:]...)
	}
	return out
}

// encodeQx1 writes Q4_1 (bits 4) or Q5_1 (bits 5): a scale and a min per
// 32 values.
func encodeQx1(vals []float32, bits int) []byte {
	levels := float32(int(1)<<bits - 1)
	var out []byte
	for b := 0; b < len(vals)/32; b++ {
		blk := vals[b*32 : b*32+32]
		lo, hi := blk[0], blk[0]
		for _, v := range blk {
			lo, hi = min(lo, v), max(hi, v)
		}
		d := (hi - lo) / levels
		var id float32
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, F32ToF16(d))
		out = binary.LittleEndian.AppendUint16(out, F32ToF16(lo))
		var qh uint32
		var qs [16]byte
		for i := 0; i < 16; i++ {
			a := uint8(min(levels, float32(math.Floor(float64((blk[i]-lo)*id+0.5)))))
			c := uint8(min(levels, float32(math.Floor(float64((blk[16+i]-lo)*id+0.5)))))
			qs[i] = a&0xF | (c&0xF)<<4
			qh |= uint32(a>>4) << i
			qh |= uint32(c>>4) << (i + 16)
		}
		if bits == 5 {
			out = binary.LittleEndian.AppendUint32(out, qh)
		}
		out = append(out, qs[:]...)
	}
	return out
}

// quantLevel rounds v/step to an integer in [lo, hi] (0 if step is 0).
func quantLevel(v, step float32, lo, hi int) int {
	if step == 0 {
		return 0
	}
	return min(hi, max(lo, int(roundHalfAway(v/step))))
}

// encodeQ2K: per 16 values a 4-bit scale and 4-bit min (relative to the
// block's f16 d and dmin) and 2-bit quants.
func encodeQ2K(vals []float32) []byte {
	var out []byte
	for b := 0; b < len(vals)/qkK; b++ {
		x := vals[b*qkK : (b+1)*qkK]
		var scale, mins [16]float32
		var maxScale, maxMin float32
		for s := 0; s < 16; s++ {
			lo, hi := x[s*16], x[s*16]
			for _, v := range x[s*16 : s*16+16] {
				lo, hi = min(lo, v), max(hi, v)
			}
			lo = min(lo, 0)
			scale[s], mins[s] = (hi-lo)/3, -lo
			maxScale, maxMin = max(maxScale, scale[s]), max(maxMin, mins[s])
		}
		dh, mh := F32ToF16(maxScale/15), F32ToF16(maxMin/15)
		d, dmin := f16Table[dh], f16Table[mh]
		var scales [16]byte
		var q [qkK]uint8
		for s := 0; s < 16; s++ {
			sc := quantLevel(scale[s], d, 0, 15)
			mn := quantLevel(mins[s], dmin, 0, 15)
			scales[s] = byte(sc) | byte(mn)<<4
			step, off := d*float32(sc), dmin*float32(mn)
			for i := 0; i < 16; i++ {
				q[s*16+i] = uint8(quantLevel(x[s*16+i]+off, step, 0, 3))
			}
		}
		var qs [64]byte
		for e := 0; e < qkK; e++ {
			n, j, h, l := e/128, (e%128)/32, (e%32)/16, e%16
			qs[32*n+16*h+l] |= q[e] << (2 * j)
		}
		out = append(out, scales[:]...)
		out = append(out, qs[:]...)
		out = binary.LittleEndian.AppendUint16(out, dh)
		out = binary.LittleEndian.AppendUint16(out, mh)
	}
	return out
}

// encodeQ3K: per 16 values a signed 6-bit scale (relative to the block's
// f16 d) and 3-bit quants in [-4, 3] (2 low bits in qs, the high bit in
// hmask).
func encodeQ3K(vals []float32) []byte {
	var out []byte
	for b := 0; b < len(vals)/qkK; b++ {
		x := vals[b*qkK : (b+1)*qkK]
		var scale [16]float32
		var maxScale float32
		for s := 0; s < 16; s++ {
			scale[s] = signedMax(x[s*16:s*16+16]) / -4
			maxScale = max(maxScale, float32(math.Abs(float64(scale[s]))))
		}
		dh := F32ToF16(maxScale / 31)
		d := f16Table[dh]
		var sc12 [12]byte
		var hm [32]byte
		var qs [64]byte
		for s := 0; s < 16; s++ {
			sc := quantLevel(scale[s], d, -32, 31)
			u := uint8(sc + 32)
			if s < 8 {
				sc12[s] |= u & 0xF
			} else {
				sc12[s-8] |= (u & 0xF) << 4
			}
			sc12[8+s%4] |= (u >> 4) << (2 * (s / 4))
			step := d * float32(sc)
			for i := 0; i < 16; i++ {
				e := s*16 + i
				v := uint8(quantLevel(x[e], step, -4, 3) + 4)
				n, j, h, l := e/128, (e%128)/32, (e%32)/16, e%16
				qs[32*n+16*h+l] |= (v & 3) << (2 * j)
				hm[16*h+l] |= (v >> 2) << (4*n + j)
			}
		}
		out = append(out, hm[:]...)
		out = append(out, qs[:]...)
		out = append(out, sc12[:]...)
		out = binary.LittleEndian.AppendUint16(out, dh)
	}
	return out
}

// encodeQ45K writes Q4_K (or Q5_K when five): per 32 values a 6-bit scale
// and min (relative to the block's f16 d and dmin) and 4- or 5-bit quants.
func encodeQ45K(vals []float32, five bool) []byte {
	levels := 15
	if five {
		levels = 31
	}
	var out []byte
	for b := 0; b < len(vals)/qkK; b++ {
		x := vals[b*qkK : (b+1)*qkK]
		var scale, mins [8]float32
		var maxScale, maxMin float32
		for s := 0; s < 8; s++ {
			lo, hi := x[s*32], x[s*32]
			for _, v := range x[s*32 : s*32+32] {
				lo, hi = min(lo, v), max(hi, v)
			}
			lo = min(lo, 0)
			scale[s], mins[s] = (hi-lo)/float32(levels), -lo
			maxScale, maxMin = max(maxScale, scale[s]), max(maxMin, mins[s])
		}
		dh, mh := F32ToF16(maxScale/63), F32ToF16(maxMin/63)
		d, dmin := f16Table[dh], f16Table[mh]
		var sc, mn [8]uint8
		var q [qkK]uint8
		for s := 0; s < 8; s++ {
			sc[s] = uint8(quantLevel(scale[s], d, 0, 63))
			mn[s] = uint8(quantLevel(mins[s], dmin, 0, 63))
			step, off := d*float32(sc[s]), dmin*float32(mn[s])
			for i := 0; i < 32; i++ {
				q[s*32+i] = uint8(quantLevel(x[s*32+i]+off, step, 0, levels))
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
		if five {
			var qh [32]byte
			for c := 0; c < 4; c++ {
				for l := 0; l < 32; l++ {
					qh[l] |= (q[64*c+l]>>4)<<(2*c) | (q[64*c+32+l]>>4)<<(2*c+1)
				}
			}
			out = append(out, qh[:]...)
		}
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				out = append(out, q[64*c+l]&0xF|(q[64*c+32+l]&0xF)<<4)
			}
		}
	}
	return out
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

// Mixes are the per-tensor type recipes the generator can write (name →
// base type), after llama.cpp's: Q6_K for the output projection (the
// embeddings when tied) and for attn_v and ffn_down in the first and last
// eighth of the layers and every third one between; the base type elsewhere.
var Mixes = map[string]gguf.TensorType{"q4_k_m": gguf.Q4_K, "q5_k_m": gguf.Q5_K}

func (o GenOptions) mixType(name string, base gguf.TensorType) gguf.TensorType {
	if _, ok := Mixes[o.Mix]; !ok {
		return base
	}
	if name == "output.weight" || (o.Tied && name == "token_embd.weight") {
		return gguf.Q6_K
	}
	var layer int
	if _, err := fmt.Sscanf(name, "blk.%d.", &layer); err == nil &&
		(strings.HasSuffix(name, "attn_v.weight") || strings.HasSuffix(name, "ffn_down.weight")) {
		n := o.Layers
		if layer < n/8 || layer >= 7*n/8 || (layer-n/8)%3 == 2 {
			return gguf.Q6_K
		}
	}
	return base
}
