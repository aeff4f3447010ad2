//go:build !amd64

package native

// simd32 runs the SIMD kernel of a 32-element block type, if there is one.
func (m *Matrix) simd32(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }

// simdK runs the SIMD kernel of a K-quant type, if there is one.
func (m *Matrix) simdK(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }

// simdHalf runs the SIMD kernel of F16/BF16, if there is one.
func (m *Matrix) simdHalf(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }

var useVNNI = false
