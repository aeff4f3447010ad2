package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/rewards"
	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/verify"
)

// VerifyOptions configure `agora bench verify`.
type VerifyOptions struct {
	Trials           int // detection trials per cheat rate and starting reputation
	RequestsPerEpoch int
	HonestEpochs     int // epochs of the honest provider (false-slash run)
	Pool             int // real transcripts generated (honest and fabricated)
	Out              io.Writer
}

// DetectionRow is one cheat rate's result.
type DetectionRow struct {
	CheatRate      float64 `json:"cheat_rate"`
	StartRep       uint64  `json:"start_reputation_bps"`
	CaughtBy3100   float64 `json:"caught_within_3100"` // fraction of trials
	Analytic3100   float64 `json:"analytic_within_3100"`
	MedianRequests int     `json:"median_requests_to_detection"`
	P99Requests    int     `json:"p99_requests_to_detection"`
}

// VerifyResult is what the simulator measured.
type VerifyResult struct {
	Machine           string         `json:"machine"`
	DetectionPerAudit float64        `json:"detection_per_audit"` // fabricated transcripts rejected by re-execution
	HonestAccepted    float64        `json:"honest_accepted"`
	GenerateMs        float64        `json:"generate_ms_per_request"`
	CheckMs           float64        `json:"check_ms_per_request"`
	OverheadFloor     float64        `json:"overhead_at_floor"`   // full reputation
	OverheadCeiling   float64        `json:"overhead_at_ceiling"` // new provider
	Rows              []DetectionRow `json:"detection"`
	HonestEpochs      int            `json:"honest_epochs"`
	HonestRequests    int            `json:"honest_requests"`
	HonestChecks      int            `json:"honest_checks"`
	FalseSlashes      int            `json:"false_slashes"`
	HonestOverhead    float64        `json:"honest_overhead"` // measured: check time ÷ generation time of the served requests
	FinalReputation   uint64         `json:"final_reputation_bps"`
	EmissionSum       uint64         `json:"emission_first_1000_epochs"`
}

