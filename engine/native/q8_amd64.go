package native

import "golang.org/x/sys/cpu"

//go:noescape
func dotQ8SumsAVX2(w *byte, x *int8, n int, sums *int32)

//go:noescape
func dotRowQ8x4AVX2(w *byte, x0, x1, x2, x3 *int8, xd *float32, dtab *float32, nb int, out *float32)

//go:noescape
func dotQ8Sums4AVX2(w *byte, x0, x1, x2, x3 *int8, n int, sums *int32)

var haveAVX2 = cpu.X86.HasAVX2

// dotQ8Sums writes, for each of the n blocks, the int32 sum of weight × activation
// products. Integer sums are exact, so the AVX2 and Go versions agree bit for bit.
func dotQ8Sums(w []byte, x []int8, sums []int32) {
	n := len(sums)
	if n == 0 {
		return
	}
	if haveAVX2 {
		_ = w[n*34-1]
		_ = x[n*32-1]
		dotQ8SumsAVX2(&w[0], &x[0], n, &sums[0])
		return
	}
	dotQ8SumsGo(w, x, sums)
}

// dotQ8Sums4 is dotQ8Sums for four activation rows at once (xs[t] from block
// 0 of the range): sums[4*b+t] is block b's sum against xs[t], each exactly
// what dotQ8Sums gives for that row.
func dotQ8Sums4(w []byte, xs *[4][]int8, sums []int32) {
	n := len(sums) / 4
	if n == 0 {
		return
	}
	if haveAVX2 {
		_ = w[n*34-1]
		for t := range xs {
			_ = xs[t][n*32-1]
		}
		dotQ8Sums4AVX2(&w[0], &xs[0][0], &xs[1][0], &xs[2][0], &xs[3][0], n, &sums[0])
		return
	}
	dotQ8Sums4Go(w, xs, sums)
}
