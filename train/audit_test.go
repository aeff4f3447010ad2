package train

import (
	"math"
	"testing"
)

// TestSimulateAudits: the simulation follows the chain's sampler — the
// audit share is the rate the reputation gives, rounded up per epoch (at
// least one checkpoint per epoch), and detection matches the closed form
// 1 − Π over epochs of C(n−w, s)/C(n, s) within sampling noise.
func TestSimulateAudits(t *testing.T) {
	for _, c := range []struct {
		name               string
		steps, k, perEpoch int
		rep                uint64
		shareLo, shareHi   float64
		caughtLo, caughtHi float64
	}{
		// 3 % of 100 checkpoints an epoch = 3 sampled: the share is 3 %
		// (the last, partial epoch rounds up), a 5 %-skipper is caught
		// with ≈ 1 − 0.95^91 ≈ 99.1 %.
		{"floor, 100 an epoch", 3040, 1, 100, 10000, 0.0295, 0.0315, 0.985, 0.997},
		// 20 an epoch: ceil(0.6) = 1 sampled, a 5 % share.
		{"floor, 20 an epoch", 3040, 1, 20, 10000, 0.0495, 0.0505, 0.995, 1},
		// A new provider (reputation 0) is sampled at the ceiling, 20 %.
		{"ceiling", 1000, 1, 100, 0, 0.199, 0.201, 0.999, 1},
		// A short run at the floor is not enough: 1,000 steps, 10 epochs
		// of 3: ≈ 1 − 0.95^30 ≈ 79 %.
		{"short run", 1000, 1, 100, 10000, 0.0295, 0.0305, 0.74, 0.83},
	} {
		r, err := SimulateAudits(AuditSimParams{Steps: c.steps, Interval: c.k, PerEpoch: c.perEpoch, FloorBps: 300, CeilingBps: 2000,
			ReputationBps: c.rep, SkipFraction: 0.05, Trials: 2000, Seed: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.AuditShare < c.shareLo || r.AuditShare > c.shareHi || r.Caught < c.caughtLo || r.Caught > c.caughtHi || math.IsNaN(r.Caught) {
			t.Errorf("%s: share %.4f (want %.4f..%.4f), caught %.4f (want %.3f..%.3f)", c.name, r.AuditShare, c.shareLo, c.shareHi, r.Caught, c.caughtLo, c.caughtHi)
		}
	}
	// Packed into whole intervals of K = 4, 152 faked steps are only 38
	// wrong checkpoints of 760, caught with ≈ 1 − 0.97^38 ≈ 69 % (at
	// random they touch ≈ 140 and are caught with > 99 %).
	r, err := SimulateAudits(AuditSimParams{Steps: 3040, Interval: 4, PerEpoch: 100, FloorBps: 300, CeilingBps: 2000,
		ReputationBps: 10000, SkipFraction: 0.05, Packed: true, Trials: 2000, Seed: 1}, nil)
	if err != nil || r.Caught > 0.75 || r.Caught < 0.62 {
		t.Errorf("packed at K = 4: caught %.4f (%v), want ≈ 1 − 0.97^38 ≈ 0.69", r.Caught, err)
	}
	if _, err := SimulateAudits(AuditSimParams{Steps: 10, Interval: 1, PerEpoch: 1, Trials: 1}, nil); err == nil {
		t.Error("a zero skip fraction was accepted")
	}
}
