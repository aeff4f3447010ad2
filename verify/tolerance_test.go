package verify

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/oaisim"
	"github.com/agoranet/agora/protocol/inference"
)

type tolFixture struct {
	real, cheap *native.Model
	tok         *tokenizer.Tokenizer
	vocab       *Vocab
}

func newTolFixture(t *testing.T) *tolFixture {
	t.Helper()
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "real.gguf"), filepath.Join(dir, "cheap.gguf")}
	if err := native.WriteRandomModel(paths[0], native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	if err := native.WriteRandomModel(paths[1], native.GenOptions{Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 600, Context: 256, Seed: 8, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	f := &tolFixture{}
	var err error
	if f.real, err = native.Load(paths[0], native.Options{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	if f.cheap, err = native.Load(paths[1], native.Options{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.real.Close(); f.cheap.Close() })
	if f.tok, err = tokenizer.FromGGUF(f.real.File); err != nil {
		t.Fatal(err)
	}
	f.vocab = NewVocab(f.tok)
	return f
}

// serve runs one request on a simulated backend serving m (with noise, and
// a writer model for a prefill attack) and returns its transcript.
func (f *tolFixture) serve(t *testing.T, m *native.Model, opts oaisim.Options, prompt string, p native.SampleParams, n int) Reported {
	t.Helper()
	srv, err := oaisim.New("m", m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ids := f.tok.Encode(prompt, f.tok.AddBOS, false)
	toks, text, _, err := srv.Generate(ids, p, n, nil, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := ToReported(ids, toks, p)
	r.Text = []byte(text)
	return r
}

// ToReported converts the simulator's tokens to a transcript.
func ToReported(prompt []int, toks []oaisim.TokenLogprob, p native.SampleParams) Reported {
	r := Reported{PromptIDs: prompt, Params: p}
	for _, t := range toks {
		r.Pieces = append(r.Pieces, intBytes(t.Bytes))
		r.Logprobs = append(r.Logprobs, t.Logprob)
		var alts []inference.Alt
		for _, a := range t.TopLogprobs {
			alts = append(alts, inference.Alt{Token: intBytes(a.Bytes), Logprob: a.Logprob})
		}
		r.Top = append(r.Top, alts)
	}
	return r
}

func intBytes(xs []int) []byte {
	b := make([]byte, len(xs))
	for i, x := range xs {
		b[i] = byte(x)
	}
	return b
}

var tolSettings = []native.SampleParams{
	{Temperature: 1},
	{Temperature: 0.8, TopP: 0.95},
	{Temperature: 0.7, TopK: 40},
	{Temperature: 1, MinP: 0.05, RepeatPenalty: 1.1},
	{Temperature: 0}, // greedy
}

// TestToleranceHonest: a backend whose logits carry GPU-like noise passes
// at every sampling setting; without noise the re-execution matches it
// exactly, byte-shared tokens included.
func TestToleranceHonest(t *testing.T) {
	f := newTolFixture(t)
	tol := DefaultTolerances()
	for si, p := range tolSettings {
		for k := 0; k < 4; k++ {
			p.Seed = uint64(100*si + k)
			prompt := fmt.Sprintf("the network shares work number %d and", k)
			exact := f.serve(t, f.real, oaisim.Options{}, prompt, p, 48)
			r, err := CheckTolerance(f.real, f.vocab, exact, tol)
			if err != nil {
				t.Fatalf("setting %d: exact backend refused: %v", si, err)
			}
			if r.MaxDiff != 0 || r.Outliers != 0 || r.OffSupport != 0 || r.Overlap != 1 {
				t.Fatalf("setting %d: exact backend differs: %+v", si, r)
			}
			noisy := f.serve(t, f.real, oaisim.Options{Noise: 0.02}, prompt, p, 48)
			r, err = CheckTolerance(f.real, f.vocab, noisy, tol)
			if err != nil {
				t.Fatalf("setting %d: honest noisy backend refused: %v (%+v)", si, err, r)
			}
			if r.Log10P < -4 {
				t.Fatalf("setting %d: an honest draw looks implausible (log10 p = %.1f)", si, r.Log10P)
			}
			if r.MaxDiff == 0 || r.MaxDiff > 0.2 {
				t.Fatalf("setting %d: noise σ=0.02 gave max difference %v", si, r.MaxDiff)
			}
		}
	}
}

// TestToleranceCheats: a substituted model, a prefill attack (a cheap model
// writes, the claimed one scores) and a tampered log-prob are each refused
// with their reason.
func TestToleranceCheats(t *testing.T) {
	f := newTolFixture(t)
	tol := DefaultTolerances()
	p := native.SampleParams{Temperature: 1, Seed: 3}
	prompt := "a network of computers shares work and"

	sub := f.serve(t, f.cheap, oaisim.Options{Noise: 0.02}, prompt, p, 48)
	if _, err := CheckTolerance(f.real, f.vocab, sub, tol); err == nil || !strings.Contains(err.Error(), "differ from the model's") {
		t.Fatalf("substituted model: %v", err)
	}

	caught := 0
	for k := 0; k < 5; k++ {
		p := native.SampleParams{Temperature: 1, Seed: uint64(k)}
		pre := f.serve(t, f.real, oaisim.Options{Noise: 0.02, Writer: f.cheap}, fmt.Sprintf("%s %d", prompt, k), p, 64)
		r, err := CheckTolerance(f.real, f.vocab, pre, tol)
		if r.MaxDiff > 0.2 {
			t.Fatalf("prefill attack: the scores are the real model's, yet differ by %v", r.MaxDiff)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "implausible draw") {
				t.Fatalf("prefill attack refused for another reason: %v", err)
			}
			caught++
		}
		t.Logf("prefill attack %d: z = %.1f over %d tokens", k, r.Z, r.TestTokens)
	}
	if caught != 5 {
		t.Fatalf("prefill attack caught %d of 5 times", caught)
	}
	// Short answers too: the bound is exact at any length.
	for k := 0; k < 5; k++ {
		p := native.SampleParams{Temperature: 1, Seed: uint64(20 + k)}
		pre := f.serve(t, f.real, oaisim.Options{Noise: 0.02, Writer: f.cheap}, fmt.Sprintf("%s short %d", prompt, k), p, 8)
		if r, err := CheckTolerance(f.real, f.vocab, pre, tol); err == nil || !strings.Contains(err.Error(), "implausible draw") {
			t.Fatalf("8-token prefill attack: %v (%+v)", err, r)
		}
	}

	// Under truncated sampling the attacker's tokens leave the claimed
	// model's support, beyond what noise explains.
	for _, p := range tolSettings[1:] {
		for k := 0; k < 3; k++ {
			p.Seed = uint64(50 + k)
			pre := f.serve(t, f.real, oaisim.Options{Noise: 0.02, Writer: f.cheap}, fmt.Sprintf("%s %d", prompt, k), p, 32)
			if _, err := CheckTolerance(f.real, f.vocab, pre, tol); err == nil {
				t.Fatalf("prefill attack at %+v passed", p)
			}
		}
	}

	honest := f.serve(t, f.real, oaisim.Options{Noise: 0.02}, prompt, p, 48)
	honest.Logprobs[10] += 1
	if _, err := CheckTolerance(f.real, f.vocab, honest, tol); err == nil || !strings.Contains(err.Error(), "at 1 of 48 positions") {
		t.Fatalf("tampered log-prob: %v", err)
	}
}

// TestToleranceBadInput: malformed transcripts are refused with a reason.
func TestToleranceBadInput(t *testing.T) {
	f := newTolFixture(t)
	good := f.serve(t, f.real, oaisim.Options{}, "the quick brown fox", native.SampleParams{Temperature: 1, Seed: 1}, 8)
	clone := func() Reported {
		r := good
		r.PromptIDs = append([]int(nil), good.PromptIDs...)
		r.Pieces = append([][]byte(nil), good.Pieces...)
		r.Logprobs = append([]float32(nil), good.Logprobs...)
		r.Top = append([][]inference.Alt(nil), good.Top...)
		return r
	}
	cases := []struct {
		name, want string
		edit       func(*Reported)
	}{
		{"no prompt", "no prompt", func(r *Reported) { r.PromptIDs = nil }},
		{"ragged", "log-probs", func(r *Reported) { r.Logprobs = r.Logprobs[1:] }},
		{"prompt id", "outside the vocabulary", func(r *Reported) { r.PromptIDs[0] = 1 << 20 }},
		{"unknown piece", "not in the model's vocabulary", func(r *Reported) { r.Pieces[2] = []byte("\x00no such token\x00") }},
		{"empty piece", "not in the model's vocabulary", func(r *Reported) { r.Pieces[2] = nil }},
		{"NaN", "not a log-probability", func(r *Reported) { r.Logprobs[1] = float32(math.NaN()) }},
		{"positive", "not a log-probability", func(r *Reported) { r.Logprobs[1] = 0.5 }},
		{"too long", "exceeds the model's context", func(r *Reported) { r.PromptIDs = make([]int, 255) }},
		{"other text", "not the decoded output", func(r *Reported) { r.Text = []byte("something else entirely") }},
	}
	if _, err := CheckTolerance(f.real, f.vocab, clone(), DefaultTolerances()); err != nil {
		t.Fatalf("unedited: %v", err)
	}
	for _, c := range cases {
		r := clone()
		c.edit(&r)
		if _, err := CheckTolerance(f.real, f.vocab, r, DefaultTolerances()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestNearSupport: a token just outside the sampler's support is accepted
// when noise of Slack could have carried it in, measured from the cut
// (argmax, k-th best, min-p threshold, top-p mass), not from the last token
// inside — which may be far from the cut where the distribution is sparse.
func TestNearSupport(t *testing.T) {
	pl := []float32{0, -2, -3.01, -4.5, -9}
	cases := []struct {
		name string
		p    native.SampleParams
		id   int
		want bool
	}{
		{"greedy near", native.SampleParams{}, 1, false},
		{"greedy tie", native.SampleParams{}, 0, true},
		{"min-p just below the threshold", native.SampleParams{Temperature: 1, MinP: math.Exp(-3)}, 2, true},
		{"min-p far below", native.SampleParams{Temperature: 1, MinP: math.Exp(-3)}, 3, false},
		{"top-k next", native.SampleParams{Temperature: 1, TopK: 2}, 2, false},
		{"top-k far", native.SampleParams{Temperature: 1, TopK: 3}, 3, false},
		{"top-p edge", native.SampleParams{Temperature: 1, TopP: 0.999}, 3, true},
		{"top-p far", native.SampleParams{Temperature: 1, TopP: 0.5}, 2, false},
	}
	for _, c := range cases {
		if got := nearSupport(c.p, pl, c.id, 0.5); got != c.want {
			t.Errorf("%s: nearSupport = %v, want %v", c.name, got, c.want)
		}
	}
	close := []float32{0, -0.3, -5}
	if !nearSupport(native.SampleParams{}, close, 1, 0.5) || !nearSupport(native.SampleParams{Temperature: 1, TopK: 1}, close, 1, 0.5) {
		t.Error("a token 0.3 below the cut is within a slack of 0.5")
	}
}
