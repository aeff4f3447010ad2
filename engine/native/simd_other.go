//go:build !amd64

package native

var useVNNI = false

// simdRows: no assembly kernels on this architecture.
func (m *Matrix) simdRows(r0, r1 int, qz *quantized, t0, n int, out []float32) bool { return false }

// simdHalf: no assembly kernels on this architecture.
func (m *Matrix) simdHalf(r int, qz *quantized, t0, n int, out *[4]float32) bool { return false }
