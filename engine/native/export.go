package native

// Exported kernels for the trainer (package train): it computes its forward
// pass with the engine's own reductions, so a trained model's logits in the
// engine are the trainer's bits, and its SIMD and pure-Go paths agree as
// the engine's do.

// DotF32 is the engine's fixed-order float32 dot product (eight interleaved
// lanes combined pairwise, then the tail in order; AVX2 where the CPU has
// it, the same bits).
func DotF32(a, b []float32) float32 { return dotF32(a, b) }

// Expf is the engine's portable float32 exp (the same bits on every CPU).
func Expf(x float32) float32 { return expf(x) }

// RMSNorm writes x / rms(x) * w as the engine computes it.
func RMSNorm(out, x, w []float32, eps float32) { rmsnorm(out, x, w, eps) }

// SwiGLU sets g[i] = silu(g[i]) * u[i] as the engine computes it.
func SwiGLU(g, u []float32) { swiglu(g, u) }

// AttnScores sets out[j] = (q · k_j) * scale for cnt keys k_j = k[j*stride:].
func AttnScores(q, k []float32, stride, cnt int, scale float32, out []float32) {
	attnScores(q, k, stride, cnt, scale, out)
}

// AttnWeighted sets out = Σ_j w[j]·v_j (v_j = v[j*stride:]), in position order.
func AttnWeighted(out, v []float32, stride int, w []float32) { attnWeighted(out, v, stride, w) }

// RopeTables are the engine's RoPE cos/sin tables ([n][dims/2]) for base.
func RopeTables(n, dims int, base float64) (cos, sin []float32) {
	return ropeTables(n, dims, base, 1)
}

// SetSIMD turns the assembly kernels on or off (tests compare the paths'
// bits) and returns the previous setting. Not safe while kernels run.
func SetSIMD(on bool) (was bool) {
	was, useSIMD = useSIMD, on
	return was
}

// DotF32x4 sets out[k] = DotF32(w, x[k*len(w):(k+1)*len(w)]) for four
// rows of x stored back to back: the same bits as four DotF32 calls (the
// four-token kernel the engine's F32 prefill uses, four independent
// accumulator chains, so faster than one row at a time).
func DotF32x4(w, x []float32, out *[4]float32) {
	cols := len(w)
	x = x[:4*cols]
	if haveAVX2 && useSIMD && cols >= 8 {
		n8 := cols &^ 7
		var l [4][8]float32
		lanesF32x4AVX2(&w[0], &x[0], cols, n8, &l)
		for k := 0; k < 4; k++ {
			xk := x[k*cols : (k+1)*cols]
			s := combine8(&l[k])
			for i := n8; i < cols; i++ {
				s += float32(w[i] * xk[i])
			}
			out[k] = s
		}
		return
	}
	for k := 0; k < 4; k++ {
		out[k] = dotF32(w, x[k*cols:(k+1)*cols])
	}
}
