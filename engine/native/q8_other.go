//go:build !amd64

package native

var haveAVX2 = false

func dotRowQ8x4AVX2(w *byte, x0, x1, x2, x3 *int8, xd *float32, dtab *float32, nb int, out *float32) {
	panic("no AVX2")
}

func dotQ8Sums(w []byte, x []int8, sums []int32) { dotQ8SumsGo(w, x, sums) }

func lanesF32AVX2(a, b *float32, n int, l *[8]float32) { panic("no AVX2") }
