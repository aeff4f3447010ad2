package native

import "golang.org/x/sys/cpu"

var (
	haveAVX2 = cpu.X86.HasAVX2
	haveF16C = cpu.X86.HasAVX2 && hasF16C()
)

//go:noescape
func lanesF32AVX2(a, b *float32, n int, l *[8]float32)

func cpuid(leaf uint32) (eax, ebx, ecx, edx uint32)

// hasF16C reads CPUID leaf 1, ECX bit 29 (golang.org/x/sys/cpu has no flag).
func hasF16C() bool {
	_, _, ecx, _ := cpuid(1)
	return ecx&(1<<29) != 0
}

//go:noescape
func attnScoresAVX2(q, k *float32, hd, stride, cnt int, scale float32, out *float32)

//go:noescape
func attnWeightedAVX2(out, v *float32, hd, stride, cnt int, w *float32)

//go:noescape
func lanesF32x4AVX2(w, x *float32, xstride, n int, l *[4][8]float32)

//go:noescape
func swigluAVX2(gate, up *float32, n int)
