package blobtree

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// TestDetectionMatchesFormula simulates, with the real Challenges, providers
// that lost a fraction f of a blob's chunks (whole 64 KiB chunks, a
// different set for each deal) answering k challenges per epoch, and checks
// the measured epochs until the first failed challenge against the formula:
// an epoch passes with probability (1 − f)^k, so the epoch of the first
// failure is geometric with mean 1 / (1 − (1 − f)^k), and the share caught
// in epoch 1 is 1 − (1 − f)^k. A challenge fails here exactly when it lands
// in a lost chunk (the store's proofs also fail on the first segment after a
// lost chunk, which only catches sooner). The seeds are fixed, so the test is
// deterministic; the tolerance is 4 standard errors of each estimate.
func TestDetectionMatchesFormula(t *testing.T) {
	const (
		runs   = 2000
		chunks = 1000 // a 62.5 MiB blob: 64,000 segments
		segs   = chunks * SegmentsPerChunk
	)
	t.Logf("%5s %3s %6s | %14s %14s | %16s %16s", "f", "k", "runs", "P(epoch 1)", "formula", "mean epochs", "formula")
	for _, c := range []struct {
		lostPermille int
		k            int
	}{
		{10, 16}, {50, 16}, {100, 16}, {250, 16},
		{100, 4}, {100, 8}, {100, 32},
	} {
		f := float64(c.lostPermille) / 1000
		lost := chunks * c.lostPermille / 1000
		pPass := math.Pow(1-f, float64(c.k))
		wantMean := 1 / (1 - pPass)
		wantFirst := 1 - pPass

		var sumEpochs, first int
		for run := uint64(0); run < runs; run++ {
			// The lost chunks: a random set of exactly `lost` chunks.
			rng := rand.New(rand.NewPCG(run, uint64(c.lostPermille)))
			gone := make([]bool, chunks)
			for _, ci := range rng.Perm(chunks)[:lost] {
				gone[ci] = true
			}
			seed := binary.BigEndian.AppendUint64([]byte("detection"), run)
			deal := run*1000 + uint64(c.lostPermille)
			epoch := uint64(1)
			for ; epoch < 100000; epoch++ {
				caught := false
				for _, i := range Challenges(seed, deal, epoch, segs, c.k) {
					if gone[i/SegmentsPerChunk] {
						caught = true
					}
				}
				if caught {
					break
				}
			}
			sumEpochs += int(epoch)
			if epoch == 1 {
				first++
			}
		}
		mean := float64(sumEpochs) / runs
		share := float64(first) / runs
		// Standard errors: the share is binomial, the epoch geometric
		// (variance pPass / (1 − pPass)²).
		seShare := math.Sqrt(wantFirst * pPass / runs)
		seMean := math.Sqrt(pPass/((1-pPass)*(1-pPass))) / math.Sqrt(runs)
		t.Logf("%4.1f%% %3d %6d | %14.4f %14.4f | %16.3f %16.3f", f*100, c.k, runs, share, wantFirst, mean, wantMean)
		if math.Abs(share-wantFirst) > 4*seShare {
			t.Errorf("f=%.3f k=%d: %.4f caught in epoch 1, formula %.4f (± %.4f)", f, c.k, share, wantFirst, 4*seShare)
		}
		if math.Abs(mean-wantMean) > 4*seMean {
			t.Errorf("f=%.3f k=%d: mean %.3f epochs until caught, formula %.3f (± %.3f)", f, c.k, mean, wantMean, 4*seMean)
		}
	}
}
