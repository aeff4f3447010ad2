package train

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/agoranet/agora/chain/sampling"
)

// AuditSimParams describe a training run on the job market and a
// provider that fakes a fraction of its steps.
type AuditSimParams struct {
	Steps         int     // N, steps of the run
	Interval      int     // K, steps per checkpoint
	PerEpoch      int     // checkpoints the provider commits per epoch (its speed × the epoch's length)
	FloorBps      uint64  // the chain's audit floor (3 % by default)
	CeilingBps    uint64  // and ceiling (20 %)
	ReputationBps uint64  // the provider's reputation (10000: full, the floor's rate)
	SkipFraction  float64 // f, the fraction of steps faked
	// Packed: the faked steps fill whole intervals (the fewest wrong
	// checkpoints, the skipper's best strategy); otherwise they are drawn
	// uniformly among all steps.
	Packed bool
	Trials int
	Seed   uint64
}

// AuditSimResult is what the chain's own sampler did over the trials.
type AuditSimResult struct {
	AuditSimParams
	RateBps         uint64  // the sampling rate the reputation gives
	Caught          float64 // fraction of trials with at least one wrong checkpoint sampled
	AuditShare      float64 // steps re-executed by one auditor / steps trained (mean)
	SampledPerEpoch float64 // mean checkpoints sampled per epoch
}

// SimulateAudits measures, with the chain's own sampling functions
// (chain/sampling: the rate a reputation gives, how many of an epoch's
// checkpoints that rate selects — at least one — and which), how often a
// provider faking a fraction of its training steps is caught and what share
// of the training compute the auditors re-execute: a validator re-executes
// a sampled checkpoint's whole interval from the provider's previous
// checkpoint, and exactly the intervals holding a faked step are wrong.
// Each trial draws the faked steps and each epoch's seed afresh.
func SimulateAudits(p AuditSimParams, progress io.Writer) (AuditSimResult, error) {
	if p.Steps < 1 || p.Interval < 1 || p.PerEpoch < 1 || p.Trials < 1 || p.SkipFraction <= 0 || p.SkipFraction > 1 {
		return AuditSimResult{}, fmt.Errorf("audit simulation: want steps, interval, per-epoch and trials ≥ 1 and 0 < skip ≤ 1")
	}
	r := AuditSimResult{AuditSimParams: p, RateBps: sampling.Rate(p.FloorBps, p.CeilingBps, p.ReputationBps)}
	rng := rand.New(rand.NewPCG(p.Seed, 0x7a11))
	intervals := (p.Steps + p.Interval - 1) / p.Interval
	provider := []byte("provider-address-20b")
	var caught, reexec, sampled, epochs int
	for trial := range p.Trials {
		wrong := make([]bool, intervals)
		faked := max(int(p.SkipFraction*float64(p.Steps)+0.5), 1)
		if p.Packed {
			for _, i := range rng.Perm(intervals)[:min((faked+p.Interval-1)/p.Interval, intervals)] {
				wrong[i] = true
			}
		} else {
			for _, s := range rng.Perm(p.Steps)[:faked] {
				wrong[s/p.Interval] = true
			}
		}
		hit := false
		for first := 0; first < intervals; first += p.PerEpoch {
			n := min(p.PerEpoch, intervals-first)
			var seed [32]byte
			binary.BigEndian.PutUint64(seed[:], rng.Uint64())
			seed = sha256.Sum256(seed[:])
			for _, i := range sampling.Sample(seed[:], provider, uint64(n), p.FloorBps, p.CeilingBps, p.ReputationBps) {
				k := first + int(i)
				reexec += min(p.Interval, p.Steps-k*p.Interval)
				sampled++
				hit = hit || wrong[k]
			}
			epochs++
		}
		if hit {
			caught++
		}
		if progress != nil && (trial+1)%max(p.Trials/10, 1) == 0 {
			fmt.Fprintf(progress, "\r  %d/%d trials", trial+1, p.Trials)
		}
	}
	if progress != nil {
		fmt.Fprintln(progress)
	}
	r.Caught = float64(caught) / float64(p.Trials)
	r.AuditShare = float64(reexec) / float64(p.Trials) / float64(p.Steps)
	r.SampledPerEpoch = float64(sampled) / float64(epochs)
	return r, nil
}
