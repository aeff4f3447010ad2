package train

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
)

// TestBenchTraining (AGORA_BENCH_TRAIN=preset, AGORA_BENCH_THREADS=n)
// prints training tokens/s against the engine's prefill tokens/s on the
// same model and threads, and the state hash's cost per step. Numbers for
// BENCHMARKS.md; nothing is asserted on time.
func TestBenchTraining(t *testing.T) {
	name := os.Getenv("AGORA_BENCH_TRAIN")
	if name == "" {
		t.Skip("set AGORA_BENCH_TRAIN=tiny|small")
	}
	p := Presets[name]
	threads := 2
	if v := os.Getenv("AGORA_BENCH_THREADS"); v != "" {
		threads, _ = strconv.Atoi(v)
	}
	cfg, hyp := p.Config, p.Hyper
	hyp.Steps, hyp.Seed = 1000, 1
	toks := randTokens(64*cfg.SeqLen+1, cfg.Vocab, 3)
	tr, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, 1), threads)
	if err != nil {
		t.Fatal(err)
	}
	tr.TrainStep() // warm (allocations)
	steps := 8
	if v := os.Getenv("AGORA_BENCH_STEPS"); v != "" {
		steps, _ = strconv.Atoi(v)
	}
	start := time.Now()
	for range steps {
		tr.TrainStep()
	}
	stepTime := time.Since(start) / time.Duration(steps)
	trainTPS := float64(hyp.Batch*cfg.SeqLen) / stepTime.Seconds()

	start = time.Now()
	const hashes = 5
	for range hashes {
		tr.Hash()
	}
	hashTime := time.Since(start) / hashes

	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := tr.WriteGGUF(path, gguf.F32, "bench"); err != nil {
		t.Fatal(err)
	}
	m, err := native.Load(path, native.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	window := toks[:cfg.SeqLen]
	m.NewSession().Forward(window, true)
	const prefills = 8
	start = time.Now()
	for range prefills {
		if _, err := m.NewSession().Forward(window, true); err != nil {
			t.Fatal(err)
		}
	}
	prefillTPS := float64(prefills*cfg.SeqLen) / time.Since(start).Seconds()
	start = time.Now()
	for range prefills {
		tr.Forward(window, 1)
	}
	fwdTPS := float64(prefills*cfg.SeqLen) / time.Since(start).Seconds()
	t.Logf("preset %s (%.2fM params, batch %d x %d tokens), %d threads", name, float64(cfg.ParamCount())/1e6, hyp.Batch, cfg.SeqLen, threads)
	t.Logf("training: %.0f tokens/s (%.0f ms/step); trainer forward only %.0f tokens/s", trainTPS, stepTime.Seconds()*1000, fwdTPS)
	t.Logf("engine prefill (%d tokens, all logits): %.0f tokens/s; training = %.1f %% of prefill", cfg.SeqLen, prefillTPS, 100*trainTPS/prefillTPS)
	for _, k := range []int{1, 10, 100} {
		t.Logf("state hash %.1f ms = %.2f %% of a step; every %d steps: %.3f %%", hashTime.Seconds()*1000, 100*hashTime.Seconds()/stepTime.Seconds(), k, 100*hashTime.Seconds()/(float64(k)*stepTime.Seconds()))
	}
}
