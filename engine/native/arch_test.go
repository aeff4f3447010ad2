package native

import (
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// archModel writes a small model of an architecture: Gemma 3 gets 7 layers
// (layers 0-4 and 6 local with a window of 8, layer 5 global) and a logit
// soft-cap; both get heads wider than dim/heads.
func archModel(t testing.TB, arch string, typ gguf.TensorType) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), arch+".gguf")
	o := GenOptions{Arch: arch, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 32, Vocab: 600, Context: 128, Seed: 5, Type: typ}
	switch arch {
	case "gemma3":
		o.Layers, o.SlidingWindow, o.Softcap, o.RopeLinear = 7, 8, 30, 4
	case "qwen3":
		o.Tokenizer, o.Pre = "gpt2", "qwen2"
	}
	if err := WriteRandomModel(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestArchConfig(t *testing.T) {
	m, _ := load(t, archModel(t, "gemma3", gguf.F32), 1)
	c := m.Config
	if c.HeadDim != 32 || !c.QKNorm || !c.PostNorms || !c.GELU || c.SlidingWindow != 8 || c.LogitSoftcap != 30 || c.RopeBase != 1e6 || c.RopeBaseLocal != 10000 || c.RopeScale != 0.25 {
		t.Fatalf("gemma3 config %+v", c)
	}
	if c.EmbedScale != 8 || c.QScale != float32(1/math.Sqrt(32)) {
		t.Fatalf("gemma3 scales: embed %v, q %v", c.EmbedScale, c.QScale)
	}
	var local []bool
	for i := range m.layers {
		local = append(local, m.layers[i].local)
	}
	if want := []bool{true, true, true, true, true, false, true}; !equalBools(local, want) {
		t.Fatalf("local layers %v, want %v", local, want)
	}
	m, _ = load(t, archModel(t, "qwen3", gguf.F32), 1)
	if c := m.Config; c.HeadDim != 32 || !c.QKNorm || c.PostNorms || c.GELU || c.SWAPattern != 0 || !c.RopeNeoX || m.layers[0].qNorm == nil {
		t.Fatalf("qwen3 config %+v", c)
	}
}

func equalBools(a, b []bool) bool {
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

// TestArchPrefillReproducesDecode: batch invariance holds for the new
// layers too (q/k norms, sliding windows, GeGLU, soft-capping), with the
// sequence crossing the window.
func TestArchPrefillReproducesDecode(t *testing.T) {
	for _, arch := range []string{"qwen3", "gemma3"} {
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
			m, tok := load(t, archModel(t, arch, typ), 2)
			checkPrefillMatchesDecode(t, arch+"/"+typ.String(), m, tok.Encode("tell me a story about a small robot", tok.AddBOS, false), tok,
				SampleParams{Temperature: 0.9, Seed: 3, MaxTokens: 24})
		}
	}
}

// TestArchThreadInvariance: GOMAXPROCS 1 and 2, and 1, 2, 3 threads, give
// the same tokens and log-prob bits.
func TestArchThreadInvariance(t *testing.T) {
	for _, arch := range []string{"qwen3", "gemma3"} {
		path := archModel(t, arch, gguf.Q8_0)
		run := func(procs, threads int) *Result {
			old := runtime.GOMAXPROCS(procs)
			defer runtime.GOMAXPROCS(old)
			m, tok := load(t, path, threads)
			res, err := m.Generate(tok, tok.Encode("what is the capital of france?", tok.AddBOS, false), SampleParams{Temperature: 0.8, TopK: 40, Seed: 11, MaxTokens: 20}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		a := run(1, 1)
		for _, o := range []*Result{run(2, 2), run(2, 3)} {
			if len(o.Tokens) != len(a.Tokens) {
				t.Fatalf("%s: token counts differ", arch)
			}
			for i := range a.Tokens {
				if a.Tokens[i].ID != o.Tokens[i].ID || math.Float32bits(a.Tokens[i].Logprob) != math.Float32bits(o.Tokens[i].Logprob) {
					t.Fatalf("%s: token %d differs across thread counts", arch, i)
				}
			}
		}
	}
}

// TestArchReferenceForward compares the engine on Qwen3 and Gemma 3 with a
// float64 implementation written from the architectures' descriptions.
func TestArchReferenceForward(t *testing.T) {
	for _, arch := range []string{"qwen3", "gemma3"} {
		m, tok := load(t, archModel(t, arch, gguf.F32), 2)
		// 20 positions: past gemma's window of 8.
		ids := tok.Encode("the quick brown fox jumps over the lazy dog and the capital of france", tok.AddBOS, false)
		if len(ids) < 12 {
			t.Fatalf("only %d tokens", len(ids))
		}
		got, err := m.NewSession().Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		want := archReference(m, ids)
		var maxErr, maxAbs float64
		for p := range ids {
			for v := range want[p] {
				maxErr = math.Max(maxErr, math.Abs(float64(got[p][v])-want[p][v]))
				maxAbs = math.Max(maxAbs, math.Abs(want[p][v]))
			}
		}
		if maxErr > 1e-4*math.Max(1, maxAbs) {
			t.Fatalf("%s: max |engine - reference| = %g (logits up to %g)", arch, maxErr, maxAbs)
		}
		t.Logf("%s: %d positions, max error %.3g over logits up to %.3g", arch, len(ids), maxErr, maxAbs)
	}
}

// archReference is a plain float64 forward pass of the llama family with
// the Qwen3/Gemma 3 features switched on by the model's config.
func archReference(m *Model, ids []int) [][]float64 {
	c := m.Config
	hd := c.HeadDim
	deq, mv := refDequant, refMatVec
	norm := func(x []float64, w []float32) []float64 { return refRMSNorm(x, w, c.Eps) }
	rope := func(v []float64, pos, heads int, base, scale float64) {
		half := c.RopeDims / 2
		for h := 0; h < heads; h++ {
			for i := 0; i < half; i++ {
				th := float64(pos) * scale / math.Pow(base, float64(2*i)/float64(c.RopeDims))
				a, b := h*hd+i, h*hd+i+half // NeoX pairs
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
		if c.GELU { // Gemma: embeddings times sqrt(dim)
			for i := range xs[t] {
				xs[t][i] *= math.Sqrt(float64(c.Dim))
			}
		}
	}
	for li, l := range m.layers {
		local := c.SWAPattern > 0 && li%c.SWAPattern < c.SWAPattern-1
		base, scale := c.RopeBase, 1.0
		if c.RopeScale != 0 {
			scale = c.RopeScale
		}
		if local {
			base, scale = c.RopeBaseLocal, 1
		}
		wq, wk, wv, wo := deq(l.wq), deq(l.wk), deq(l.wv), deq(l.wo)
		wg, wu, wd := deq(l.wGate), deq(l.wUp), deq(l.wDown)
		var K, V, Q [][]float64
		for t := range xs {
			xb := norm(xs[t], l.attnNorm)
			q, k, v := mv(wq, xb), mv(wk, xb), mv(wv, xb)
			if l.qNorm != nil {
				for h := 0; h < c.Heads; h++ {
					copy(q[h*hd:], norm(q[h*hd:(h+1)*hd], l.qNorm))
				}
				for h := 0; h < c.KVHeads; h++ {
					copy(k[h*hd:], norm(k[h*hd:(h+1)*hd], l.kNorm))
				}
			}
			rope(q, t, c.Heads, base, scale)
			rope(k, t, c.KVHeads, base, scale)
			Q, K, V = append(Q, q), append(K, k), append(V, v)
		}
		attScale := 1 / math.Sqrt(float64(hd))
		for t := range xs {
			att := make([]float64, c.Heads*hd)
			first := 0
			if local {
				first = max(0, t-c.SlidingWindow+1)
			}
			for h := 0; h < c.Heads; h++ {
				kvh := h / (c.Heads / c.KVHeads)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := first; j <= t; j++ {
					for d := 0; d < hd; d++ {
						sc[j] += Q[t][h*hd+d] * K[j][kvh*hd+d]
					}
					sc[j] *= attScale
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := first; j <= t; j++ {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := first; j <= t; j++ {
					for d := 0; d < hd; d++ {
						att[h*hd+d] += sc[j] / sum * V[j][kvh*hd+d]
					}
				}
			}
			o := mv(wo, att)
			if l.postAttnNorm != nil {
				o = norm(o, l.postAttnNorm)
			}
			for i := range o {
				xs[t][i] += o[i]
			}
			xb := norm(xs[t], l.ffnNorm)
			g, u := mv(wg, xb), mv(wu, xb)
			for i := range g {
				if c.GELU {
					g[i] = 0.5 * g[i] * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(g[i]+0.044715*g[i]*g[i]*g[i]))) * u[i]
				} else {
					g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
				}
			}
			d := mv(wd, g)
			if l.postFFNNorm != nil {
				d = norm(d, l.postFFNNorm)
			}
			for i := range d {
				xs[t][i] += d[i]
			}
		}
	}
	out := deq(m.output)
	logits := make([][]float64, T)
	for t := range xs {
		logits[t] = mv(out, norm(xs[t], m.outNorm))
		if cp := float64(c.LogitSoftcap); cp != 0 {
			for i, v := range logits[t] {
				logits[t][i] = cp * math.Tanh(v/cp)
			}
		}
	}
	return logits
}

// TestRefusesUnsupported: an unknown architecture and a tensor type the
// engine cannot compute are refused with messages that name them, and an
// architecture missing a tensor it needs names the tensor.
func TestRefusesUnsupported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	var w gguf.Writer
	w.Set("general.architecture", gguf.String("phi3"))
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, Options{}); err == nil || !strings.Contains(err.Error(), `architecture "phi3" is not supported`) || !strings.Contains(err.Error(), "gemma3") {
		t.Fatalf("unknown architecture: %v", err)
	}
	// A type the file format knows but the engine does not compute, and a
	// Qwen3 missing one of its q/k norms.
	src := archModel(t, "qwen3", gguf.F32)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"blk.1.ffn_up.weight", []string{"blk.1.ffn_up.weight", "type Q8_1 is not supported"}},
		{"blk.0.attn_k_norm.weight", []string{"blk.0.attn_k_norm.weight"}},
	} {
		p := rewriteModel(t, src, func(name string, typ gguf.TensorType, dims []uint64, data []byte) (gguf.TensorType, []byte, bool) {
			if name != tc.name {
				return typ, data, true
			}
			if strings.HasSuffix(name, "norm.weight") {
				return typ, data, false // dropped
			}
			elems, bytes, _ := gguf.Q8_1.BlockSize()
			n := int(dims[0]) * int(dims[1])
			return gguf.Q8_1, make([]byte, n/elems*bytes), true
		})
		if _, err := Load(p, Options{}); err == nil || !strings.Contains(err.Error(), tc.want[0]) || !strings.Contains(err.Error(), tc.want[len(tc.want)-1]) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}

// rewriteModel copies a GGUF, letting edit change or drop each tensor.
func rewriteModel(t *testing.T, src string, edit func(name string, typ gguf.TensorType, dims []uint64, data []byte) (gguf.TensorType, []byte, bool)) string {
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w gguf.Writer
	for _, kv := range f.KVs {
		w.Set(kv.Key, kv.Value)
	}
	for _, ti := range f.Tensors {
		_, data, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		typ, data, keep := edit(ti.Name, ti.Type, ti.Dims, data)
		if !keep {
			continue
		}
		if err := w.AddTensor(ti.Name, typ, ti.Dims, data); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "edited.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}
