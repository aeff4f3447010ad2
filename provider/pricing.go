package provider

import "math/bits"

// Pricing is the provider's price policy. With Adaptive off, prices stay at
// the configured base. With it on, at each epoch boundary the provider looks
// at the last epoch's utilisation (queued and running requests over queue
// capacity, sampled every tick): at or above HighPermille it raises prices
// by StepPct, at or below LowPermille it lowers them, within
// [FloorPct, CeilingPct] of the base. A change is published on chain at
// once and charged from the next epoch, so gateways see a price before it
// applies and prices change at most once per epoch.
type Pricing struct {
	Adaptive     bool
	FloorPct     uint64 // default 50
	CeilingPct   uint64 // default 400
	StepPct      uint64 // default 10
	HighPermille uint64 // default 500
	LowPermille  uint64 // default 100
}

func (pr *Pricing) defaults() {
	if pr.FloorPct == 0 {
		pr.FloorPct = 50
	}
	if pr.CeilingPct == 0 {
		pr.CeilingPct = 400
	}
	if pr.StepPct == 0 {
		pr.StepPct = 10
	}
	if pr.HighPermille == 0 {
		pr.HighPermille = 500
	}
	if pr.LowPermille == 0 {
		pr.LowPermille = 100
	}
}

func pct(x, p uint64) uint64 {
	hi, lo := bits.Mul64(x, p)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo / 100
}

// NextPrice returns the price for the next epoch given the current one, the
// base, and the last epoch's average utilisation in permille.
func (pr Pricing) NextPrice(cur, base, utilPermille uint64) uint64 {
	if !pr.Adaptive || base == 0 {
		return cur
	}
	pr.defaults()
	lo, hi := max(pct(base, pr.FloorPct), 1), pct(base, pr.CeilingPct)
	next := cur
	switch {
	case utilPermille >= pr.HighPermille:
		next = max(pct(cur, 100+pr.StepPct), cur+1)
	case utilPermille <= pr.LowPermille:
		next = pct(cur, 100-min(pr.StepPct, 99))
	}
	return min(max(next, lo), hi)
}
