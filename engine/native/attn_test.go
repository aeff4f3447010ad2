package native

import (
	"math"
	"testing"
)

// TestAttentionKernelsMatchGo checks the assembly attention kernels give the
// portable Go code's bits for head sizes that take the 32-wide, the 8-wide
// and the scalar paths, with strided keys/values and one to many positions.
func TestAttentionKernelsMatchGo(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2: only the Go path exists")
	}
	defer func(v bool) { useSIMD = v }(useSIMD)
	rng := NewRNG(7)
	for _, hd := range []int{8, 16, 40, 64, 72, 128, 256, 12} {
		for _, cnt := range []int{1, 2, 7, 33} {
			stride := 3*hd + 8
			q := make([]float32, hd)
			kv := make([]float32, (cnt-1)*stride+hd)
			w := make([]float32, cnt)
			for i := range q {
				q[i] = float32(rng.Float64()*2 - 1)
			}
			for i := range kv {
				kv[i] = float32(rng.Float64()*4 - 2)
			}
			for i := range w {
				w[i] = float32(rng.Float64())
			}
			scale := float32(1 / math.Sqrt(float64(hd)))
			run := func(simd bool) ([]float32, []float32) {
				useSIMD = simd
				sc := make([]float32, cnt)
				attnScores(q, kv, stride, cnt, scale, sc)
				out := make([]float32, hd)
				for i := range out {
					out[i] = 99 // the kernel must overwrite, not accumulate
				}
				attnWeighted(out, kv, stride, w)
				return sc, out
			}
			goSc, goOut := run(false)
			simdSc, simdOut := run(true)
			for j := range goSc {
				// Independent reference: dotF32's order written out.
				var l [8]float32
				n8 := hd &^ 7
				for i := 0; i < n8; i++ {
					l[i%8] += float32(q[i] * kv[j*stride+i])
				}
				want := combine8(&l)
				for i := n8; i < hd; i++ {
					want += float32(q[i] * kv[j*stride+i])
				}
				want *= scale
				if math.Float32bits(goSc[j]) != math.Float32bits(want) || math.Float32bits(simdSc[j]) != math.Float32bits(want) {
					t.Fatalf("hd %d cnt %d score %d: go %v simd %v want %v", hd, cnt, j, goSc[j], simdSc[j], want)
				}
			}
			for d := 0; d < hd; d++ {
				var want float32
				for j := 0; j < cnt; j++ {
					want += float32(w[j] * kv[j*stride+d])
				}
				if math.Float32bits(goOut[d]) != math.Float32bits(want) || math.Float32bits(simdOut[d]) != math.Float32bits(want) {
					t.Fatalf("hd %d cnt %d out %d: go %v simd %v want %v", hd, cnt, d, goOut[d], simdOut[d], want)
				}
			}
		}
	}
}

// TestRoundHalfAwayI8 checks the fast rounding against roundHalfAway on
// every float32 in (-128, 128) with a fraction near .5 and on random ones.
func TestRoundHalfAwayI8(t *testing.T) {
	check := func(x float32) {
		if got, want := roundHalfAwayI8(x), int8(roundHalfAway(x)); got != want {
			t.Fatalf("roundHalfAwayI8(%v) = %d, want %d", x, got, want)
		}
	}
	for i := -127; i <= 127; i++ {
		h := float32(i) + 0.5
		for _, x := range []float32{h, math.Nextafter32(h, 200), math.Nextafter32(h, -200), float32(i), math.Nextafter32(float32(i), 200), math.Nextafter32(float32(i), -200)} {
			if x > -128 && x < 128 {
				check(x)
			}
		}
	}
	rng := NewRNG(3)
	for i := 0; i < 1_000_000; i++ {
		check(float32(rng.Float64()*255.99 - 127.995))
	}
}

// TestSwiGLUMatchesGo checks the assembly SwiGLU against the Go expression
// on values across expf's whole range, its limits (±88.7, -103.9 for -g)
// signed zeros, huge values and infinities (NaN results compare as NaN).
func TestSwiGLUMatchesGo(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2: only the Go path exists")
	}
	rng := NewRNG(11)
	n := 1 << 16
	g := make([]float32, n)
	u := make([]float32, n)
	special := []float32{0, float32(math.Copysign(0, -1)), 88.7, -88.7, 103.9, -103.9, 88.70001, -88.70001, 103.90001, -103.90001, 150, -150, 1e-30, -1e-30, 0.5, -0.5, 1e4, -1e4, 1e30, -1e30, float32(math.Inf(1)), float32(math.Inf(-1))}
	for i := range g {
		switch {
		case i < len(special):
			g[i] = special[i]
		case i%3 == 0:
			g[i] = float32(rng.Float64()*240 - 120)
		default:
			g[i] = float32(rng.Float64()*16 - 8)
		}
		u[i] = float32(rng.Float64()*4 - 2)
	}
	want := make([]float32, n)
	for i, x := range g {
		want[i] = float32(x/(1+expf(-x))) * u[i]
	}
	got := append([]float32(nil), g...)
	swiglu(got, u)
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("swiglu(%v, %v) = %v, Go %v", g[i], u[i], got[i], want[i])
		}
	}
}
