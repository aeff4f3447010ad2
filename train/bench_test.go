package train

import (
	"os"
	"strconv"
	"testing"
)

// TestBenchTraining (AGORA_BENCH_TRAIN=preset, AGORA_BENCH_THREADS=n)
// prints training tokens/s against the engine's prefill tokens/s on the
// same model and threads, and the state hash's cost per step (what
// `agora bench train` prints). Nothing is asserted on time.
func TestBenchTraining(t *testing.T) {
	name := os.Getenv("AGORA_BENCH_TRAIN")
	if name == "" {
		t.Skip("set AGORA_BENCH_TRAIN=tiny|small")
	}
	threads, steps := 2, 8
	if v := os.Getenv("AGORA_BENCH_THREADS"); v != "" {
		threads, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("AGORA_BENCH_STEPS"); v != "" {
		steps, _ = strconv.Atoi(v)
	}
	r, err := BenchTraining(name, threads, steps, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *r)
}

// TestBenchTrainingRuns: the benchmark's numbers are all there (tiny
// preset, one step).
func TestBenchTrainingRuns(t *testing.T) {
	r, err := BenchTraining("tiny", 1, 1, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Params != Presets["tiny"].Config.ParamCount() || !(r.TrainTokensPerS > 0) || !(r.PrefillTokensPS > 0) || !(r.HashMS > 0) || r.TrainVsPrefill != r.TrainTokensPerS/r.PrefillTokensPS {
		t.Fatalf("%+v", *r)
	}
	if _, err := BenchTraining("huge", 1, 1, t.TempDir(), nil); err == nil || err.Error() != `unknown preset "huge"` {
		t.Fatalf("unknown preset: %v", err)
	}
}
