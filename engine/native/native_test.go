package native

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/tokenizer"
)

func tinyModel(t testing.TB, typ gguf.TensorType, tok string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	err := WriteRandomModel(path, GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: typ, Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t testing.TB, path string, threads int) (*Model, *tokenizer.Tokenizer) {
	t.Helper()
	m, err := Load(path, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

func TestTokenizerRoundTrip(t *testing.T) {
	for _, kind := range []string{"llama", "gpt2"} {
		_, tok := load(t, tinyModel(t, gguf.F32, kind), 1)
		for _, s := range []string{"hello world", "the capital of france is paris.", "Ünïcödé ✓ 42", "  two  spaces"} {
			ids := tok.Encode(s, false, false)
			if len(ids) == 0 {
				t.Fatalf("%s: no tokens for %q", kind, s)
			}
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s: %q -> %v -> %q", kind, s, ids, got)
			}
		}
		// merges are used: a common word is fewer tokens than characters
		if ids := tok.Encode("the network", false, false); len(ids) >= len("the network") {
			t.Fatalf("%s: no merges applied: %v", kind, ids)
		}
	}
	_, tok := load(t, tinyModel(t, gguf.F32, "gpt2"), 1)
	ids := tok.Encode("<|im_start|>user\nhi<|im_end|>", false, true)
	if ids[0] != 1 || ids[len(ids)-1] != 2 {
		t.Fatalf("special tokens not parsed: %v", ids)
	}
	if plain := tok.Encode("<|im_start|>", false, false); len(plain) < 2 {
		t.Fatalf("special token parsed without parseSpecial: %v", plain)
	}
}

// decodeLogits runs the prompt as one batch, then feeds gen one token at a
// time, returning the logits that predicted each gen token.
func decodeLogits(t *testing.T, m *Model, prompt, gen []int) [][]float32 {
	s := m.NewSession()
	out, err := s.Forward(prompt, false)
	if err != nil {
		t.Fatal(err)
	}
	logits := [][]float32{out[0]}
	for _, id := range gen[:len(gen)-1] {
		o, err := s.Forward([]int{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		logits = append(logits, o[0])
	}
	return logits
}

func sameBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestPrefillReproducesDecode: one teacher-forced prefill over prompt+output
// gives bit-identical logits to step-by-step decoding, for every weight type.
func TestPrefillReproducesDecode(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0} {
		m, tok := load(t, tinyModel(t, typ, "llama"), 2)
		checkPrefillMatchesDecode(t, typ.String(), m, tok.Encode("tell me a story about a small robot", true, false), tok,
			SampleParams{Temperature: 0.9, Seed: 3, MaxTokens: 24})
	}
}

// checkPrefillMatchesDecode generates from prompt, then checks one prefill
// over prompt+output reproduces every decode step's logits and log-probs.
func checkPrefillMatchesDecode(t *testing.T, name string, m *Model, prompt []int, tok *tokenizer.Tokenizer, p SampleParams) {
	t.Helper()
	res, err := m.Generate(tok, prompt, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	gen := make([]int, len(res.Tokens))
	for i, tr := range res.Tokens {
		gen[i] = tr.ID
	}
	step := decodeLogits(t, m, prompt, gen)
	all, err := m.NewSession().Forward(append(append([]int(nil), prompt...), gen...), true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range gen {
		if !sameBits(step[i], all[len(prompt)-1+i]) {
			t.Fatalf("%s: logits for output token %d differ between decode and prefill", name, i)
		}
		lp := LogSoftmax(all[len(prompt)-1+i])
		if math.Float32bits(lp[gen[i]]) != math.Float32bits(res.Tokens[i].Logprob) {
			t.Fatalf("%s: log-prob of token %d differs", name, i)
		}
	}
}

// TestThreadInvariance: GOMAXPROCS 1 and 2, and 1 vs 3 matmul threads, give
// the same tokens and log-prob bits.
func TestThreadInvariance(t *testing.T) {
	path := tinyModel(t, gguf.Q8_0, "llama")
	run := func(procs, threads int) *Result {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		m, tok := load(t, path, threads)
		res, err := m.Generate(tok, tok.Encode("what is the capital of france?", true, false), SampleParams{Temperature: 0.8, TopK: 40, TopP: 0.95, Seed: 11, MaxTokens: 20}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b, c := run(1, 1), run(2, 2), run(2, 3)
	for _, o := range []*Result{b, c} {
		if len(o.Tokens) != len(a.Tokens) {
			t.Fatal("token counts differ")
		}
		for i := range a.Tokens {
			if a.Tokens[i].ID != o.Tokens[i].ID || math.Float32bits(a.Tokens[i].Logprob) != math.Float32bits(o.Tokens[i].Logprob) {
				t.Fatalf("token %d differs across thread counts", i)
			}
		}
	}
}

func TestSamplingSeeds(t *testing.T) {
	m, tok := load(t, tinyModel(t, gguf.F32, "llama"), 2)
	prompt := tok.Encode("hello", true, false)
	gen := func(seed uint64) []int {
		res, err := m.Generate(tok, prompt, SampleParams{Temperature: 1.2, Seed: seed, MaxTokens: 16}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, tr := range res.Tokens {
			ids = append(ids, tr.ID)
		}
		return ids
	}
	a, b, c := gen(1), gen(1), gen(2)
	if len(a) == 0 || !equalInts(a, b) {
		t.Fatalf("same seed, different tokens: %v %v", a, b)
	}
	if equalInts(a, c) {
		t.Fatalf("different seeds gave the same 16 tokens: %v", a)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReferenceForward compares the engine with a straightforward float64
// implementation written independently here.
func TestReferenceForward(t *testing.T) {
	for _, tc := range []struct {
		typ gguf.TensorType
		tol float64
	}{{gguf.F32, 1e-4}, {gguf.F16, 1e-4}, {gguf.BF16, 1e-4}, {gguf.Q8_0, 3e-2}} {
		m, tok := load(t, tinyModel(t, tc.typ, "llama"), 2)
		ids := tok.Encode("the quick brown fox", true, false)
		got, err := m.NewSession().Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceForward(m, ids)
		var maxErr, maxAbs float64
		for p := range ids {
			for v := range want[p] {
				maxErr = math.Max(maxErr, math.Abs(float64(got[p][v])-want[p][v]))
				maxAbs = math.Max(maxAbs, math.Abs(want[p][v]))
			}
		}
		if maxErr > tc.tol*math.Max(1, maxAbs) {
			t.Fatalf("%s: max |engine - reference| = %g (logits up to %g)", tc.typ, maxErr, maxAbs)
		}
		t.Logf("%s: max error %.3g over logits up to %.3g", tc.typ, maxErr, maxAbs)
	}
}

// refDequant is a weight matrix dequantized to float64 rows: the float64
// reference forward passes' weights.
func refDequant(w *Matrix) [][]float64 {
	out := make([][]float64, w.Rows)
	row := make([]float32, w.Cols)
	for r := range out {
		w.Row(r, row)
		out[r] = make([]float64, w.Cols)
		for i, v := range row {
			out[r][i] = float64(v)
		}
	}
	return out
}

// refMatVec is w·x in float64.
func refMatVec(w [][]float64, x []float64) []float64 {
	y := make([]float64, len(w))
	for r := range w {
		for i := range x {
			y[r] += w[r][i] * x[i]
		}
	}
	return y
}

// refRMSNorm is RMSNorm in float64.
func refRMSNorm(x []float64, w []float32, eps float32) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	s := 1 / math.Sqrt(ss/float64(len(x))+float64(eps))
	y := make([]float64, len(x))
	for i := range x {
		y[i] = x[i] * s * float64(w[i])
	}
	return y
}

func referenceForward(m *Model, ids []int) [][]float64 {
	c := m.Config
	deq, mv := refDequant, refMatVec
	norm := func(x []float64, w []float32) []float64 { return refRMSNorm(x, w, c.Eps) }
	rope := func(v []float64, pos, heads int) {
		for h := 0; h < heads; h++ {
			for i := 0; i < c.RopeDims/2; i++ {
				th := float64(pos) / math.Pow(c.RopeBase, float64(2*i)/float64(c.RopeDims))
				a, b := h*c.HeadDim+2*i, h*c.HeadDim+2*i+1
				x0, x1 := v[a], v[b]
				v[a] = x0*math.Cos(th) - x1*math.Sin(th)
				v[b] = x0*math.Sin(th) + x1*math.Cos(th)
			}
		}
	}
	emb := deq(m.tokEmbd)
	T := len(ids)
	xs := make([][]float64, T)
	for t, id := range ids {
		xs[t] = append([]float64(nil), emb[id]...)
	}
	for _, l := range m.layers {
		wq, wk, wv, wo := deq(l.wq), deq(l.wk), deq(l.wv), deq(l.wo)
		wg, wu, wd := deq(l.wGate), deq(l.wUp), deq(l.wDown)
		var K, V [][]float64
		qs := make([][]float64, T)
		for t := range xs {
			xb := norm(xs[t], l.attnNorm)
			q, k, v := mv(wq, xb), mv(wk, xb), mv(wv, xb)
			rope(q, t, c.Heads)
			rope(k, t, c.KVHeads)
			qs[t] = q
			K, V = append(K, k), append(V, v)
		}
		for t := range xs {
			att := make([]float64, c.Dim)
			for h := 0; h < c.Heads; h++ {
				kvh := h / (c.Heads / c.KVHeads)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					for d := 0; d < c.HeadDim; d++ {
						sc[j] += qs[t][h*c.HeadDim+d] * K[j][kvh*c.HeadDim+d]
					}
					sc[j] /= math.Sqrt(float64(c.HeadDim))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for d := 0; d < c.HeadDim; d++ {
						att[h*c.HeadDim+d] += sc[j] / sum * V[j][kvh*c.HeadDim+d]
					}
				}
			}
			o := mv(wo, att)
			for i := range o {
				xs[t][i] += o[i]
			}
			xb := norm(xs[t], l.ffnNorm)
			g, u := mv(wg, xb), mv(wu, xb)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := mv(wd, g)
			for i := range d {
				xs[t][i] += d[i]
			}
		}
	}
	out := deq(m.output)
	logits := make([][]float64, T)
	for t := range xs {
		logits[t] = mv(out, norm(xs[t], m.outNorm))
	}
	return logits
}

func TestLoadRejectsBadFiles(t *testing.T) {
	path := tinyModel(t, gguf.F32, "llama")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// an unknown architecture is refused clearly
	var w gguf.Writer
	w.Set("general.architecture", gguf.String("mamba"))
	p2 := filepath.Join(t.TempDir(), "mamba.gguf")
	w.WriteFile(p2)
	if _, err := Load(p2, Options{}); err == nil || !contains(err.Error(), `architecture "mamba" is not supported`) {
		t.Fatalf("unknown arch: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestLoadTruncatedModel(t *testing.T) {
	path := tinyModel(t, gguf.Q8_0, "llama")
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10, 100, len(full) / 3, len(full) - 1} {
		p := filepath.Join(t.TempDir(), "cut.gguf")
		os.WriteFile(p, full[:n], 0o644)
		if _, err := Load(p, Options{}); err == nil {
			t.Fatalf("model truncated to %d of %d bytes loaded", n, len(full))
		}
	}
}

// TestKQuantsBatchInvariant: prefill reproduces decode for Q4_K and Q6_K too.
func TestKQuantsBatchInvariant(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.Q4_K, gguf.Q6_K} {
		path := filepath.Join(t.TempDir(), "k.gguf")
		if err := WriteRandomModel(path, GenOptions{Dim: 256, FFN: 768, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 128, Seed: 9, Type: typ}); err != nil {
			t.Fatal(err)
		}
		m, tok := load(t, path, 2)
		checkPrefillMatchesDecode(t, typ.String(), m, tok.Encode("a small robot", true, false), tok, SampleParams{Temperature: 0.7, Seed: 1, MaxTokens: 12})
	}
}
