package native

import (
	"math"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

func TestF16Conversion(t *testing.T) {
	for _, f := range []float32{0, 1, -2.5, 65504, 6.1e-5, 5.96e-8, 1e-9, 3.14159} {
		h := F32ToF16(f)
		back := f16Table[h]
		if f != 0 && math.Abs(float64(back-f))/math.Abs(float64(f)) > 1e-3 && f > 6e-5 {
			t.Fatalf("%g -> %#04x -> %g", f, h, back)
		}
	}
	for h := 0; h < 1<<16; h++ { // every finite half survives a round trip
		f := f16Table[h]
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToF16(f); got != uint16(h) && !(f == 0 && got&0x7fff == 0) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, got)
		}
	}
}

func TestExpf(t *testing.T) {
	for x := float32(-30); x <= 30; x += 0.37 {
		want := math.Exp(float64(x))
		if got := float64(expf(x)); math.Abs(got-want)/want > 1e-6 {
			t.Fatalf("expf(%g) = %g, want %g", x, got, want)
		}
	}
}

// randomMatrix encodes rows×cols random values (with a few outliers, so
// quants reach their extremes) in typ.
func randomMatrix(t *testing.T, typ gguf.TensorType, rows, cols int, seed uint64) (*Matrix, []float32) {
	t.Helper()
	rng := NewRNG(seed)
	vals := make([]float32, rows*cols)
	for i := range vals {
		vals[i] = float32(rng.Float64()*2 - 1)
		if rng.Uint64()%61 == 0 {
			vals[i] *= 8
		}
	}
	data, err := encode(typ, vals, cols)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMatrix("w", gguf.TensorInfo{Dims: []uint64{uint64(cols), uint64(rows)}, Type: typ}, data)
	if err != nil {
		t.Fatal(err)
	}
	return m, vals
}

// TestKernelsAllTypes, for every weight type: the encoder/decoder round
// trip stays within the type's precision; each kernel result equals the
// float64 dot of the dequantized row with the dequantized activations (so
// the integer block sums are right); and tiles of 4 tokens and 1 token, SIMD
// and portable Go, all give the same bits.
func TestKernelsAllTypes(t *testing.T) {
	// round-trip error bound relative to the block's largest magnitude
	bound := map[gguf.TensorType]float64{gguf.F32: 0, gguf.F16: 1e-3, gguf.BF16: 8e-3, gguf.Q8_0: 1e-2,
		gguf.Q6_K: 4e-2, gguf.Q5_0: 5e-2, gguf.Q5_1: 5e-2, gguf.Q5_K: 6e-2, gguf.Q4_0: 1e-1, gguf.Q4_1: 1e-1,
		gguf.Q4_K: 1.2e-1, gguf.Q3_K: 2.5e-1, gguf.Q2_K: 4e-1}
	const rows, T = 5, 6
	for _, typ := range supportedTypes {
		for _, cols := range []int{768, 781} {
			if elems, _, _ := typ.BlockSize(); cols%elems != 0 {
				continue // 781: float types only, rows with a tail after the SIMD lanes
			}
			testKernel(t, typ, rows, cols, T, bound[typ])
		}
	}
}