// RunVerify simulates audits with the chain's sampling rule, reputation rule
// and the real bit-exact re-execution of the native engine: it measures how
// often re-execution catches a fabricated transcript and what it costs
// relative to serving, then how soon providers cheating on 1 %, 5 % and 20 %
// of their requests are caught, and whether an honest provider is ever
// slashed over many epochs.
func RunVerify(o VerifyOptions) (*VerifyResult, error) {
	p := types.DefaultParams()
	res := &VerifyResult{Machine: machine()}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	dir, err := os.MkdirTemp("", "agora-bench-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The served model (the demo model's shape) and a cheaper substitute with
	// the same tokenizer that a cheater would run instead.
	served, cheap := filepath.Join(dir, "served.gguf"), filepath.Join(dir, "cheap.gguf")
	if err := native.WriteRandomModel(served, native.GenOptions{Dim: 128, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 4096, Context: 1024, Seed: 1, Type: gguf.Q8_0, Name: "served"}); err != nil {
		return nil, err
	}
	if err := native.WriteRandomModel(cheap, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 4096, Context: 1024, Seed: 1, Type: gguf.Q8_0, Name: "cheap"}); err != nil {
		return nil, err
	}
	m, err := native.Load(served, native.Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	mc, err := native.Load(cheap, native.Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		return nil, err
	}

	// Real transcripts: honest ones from the served model, fabricated ones
	// from the cheap model (the same prompts, parameters and seeds).
	logf("bench verify: generating %d honest and %d fabricated transcripts ...", o.Pool, o.Pool)
	gen := func(model *native.Model, i int) (verify.Transcript, error) {
		params := native.SampleParams{Temperature: 0.8, TopK: 40, TopP: 0.95, Seed: uint64(1000 + i), MaxTokens: 32}
		prompt := tok.Encode(fmt.Sprintf("request %d: tell me about decentralized compute and the network", i), true, false)
		r, err := model.Generate(tok, prompt, params, nil)
		if err != nil {
			return verify.Transcript{}, err
		}
		t := verify.Transcript{PromptIDs: prompt, Params: params}
		for _, x := range r.Tokens {
			t.OutputIDs = append(t.OutputIDs, x.ID)
			t.Logprobs = append(t.Logprobs, x.Logprob)
		}
		return t, nil
	}
	// Serving and re-executing each request are timed back to back, on one
	// thread each, so both see the same machine.
	honest := make([]verify.Transcript, o.Pool)
	var genTime, checkTime time.Duration
	var accepted, rejected int
	for i := range honest {
		t0 := time.Now()
		if honest[i], err = gen(m, i); err != nil {
			return nil, err
		}
		t1 := time.Now()
		if verify.CheckNative(m, honest[i]) == nil {
			accepted++
		}
		genTime += t1.Sub(t0)
		checkTime += time.Since(t1)
	}
	res.GenerateMs = float64(genTime.Microseconds()) / 1000 / float64(o.Pool)
	res.CheckMs = float64(checkTime.Microseconds()) / 1000 / float64(o.Pool)
	for i := 0; i < o.Pool; i++ {
		t, err := gen(mc, i)
		if err != nil {
			return nil, err
		}
		if verify.CheckNative(m, t) != nil {
			rejected++
		}
	}
	res.HonestAccepted = float64(accepted) / float64(o.Pool)
	res.DetectionPerAudit = float64(rejected) / float64(o.Pool)
	ratio := res.CheckMs / res.GenerateMs
	res.OverheadFloor = float64(p.AuditFloorBps) / 10000 * ratio
	res.OverheadCeiling = float64(p.AuditCeilingBps) / 10000 * ratio
	logf("  re-execution: %.1f %% of fabricated transcripts rejected, %.1f %% of honest ones accepted; %.2f ms to check vs %.2f ms to serve a request",
		100*res.DetectionPerAudit, 100*res.HonestAccepted, res.CheckMs, res.GenerateMs)

	// Detection: the chain's sampling of a cheater's receipts, epoch after epoch.
	prov := types.AddressFromPubKey([]byte("bench-verify-cheating-provider!!!"))
	for _, f := range []float64{0.01, 0.05, 0.20} {
		for _, rep0 := range []uint64{10000, 0} {
			row := DetectionRow{CheatRate: f, StartRep: rep0, Analytic3100: detectionProbability(float64(sampling.Rate(p.AuditFloorBps, p.AuditCeilingBps, rep0))/10000, f*res.DetectionPerAudit, 3100)}
			var reqs []int
			within := 0
			for trial := 0; trial < o.Trials; trial++ {
				rng := rand.New(rand.NewPCG(uint64(trial), uint64(f*1e6)+rep0))
				rep, served := rep0, 0
				caught := false
				for epoch := 0; !caught && served < 1_000_000; epoch++ {
					seed := benchSeed(trial, epoch, f)
					cheats := make([]bool, o.RequestsPerEpoch)
					for i := range cheats {
						cheats[i] = rng.Float64() < f
					}
					for _, i := range sampling.Sample(seed[:], prov, uint64(o.RequestsPerEpoch), p.AuditFloorBps, p.AuditCeilingBps, rep) {
						// A sampled fabrication is caught when re-execution rejects it
						// (measured above on real transcripts).
						if cheats[i] && rng.Float64() < res.DetectionPerAudit {
							caught = true
						}
					}
					if caught {
						served += o.RequestsPerEpoch // caught at the end of this epoch's audit
						break
					}
					served += o.RequestsPerEpoch
					rep = registry.NextReputation(rep, p.ReputationStepBps, false)
				}
				reqs = append(reqs, served)
				if served <= 3100 {
					within++
				}
			}
			sort.Ints(reqs)
			row.CaughtBy3100 = float64(within) / float64(o.Trials)
			row.MedianRequests = reqs[len(reqs)/2]
			row.P99Requests = reqs[len(reqs)*99/100]
			res.Rows = append(res.Rows, row)
			logf("  cheating on %4.0f %% (reputation %3d %% at start): caught within 3,100 requests in %6.2f %% of %d trials (analytic %.2f %%), median %d requests, p99 %d",
				100*f, rep0/100, 100*row.CaughtBy3100, o.Trials, 100*row.Analytic3100, row.MedianRequests, row.P99Requests)
		}
	}

	// False slashes: an honest provider over many epochs, every sampled
	// receipt re-executed for real (receipt i maps onto pool transcript i mod
	// pool). Epochs are scheduled assuming no fault and their checks run on
	// every core; a fault (a false slash) resets the reputation, so the
	// schedule is recomputed from the epoch after it.
	logf("bench verify: an honest provider over %d epochs of %d requests, each sampled receipt re-executed ...", o.HonestEpochs, o.RequestsPerEpoch)
	honestProv := types.AddressFromPubKey([]byte("bench-verify-honest-provider!!!!"))
	type check struct{ epoch, receipt int }
	var done atomic.Int64
	rep := uint64(0)
	from := 0
	for from < o.HonestEpochs {
		var checks []check
		r := rep
		for epoch := from; epoch < o.HonestEpochs; epoch++ {
			seed := benchSeed(-1, epoch, 0)
			for _, i := range sampling.Sample(seed[:], honestProv, uint64(o.RequestsPerEpoch), p.AuditFloorBps, p.AuditCeilingBps, r) {
				checks = append(checks, check{epoch, int(i)})
			}
			r = registry.NextReputation(r, p.ReputationStepBps, false)
		}
		failed := make([]bool, len(checks))
		var wg sync.WaitGroup
		next := atomic.Int64{}
		stopLog := make(chan struct{})
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopLog:
					return
				case <-t.C:
					logf("  %d / %d re-executions", done.Load(), len(checks))
				}
			}
		}()
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j := int(next.Add(1)) - 1
					if j >= len(checks) {
						return
					}
					failed[j] = verify.CheckNative(m, honest[checks[j].receipt%len(honest)]) != nil
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		close(stopLog)
		firstFault := -1
		for j, c := range checks {
			if failed[j] {
				firstFault = c.epoch
				break
			}
		}
		for _, c := range checks {
			if firstFault < 0 || c.epoch <= firstFault {
				res.HonestChecks++
			}
		}
		if firstFault < 0 {
			res.HonestRequests += (o.HonestEpochs - from) * o.RequestsPerEpoch
			rep = r
			break
		}
		res.FalseSlashes++
		res.HonestRequests += (firstFault + 1 - from) * o.RequestsPerEpoch
		rep = registry.NextReputation(0, p.ReputationStepBps, true)
		from = firstFault + 1
	}
	res.HonestEpochs = o.HonestEpochs
	res.FinalReputation = rep
	// Audit compute ÷ serving compute, each re-execution costing what it cost
	// when timed beside serving above.
	res.HonestOverhead = float64(res.HonestChecks) * res.CheckMs / (float64(res.HonestRequests) * res.GenerateMs)
	for n := uint64(0); n < 1000; n++ {
		res.EmissionSum += rewards.Emission(p.InitialEpochEmission, p.HalvingIntervalEpochs, n)
	}
	logf("  %d requests, %d re-executions, %d false slashes; audit compute %.2f %% of serving compute (%.2f %% at the floor rate, %.2f %% at the ceiling); final reputation %d %%",
		res.HonestRequests, res.HonestChecks, res.FalseSlashes, 100*res.HonestOverhead, 100*res.OverheadFloor, 100*res.OverheadCeiling, rep/100)
	return res, nil
}

// detectionProbability is 1 − (1 − s·f)^M: the chance that auditing a
// fraction s of requests catches a provider that cheats on a fraction f of
// M requests. For the report's analytic column, never for consensus.
func detectionProbability(s, f float64, m int) float64 {
	return 1 - math.Pow(1-s*f, float64(m))
}

func benchSeed(trial, epoch int, f float64) [32]byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(int64(trial)))
	b = binary.BigEndian.AppendUint64(b, uint64(epoch))
	b = binary.BigEndian.AppendUint64(b, uint64(f*1e6))
	return sha256.Sum256(b)
}
