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
