package native

import (
	"math"
	"testing"
)

// TestQ8SumsAsmMatchesGo: the assembly block sums equal the Go ones exactly,
// including the extreme values -128 and 127.
func TestQ8SumsAsmMatchesGo(t *testing.T) {
	rng := NewRNG(5)
	const n = 37
	w := make([]byte, n*34)
	x := make([]int8, n*32)
	for i := range w {
		w[i] = byte(rng.Uint64())
	}
	for i := range x {
		x[i] = int8(rng.Uint64())
	}
	w[2], x[0] = 0x80, -128
	a, b := make([]int32, n), make([]int32, n)
	dotQ8Sums(w, x, a)
	dotQ8SumsGo(w, x, b)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("block %d: %d vs %d", i, a[i], b[i])
		}
	}
}

func TestF16Conversion(t *testing.T) {
	for _, f := range []float32{0, 1, -2.5, 65504, 6.1e-5, 5.96e-8, 1e-9, 3.14159} {
		h := F32ToF16(f)
		back := f16Table[h]
		if f != 0 && math.Abs(float64(back-f))/math.Abs(float64(f)) > 1e-3 && f > 6e-5 {
			t.Fatalf("%g -> %#04x -> %g", f, h, back)
		}
	}
	for h := 0; h < 1<<16; h++ { // every finite half survives a round trip
		f := f16Table[h]
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToF16(f); got != uint16(h) && !(f == 0 && got&0x7fff == 0) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, got)
		}
	}
}

func TestExpf(t *testing.T) {
	for x := float32(-30); x <= 30; x += 0.37 {
		want := math.Exp(float64(x))
		if got := float64(expf(x)); math.Abs(got-want)/want > 1e-6 {
			t.Fatalf("expf(%g) = %g, want %g", x, got, want)
		}
	}
}
