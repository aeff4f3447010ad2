package types

import "math/bits"

func mul64(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }

// div128 divides the 128-bit hi:lo by d. The caller guarantees the quotient fits
// in 64 bits (a*b/d with b <= d), so hi < d and bits.Div64 does not panic.
func div128(hi, lo, d uint64) (q, r uint64) {
	if hi >= d {
		return ^uint64(0), 0
	}
	return bits.Div64(hi, lo, d)
}
