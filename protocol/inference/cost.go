package inference

import "math/bits"

// Cost is what a request with these token counts costs at these prices
// (uagr per 1,000 tokens), rounded up, saturating at the largest uint64.
// A provider bills a receipt's amount with it and a gateway checks it: both
// must compute the same number.
func Cost(promptTokens, completionTokens int, priceIn, priceOut uint64) uint64 {
	hi1, lo1 := bits.Mul64(uint64(promptTokens), priceIn)
	hi2, lo2 := bits.Mul64(uint64(completionTokens), priceOut)
	lo, c := bits.Add64(lo1, lo2, 0)
	if hi1 != 0 || hi2 != 0 || c != 0 || lo > ^uint64(0)-999 {
		return ^uint64(0)
	}
	return (lo + 999) / 1000
}