func testKernel(t *testing.T, typ gguf.TensorType, rows, cols, T int, bound float64) {
	vnni := useVNNI // the CPU's choice; every mode below is tested against it
	defer func() { useSIMD, useVNNI = true, vnni }()
	{
		m, vals := randomMatrix(t, typ, rows, cols, uint64(typ)+1)
		row := make([]float32, cols)
		var worst float64
		for r := 0; r < rows; r++ {
			m.Row(r, row)
			for i, v := range row {
				scale := 8.0
				worst = math.Max(worst, math.Abs(float64(v-vals[r*cols+i]))/scale)
			}
		}
		if worst > bound {
			t.Fatalf("%s: round-trip error %.3g of the range, bound %.3g", typ, worst, bound)
		}
		rng := NewRNG(uint64(typ) + 100)
		x := make([]float32, T*cols)
		for i := range x {
			x[i] = float32(rng.Float64()*4 - 2)
		}
		qz := &quantized{}
		qz.prepare(m, x, T, 1)
		// the activations as the kernels see them
		xdeq := make([]float64, T*cols)
		for tk := 0; tk < T; tk++ {
			for i := 0; i < cols; i++ {
				switch m.act() {
				case actFloat:
					xdeq[tk*cols+i] = float64(x[tk*cols+i])
				case actQ8:
					xdeq[tk*cols+i] = float64(qz.xq[tk].q[i]) * float64(qz.xq[tk].d[i/32])
				case actQ8K:
					xdeq[tk*cols+i] = float64(qz.xk[tk].q[i]) * float64(qz.xk[tk].d[i/qkK])
				}
			}
		}
		refAll := make([][]float32, rows)
		for r := 0; r < rows; r++ {
			m.Row(r, row)
			ref := make([]float32, T)
			refAll[r] = ref
			for tk := 0; tk < T; tk++ {
				var one [4]float32
				useSIMD = false
				m.dotTile(r, qz, tk, 1, &one)
				useSIMD = true
				ref[tk] = one[0]
				var want, mag float64
				for i, w := range row {
					want += float64(w) * xdeq[tk*cols+i]
					mag += math.Abs(float64(w) * xdeq[tk*cols+i])
				}
				// Q4_1/Q5_1 use Q8_1's block sums rounded through f16
				if d := math.Abs(float64(one[0]) - want); d > 2e-3*mag+1e-5 {
					t.Fatalf("%s row %d token %d: kernel %g, float64 dot %g (magnitude %g)", typ, r, tk, one[0], want, mag)
				}
			}
			for _, mode := range []struct{ simd, vnni bool }{{true, vnni}, {true, false}, {false, false}} {
				simd := mode.simd
				useSIMD, useVNNI = mode.simd, mode.vnni
				for _, tile := range []int{4, 1} {
					for t0 := 0; t0+tile <= T; t0 += tile {
						var out [4]float32
						m.dotTile(r, qz, t0, tile, &out)
						for k := 0; k < tile; k++ {
							if math.Float32bits(out[k]) != math.Float32bits(ref[t0+k]) {
								t.Fatalf("%s row %d token %d: simd=%v vnni=%v tile %d gives %v, portable one-token %v", typ, r, t0+k, simd, useVNNI, tile, out[k], ref[t0+k])
							}
						}
					}
				}
			}
			useSIMD, useVNNI = true, vnni
		}
		// whole row ranges in one call, as matmul does
		for _, mode := range []struct{ simd, vnni bool }{{true, vnni}, {true, false}, {false, false}} {
			useSIMD, useVNNI = mode.simd, mode.vnni
			for _, tile := range []int{4, 1} {
				for t0 := 0; t0+tile <= T; t0 += tile {
					buf := make([]float32, rows*tile)
					m.dotRows(1, rows, qz, t0, tile, buf[:(rows-1)*tile])
					for r := 1; r < rows; r++ {
						for k := 0; k < tile; k++ {
							if got := buf[(r-1)*tile+k]; math.Float32bits(got) != math.Float32bits(refAll[r][t0+k]) {
								t.Fatalf("%s rows 1..%d: row %d token %d: simd=%v vnni=%v tile %d gives %v, one row %v", typ, rows, r, t0+k, useSIMD, useVNNI, tile, got, refAll[r][t0+k])
							}
						}
					}
				}
			}
		}
		useSIMD, useVNNI = true, vnni
	}
}

// TestExpfMatchesLdexp: the power-of-two scaling in expf gives exactly the
// bits of the math.Ldexp formulation it replaced, over the whole input range.
func TestExpfMatchesLdexp(t *testing.T) {
	ref := func(x float32) float32 {
		if x > 88.7 {
			return float32(math.Inf(1))
		}
		if x < -103.9 {
			return 0
		}
		n := float32(math.Floor(float64(float32(x*1.44269504088896341)) + 0.5))
		r := float32(x - float32(n*0.693359375))
		r = float32(r - float32(n*-2.12194440e-4))
		p := float32(1.9875691500e-4)
		p = float32(float32(p*r) + 1.3981999507e-3)
		p = float32(float32(p*r) + 8.3334519073e-3)
		p = float32(float32(p*r) + 4.1665795894e-2)
		p = float32(float32(p*r) + 1.6666665459e-1)
		p = float32(float32(p*r) + 5.0000001201e-1)
		y := float32(float32(float32(p*r)*r) + r)
		y = y + 1
		return float32(math.Ldexp(float64(y), int(n)))
	}
	rng := NewRNG(3)
	for i := 0; i < 2_000_000; i++ {
		x := float32(rng.Float64()*200 - 110)
		if i%4 == 0 {
			x = float32(rng.Float64()*30 - 20)
		}
		if got, want := expf(x), ref(x); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("expf(%v) = %v, Ldexp form %v", x, got, want)
		}
	}
}
