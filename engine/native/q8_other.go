//go:build !amd64

package native

var haveAVX2, haveF16C = false, false

func lanesF32AVX2(a, b *float32, n int, l *[8]float32) { panic("no AVX2") }

func attnScoresAVX2(q, k *float32, hd, stride, cnt int, scale float32, out *float32) {
	panic("no AVX2")
}

func attnWeightedAVX2(out, v *float32, hd, stride, cnt int, w *float32) { panic("no AVX2") }

func lanesF32x4AVX2(w, x *float32, xstride, n int, l *[4][8]float32) { panic("no AVX2") }

func swigluAVX2(gate, up *float32, n int) { panic("no AVX2") }
