package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
)

// randTokens is n token ids below v from a seeded stream.
func randTokens(n, v int, seed uint64) []int {
	r := native.NewRNG(seed)
	out := make([]int, n)
	for i := range out {
		out[i] = int(r.Uint64() % uint64(v))
	}
	return out
}

func smallRun(steps int) (Config, Hyper) {
	cfg := Config{Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 300, SeqLen: 16, Tied: true}
	hyp := Presets["tiny"].Hyper
	hyp.Batch, hyp.Steps, hyp.Warmup, hyp.Seed = 4, steps, 5, 42
	return cfg, hyp
}

// TestLearnsFixedBatch: on a fixed batch (the data is exactly one batch of
// random tokens) the loss falls from about ln(vocab) to near zero.
func TestLearnsFixedBatch(t *testing.T) {
	cfg, hyp := smallRun(150)
	hyp.LR, hyp.MinLR = 1e-2, 1e-3
	data := NewData(randTokens(hyp.Batch*cfg.SeqLen+1, cfg.Vocab, 5), cfg.SeqLen, 1)
	tr, err := New(cfg, hyp, data, 2)
	if err != nil {
		t.Fatal(err)
	}
	var first, last StepResult
	for s := 0; s < hyp.Steps; s++ {
		res, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = res
		}
		last = res
	}
	t.Logf("loss %.3f -> %.4f after %d steps (ln vocab %.3f)", first.Loss, last.Loss, hyp.Steps, math.Log(float64(cfg.Vocab)))
	if first.Loss < 5 || last.Loss > 0.05 {
		t.Fatalf("loss %.3f -> %.4f: want from about ln(%d) = %.2f to below 0.05", first.Loss, last.Loss, cfg.Vocab, math.Log(float64(cfg.Vocab)))
	}
}

// hashesEvery runs steps steps and returns the state hash every k steps.
func hashesEvery(t *testing.T, cfg Config, hyp Hyper, toks []int, threads, steps, k int) []string {
	t.Helper()
	tr, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, hyp.Seed), threads)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for s := 1; s <= steps; s++ {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
		if s%k == 0 {
			out = append(out, tr.Hash())
		}
	}
	return out
}

// TestDeterminism: the state hash every K steps is the same for every
// GOMAXPROCS / thread count and with the engine's SIMD kernels on or off;
// it changes every K steps, and with the seed. The data (6 windows, 4 per
// batch) crosses epochs, so the reshuffle is covered.
func TestDeterminism(t *testing.T) {
	cfg, hyp := smallRun(12)
	toks := randTokens(6*cfg.SeqLen+1, cfg.Vocab, 9)
	const steps, k = 12, 4
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer native.SetSIMD(native.SetSIMD(true))
	var ref []string
	for _, run := range []struct {
		procs, threads int
		simd           bool
	}{{1, 1, true}, {2, 2, true}, {1, 1, false}, {2, 2, false}, {2, 3, true}} {
		runtime.GOMAXPROCS(run.procs)
		native.SetSIMD(run.simd)
		got := hashesEvery(t, cfg, hyp, toks, run.threads, steps, k)
		t.Logf("GOMAXPROCS %d, threads %d, SIMD %v: %s", run.procs, run.threads, run.simd, short(got))
		if ref == nil {
			ref = got
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Errorf("GOMAXPROCS %d threads %d SIMD %v: hashes %v, want %v", run.procs, run.threads, run.simd, short(got), short(ref))
		}
	}
	for i := 1; i < len(ref); i++ {
		if ref[i] == ref[i-1] {
			t.Errorf("hash did not change between checkpoints %d and %d", i-1, i)
		}
	}
	hyp.Seed++
	if other := hashesEvery(t, cfg, hyp, toks, 2, steps, k); other[0] == ref[0] {
		t.Errorf("another seed gave the same hash")
	}
}

func short(hs []string) string {
	var s []string
	for _, h := range hs {
		s = append(s, h[:12])
	}
	return strings.Join(s, " ")
}

