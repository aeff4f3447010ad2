package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
)

// BenchResult is what BenchTraining measures.
type BenchResult struct {
	Preset           string  `json:"preset"`
	Params           int     `json:"params"`
	Threads          int     `json:"threads"`
	BatchTokens      int     `json:"batch_tokens"`
	StepMS           float64 `json:"step_ms"`
	TrainTokensPerS  float64 `json:"train_tokens_per_second"`
	ForwardTokensPS  float64 `json:"trainer_forward_tokens_per_second"`
	PrefillTokensPS  float64 `json:"engine_prefill_tokens_per_second"`
	TrainVsPrefill   float64 `json:"train_vs_prefill"` // training tok/s ÷ prefill tok/s
	HashMS           float64 `json:"hash_ms"`
	HashShareEvery1  float64 `json:"hash_share_every_step"` // of a step's time
	HashShareEvery10 float64 `json:"hash_share_every_10"`
}

// BenchTraining measures a preset's training speed (steps on a fixed
// batch of seeded tokens) against the engine's prefill of the same model
// (written to dir as F32 and loaded), on the same threads, and the state
// hash's cost. Progress goes to progress (may be nil).
func BenchTraining(preset string, threads, steps int, dir string, progress io.Writer) (*BenchResult, error) {
	p, ok := Presets[preset]
	if !ok {
		return nil, fmt.Errorf("unknown preset %q", preset)
	}
	if progress == nil {
		progress = io.Discard
	}
	cfg, hyp := p.Config, p.Hyper
	hyp.Steps, hyp.Seed = 1000, 1
	r := native.NewRNG(3)
	toks := make([]int, 64*cfg.SeqLen+1)
	for i := range toks {
		toks[i] = int(r.Uint64() % uint64(cfg.Vocab))
	}
	tr, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, 1), threads)
	if err != nil {
		return nil, err
	}
	res := &BenchResult{Preset: preset, Params: cfg.ParamCount(), Threads: threads, BatchTokens: hyp.Batch * cfg.SeqLen}
	fmt.Fprintf(progress, "training %s (%.2fM parameters), %d steps of %d tokens, %d threads ...\n", preset, float64(res.Params)/1e6, steps, res.BatchTokens, threads)
	tr.TrainStep() // warm (allocations)
	start := time.Now()
	for range steps {
		tr.TrainStep()
	}
	step := time.Since(start) / time.Duration(steps)
	res.StepMS = step.Seconds() * 1000
	res.TrainTokensPerS = float64(res.BatchTokens) / step.Seconds()

	const hashes = 5
	start = time.Now()
	for range hashes {
		tr.Hash()
	}
	hash := time.Since(start) / hashes
	res.HashMS = hash.Seconds() * 1000
	res.HashShareEvery1 = hash.Seconds() / step.Seconds()
	res.HashShareEvery10 = res.HashShareEvery1 / 10

	fmt.Fprintf(progress, "engine prefill of the same model ...\n")
	path := filepath.Join(dir, "bench-train.gguf")
	if err := tr.WriteGGUF(path, gguf.F32, "bench"); err != nil {
		return nil, err
	}
	defer os.Remove(path)
	m, err := native.Load(path, native.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	window := toks[:cfg.SeqLen]
	if _, err := m.NewSession().Forward(window, true); err != nil {
		return nil, err
	}
	const prefills = 8
	start = time.Now()
	for range prefills {
		if _, err := m.NewSession().Forward(window, true); err != nil {
			return nil, err
		}
	}
	res.PrefillTokensPS = float64(prefills*cfg.SeqLen) / time.Since(start).Seconds()
	start = time.Now()
	for range prefills {
		tr.Forward(window, 1)
	}
	res.ForwardTokensPS = float64(prefills*cfg.SeqLen) / time.Since(start).Seconds()
	res.TrainVsPrefill = res.TrainTokensPerS / res.PrefillTokensPS
	return res, nil
}
