package bench

import (
	"io"
	"testing"
)

// A short run of the audit simulator: real re-execution must reject every
// fabricated transcript and accept every honest one, no honest epoch may be
// slashed, and detection must follow the sampling rate.
func TestVerifySimulator(t *testing.T) {
	res, err := RunVerify(VerifyOptions{Trials: 300, RequestsPerEpoch: 100, HonestEpochs: 40, Pool: 6, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if res.DetectionPerAudit != 1 || res.HonestAccepted != 1 {
		t.Fatalf("re-execution: %.3f of fabrications rejected, %.3f of honest transcripts accepted", res.DetectionPerAudit, res.HonestAccepted)
	}
	if res.FalseSlashes != 0 || res.FinalReputation != 10000 || res.HonestRequests != 4000 {
		t.Fatalf("honest run: %d false slashes, reputation %d, %d requests", res.FalseSlashes, res.FinalReputation, res.HonestRequests)
	}
	// 40 epochs: 10 climbing from 20 % to 3 %, then 30 at 3 samples each.
	if res.HonestChecks < 30*3+10*3 || res.HonestChecks > 30*3+10*20 {
		t.Fatalf("honest run: %d re-executions", res.HonestChecks)
	}
	if len(res.Rows) != 6 {
		t.Fatalf("%d detection rows", len(res.Rows))
	}
	for _, r := range res.Rows {
		if r.CheatRate == 0.20 && r.CaughtBy3100 < 0.99 {
			t.Fatalf("20 %% cheating caught within 3,100 requests in only %.3f of trials", r.CaughtBy3100)
		}
		if r.CheatRate == 0.01 && r.StartRep == 10000 && (r.CaughtBy3100 > 0.8 || r.CaughtBy3100 < 0.4) {
			t.Fatalf("1 %% cheating at the floor rate: %.3f caught (analytic %.3f)", r.CaughtBy3100, r.Analytic3100)
		}
	}
}

// The brief's target: ≥ 99 % chance to catch a provider cheating on ≥ 5 % of
// requests within ~3,100 requests at ≤ 3 % extra compute.
func TestDetectionTarget(t *testing.T) {
	if p := detectionProbability(0.03, 0.05, 3100); p < 0.99 {
		t.Fatalf("detection %.4f", p)
	}
}