// TestResume: a run saved at step 5 and resumed (from the file, on fresh
// data) reaches the same hash at step 10 as an uninterrupted run; the
// checkpoint file's sha256 is the state hash; a checkpoint refuses other
// data; a corrupt file is refused.
func TestResume(t *testing.T) {
	cfg, hyp := smallRun(10)
	toks := randTokens(6*cfg.SeqLen+1, cfg.Vocab, 9)
	want := hashesEvery(t, cfg, hyp, toks, 2, 10, 5)

	tr, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, hyp.Seed), 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "run.ckpt")
	h, err := tr.Save(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != h || h != want[0] {
		t.Fatalf("checkpoint hash %s, file sha256 %x, uninterrupted run %s", h, sum, want[0])
	}
	tr2, err := Load(path, NewData(toks, cfg.SeqLen, hyp.Seed), 2)
	if err != nil {
		t.Fatal(err)
	}
	if tr2.Hash() != h {
		t.Fatalf("loaded state hash %s, saved %s", tr2.Hash(), h)
	}
	for range 5 {
		if _, err := tr2.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if got := tr2.Hash(); got != want[1] {
		t.Fatalf("resumed run at step 10: %s, uninterrupted %s", got, want[1])
	}
	other := append([]int(nil), toks...)
	other[3]++
	if _, err := Load(path, NewData(other, cfg.SeqLen, hyp.Seed), 1); err == nil || !strings.Contains(err.Error(), "not this data") {
		t.Errorf("load on other data: %v", err)
	}
	os.WriteFile(path, raw[:len(raw)-4], 0o600)
	if _, err := Load(path, NewData(toks, cfg.SeqLen, hyp.Seed), 1); err == nil || !strings.Contains(err.Error(), "bytes of state") {
		t.Errorf("load of a truncated checkpoint: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("checkpoint dir holds %d files, want 1 (no temporaries left)", len(entries))
	}
}

// TestGGUFInEngine: a trained model written as F32 GGUF loads in the engine
// and its logits for a window equal the trainer's forward pass bit for bit
// (the trainer computes with the engine's kernels in the engine's order);
// written as Q8_0 it loads and its logits stay close and agree on most
// argmaxes. Tied and untied output.
func TestGGUFInEngine(t *testing.T) {
	for _, tied := range []bool{true, false} {
		t.Run(fmt.Sprintf("tied=%v", tied), func(t *testing.T) {
			cfg, hyp := smallRun(5)
			cfg.Tied = tied
			toks := randTokens(6*cfg.SeqLen+1, cfg.Vocab, 9)
			tr, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, hyp.Seed), 2)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				tr.TrainStep()
			}
			window := toks[:cfg.SeqLen]
			want := append([]float32(nil), tr.Forward(window, 1)...)
			dir := t.TempDir()
			for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
				path := filepath.Join(dir, typ.String()+".gguf")
				if err := tr.WriteGGUF(path, typ, "test"); err != nil {
					t.Fatal(err)
				}
				m, err := native.Load(path, native.Options{Threads: 2})
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				logits, err := m.NewSession().Forward(window, true)
				m.Close()
				if err != nil {
					t.Fatal(err)
				}
				var diff, norm float64
				same, argmax := 0, 0
				for p, row := range logits {
					w := want[p*cfg.Vocab : (p+1)*cfg.Vocab]
					for i, v := range row {
						if math.Float32bits(v) == math.Float32bits(w[i]) {
							same++
						}
						diff = max(diff, math.Abs(float64(v-w[i])))
						norm = max(norm, math.Abs(float64(w[i])))
					}
					if argmaxOf(row) == argmaxOf(w) {
						argmax++
					}
				}
				total := len(logits) * cfg.Vocab
				t.Logf("%s: %d/%d logits bit-identical, max |diff| %.3g (max |logit| %.3g), argmax agrees at %d/%d positions", typ, same, total, diff, norm, argmax, len(logits))
				switch typ {
				case gguf.F32:
					if same != total {
						t.Errorf("F32: %d of %d logits differ from the trainer's (max %g)", total-same, total, diff)
					}
				default:
					if diff > 0.1*norm || argmax < len(logits)*3/4 {
						t.Errorf("%s: max diff %g of %g, argmax agrees at %d/%d", typ, diff, norm, argmax, len(logits))
					}
				}
			}
		})
	}
}

func argmaxOf(v []float32) int {
	b := 0
	for i, x := range v {
		if x > v[b] {
			b = i
		}
	}
	return b
}

// TestBadInput: invalid shapes, hyperparameters and data are refused with
// a clear error.
func TestBadInput(t *testing.T) {
	cfg, hyp := smallRun(5)
	toks := randTokens(6*cfg.SeqLen+1, cfg.Vocab, 9)
	for _, tc := range []struct {
		name string
		mod  func(*Config, *Hyper, *[]int)
		want string
	}{
		{"kv heads", func(c *Config, _ *Hyper, _ *[]int) { c.KVHeads = 3 }, "divide by kv heads"},
		{"vocab", func(c *Config, _ *Hyper, _ *[]int) { c.Vocab = 100 }, "at least 300"},
		{"batch", func(_ *Config, h *Hyper, _ *[]int) { h.Batch = 0 }, "invalid hyperparameters"},
		{"short data", func(_ *Config, _ *Hyper, d *[]int) { *d = (*d)[:10] }, "holds no window"},
		{"token id", func(_ *Config, _ *Hyper, d *[]int) { (*d)[4] = 300 }, "outside the vocabulary"},
	} {
		c, h, d := cfg, hyp, append([]int(nil), toks...)
		tc.mod(&c, &h, &d)
		_, err := New(c, h, NewData(d, c.SeqLen, 1), 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestBigram: probabilities by hand on a small stream, they sum to one,
// and the loss over a window is their mean negative log.
func TestBigram(t *testing.T) {
	toks := []int{0, 1, 0, 1, 0, 2}
	b := NewBigram(toks, 4)
	// c(0)=3 as context with 2 types after it (1 twice, 2 once); P(1) = (2+1)/(6+4)
	want := (2 + 2*0.3) / (3 + 2.0)
	if got := b.Prob(0, 1); math.Abs(got-want) > 1e-12 {
		t.Errorf("P(1|0) = %v, want %v", got, want)
	}
	// token 2 never precedes anything: the unigram
	if got := b.Prob(2, 3); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("P(3|2) = %v, want 0.1", got)
	}
	for prev := 0; prev < 4; prev++ {
		var s float64
		for next := 0; next < 4; next++ {
			s += b.Prob(prev, next)
		}
		if math.Abs(s-1) > 1e-12 {
			t.Errorf("P(.|%d) sums to %v", prev, s)
		}
	}
	d := NewData(toks, 2, 1) // windows [0 1 0] and [0 1 0]
	want = -(math.Log(b.Prob(0, 1)) + math.Log(b.Prob(1, 0))) / 2
	if got := b.Loss(d, 10); math.Abs(got-want) > 1e-12 {
		t.Errorf("loss %v, want %v", got, want)
	}
}
