//go:build !amd64

package native

var haveAVX2, haveF16C = false, false

func lanesF32AVX2(a, b *float32, n int, l *[8]float32) { panic("no AVX2") }
