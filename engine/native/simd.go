package native

// useSIMD selects the assembly kernels where the CPU has them; tests clear
// it to run the portable Go kernels and compare bits.
var useSIMD = true

// lanesF32 accumulates a·b (len a multiple of 8) into eight lanes.
func lanesF32(a, b []float32, l *[8]float32) {
	if haveAVX2 && useSIMD {
		lanesF32AVX2(&a[0], &b[0], len(a), l)
		return
	}
	lanesF32Go(a, b, l)
}

// simd32 runs the SIMD kernel of a 32-element block type, if there is one.
func (m *Matrix) simd32(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }

// simdK runs the SIMD kernel of a K-quant type, if there is one.
func (m *Matrix) simdK(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }

// simdHalf runs the SIMD kernel of F16/BF16, if there is one.
func (m *Matrix) simdHalf(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }
