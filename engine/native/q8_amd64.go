package native

import "golang.org/x/sys/cpu"

//go:noescape
func dotQ8SumsAVX2(w *byte, x *int8, n int, sums *int32)

//go:noescape
func dotRowQ8x4AVX2(w *byte, x0, x1, x2, x3 *int8, xd *float32, dtab *float32, nb int, out *float32)

var (
	haveAVX2 = cpu.X86.HasAVX2
	haveF16C = cpu.X86.HasAVX2 && hasF16C()
)

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

//go:noescape
func lanesF32AVX2(a, b *float32, n int, l *[8]float32)

func cpuid(leaf uint32) (eax, ebx, ecx, edx uint32)

// hasF16C reads CPUID leaf 1, ECX bit 29 (golang.org/x/sys/cpu has no flag).
func hasF16C() bool {
	_, _, ecx, _ := cpuid(1)
	return ecx&(1<<29) != 0
}
