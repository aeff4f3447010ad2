// Package native is Agora's built-in inference engine: pure Go, deterministic
// and batch-invariant transformer inference for llama-family GGUF models
// (llama, mistral, qwen2, qwen3, gemma3).
//
// Every logit is a function of the tokens and the weights only: not of the
// thread count, the run, or whether its position was computed in a batched
// prefill or a one-token decode. That lets a validator reproduce a provider's
// answer bit for bit with one teacher-forced prefill.
package native

import (
	"fmt"
	"math"
	"runtime"

	"github.com/agoranet/agora/engine/gguf"
)

// Config is a model's shape, read from GGUF metadata.
type Config struct {
	Arch       string
	Dim        int
	Layers     int
	Heads      int
	KVHeads    int
	HeadDim    int
	FFN        int
	Vocab      int
	ContextLen int
	RopeBase   float64
	RopeDims   int
	RopeNeoX   bool // rotate pairs (i, i+d/2) instead of (2i, 2i+1)
	Eps        float32

	// Gemma-3 and Qwen-3 features (zero for the llama family).
	QKNorm        bool    // RMSNorm over each head of q and k before RoPE
	PostNorms     bool    // RMSNorm on the attention and FFN outputs before each residual add
	GELU          bool    // FFN is gelu_tanh(gate) * up instead of silu(gate) * up
	EmbedScale    float32 // token embeddings multiplied by it (0: not scaled)
	QScale        float32 // q multiplied by it after RoPE, scores then unscaled (0: scores * 1/sqrt(HeadDim))
	SlidingWindow int     // local layers attend to the last SlidingWindow positions
	SWAPattern    int     // layer i is local iff i%SWAPattern < SWAPattern-1 (0: none)
	RopeBaseLocal float64 // RoPE base of the local layers
	RopeScale     float64 // linear RoPE scaling of the global layers: positions * RopeScale (0: 1)
	LogitSoftcap  float32 // final logits = cap * tanh(logits / cap) (0: off)
}

// archs are the supported architectures: their RoPE layout (as llama.cpp
// uses them) and the tensors that set them apart.
var archs = map[string]struct {
	neox        bool
	qkNorm      bool // attn_q_norm / attn_k_norm per head
	gemma       bool // post norms, GeGLU, scaled embeddings, sliding-window layers
	biasAllowed bool
}{
	"llama":   {},
	"mistral": {},
	"qwen2":   {neox: true, biasAllowed: true},
	"qwen3":   {neox: true, qkNorm: true},
	"gemma3":  {neox: true, qkNorm: true, gemma: true},
}

// archNames lists the supported architectures for error messages.
const archNames = "llama, mistral, qwen2, qwen3, gemma3"

// IsLocal reports whether layer i attends through a sliding window.
func (c *Config) IsLocal(i int) bool {
	return c.SWAPattern > 0 && c.SlidingWindow > 0 && i%c.SWAPattern < c.SWAPattern-1
}

type layer struct {
	attnNorm, ffnNorm         []float32
	wq, wk, wv, wo            *Matrix
	bq, bk, bv                []float32 // optional biases (Qwen2)
	qNorm, kNorm              []float32 // per-head q/k norms (Qwen3, Gemma 3)
	postAttnNorm, postFFNNorm []float32 // Gemma 3
	wGate, wUp, wDown         *Matrix
	local                     bool // sliding-window attention, local RoPE base
}

// Model is a loaded model. It is read-only and safe for concurrent use by
// several Sessions.
type Model struct {
	Config  Config
	File    *gguf.File
	tokEmbd *Matrix
	outNorm []float32
	output  *Matrix
	layers  []layer
	ropeCos []float32 // [ContextLen][RopeDims/2]
	ropeSin []float32
	// RoPE of the local (sliding-window) layers, when their base differs.
	ropeCosLocal, ropeSinLocal []float32
	threads                    int
}

// Options tune a loaded model.
type Options struct {
	// Threads for matrix products (0: GOMAXPROCS). Results do not depend on it.
	Threads int
	// ContextLen caps the context (0: the model's, at most 4096).
	ContextLen int
}

// Load reads a model from a GGUF file (memory-mapped).
func Load(path string, opts Options) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := FromFile(f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// Close releases the model file.
func (m *Model) Close() error { return m.File.Close() }

func u(f *gguf.File, key string) (int, error) {
	v, err := f.Uint(key)
	if err != nil {
		return 0, err
	}
	if v > 1<<24 {
		return 0, fmt.Errorf("metadata %s = %d is implausibly large", key, v)
	}
	return int(v), nil
}

// FromFile builds a model from a parsed GGUF file.
func FromFile(f *gguf.File, opts Options) (*Model, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil, err
	}
	ai, ok := archs[arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (%s are)", arch, archNames)
	}
	c := Config{Arch: arch, RopeNeoX: ai.neox, QKNorm: ai.qkNorm}
	for _, kv := range []struct {
		key string
		dst *int
	}{
		{".embedding_length", &c.Dim}, {".block_count", &c.Layers}, {".attention.head_count", &c.Heads},
		{".feed_forward_length", &c.FFN}, {".context_length", &c.ContextLen},
	} {
		if *kv.dst, err = u(f, arch+kv.key); err != nil {
			return nil, err
		}
	}
	c.KVHeads = c.Heads
	if _, ok := f.Get(arch + ".attention.head_count_kv"); ok {
		if c.KVHeads, err = u(f, arch+".attention.head_count_kv"); err != nil {
			return nil, err
		}
	}
	if c.Heads == 0 || c.KVHeads == 0 || c.Heads%c.KVHeads != 0 || c.Layers == 0 || c.FFN == 0 {
		return nil, fmt.Errorf("inconsistent shape: dim %d, heads %d, kv heads %d, layers %d, ffn %d", c.Dim, c.Heads, c.KVHeads, c.Layers, c.FFN)
	}
	// A head is Dim/Heads wide unless the file says otherwise (Qwen3 and
	// Gemma 3 heads are wider: q is then Heads*HeadDim, not Dim).
	if _, ok := f.Get(arch + ".attention.key_length"); ok {
		if c.HeadDim, err = u(f, arch+".attention.key_length"); err != nil {
			return nil, err
		}
		if _, ok := f.Get(arch + ".attention.value_length"); ok {
			vl, err := u(f, arch+".attention.value_length")
			if err != nil {
				return nil, err
			}
			if vl != c.HeadDim {
				return nil, fmt.Errorf("value length %d differs from key length %d: not supported", vl, c.HeadDim)
			}
		}
	} else {
		if c.Dim%c.Heads != 0 {
			return nil, fmt.Errorf("inconsistent shape: dim %d does not divide into %d heads", c.Dim, c.Heads)
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if c.HeadDim == 0 || c.HeadDim%2 != 0 {
		return nil, fmt.Errorf("head dimension %d must be even and positive", c.HeadDim)
	}
	c.RopeDims = c.HeadDim
	if _, ok := f.Get(arch + ".rope.dimension_count"); ok {
		if c.RopeDims, err = u(f, arch+".rope.dimension_count"); err != nil {
			return nil, err
		}
	}
	if c.RopeDims > c.HeadDim || c.RopeDims%2 != 0 {
		return nil, fmt.Errorf("rope dimension count %d invalid for head dim %d", c.RopeDims, c.HeadDim)
	}
	c.RopeBase = 10000
	if _, ok := f.Get(arch + ".rope.freq_base"); ok {
		if c.RopeBase, err = f.Float(arch + ".rope.freq_base"); err != nil {
			return nil, err
		}
	}
	eps := 1e-5
	if _, ok := f.Get(arch + ".attention.layer_norm_rms_epsilon"); ok {
		if eps, err = f.Float(arch + ".attention.layer_norm_rms_epsilon"); err != nil {
			return nil, err
		}
	}
	c.Eps = float32(eps)
	if ai.gemma {
		if err := gemmaConfig(f, &c); err != nil {
			return nil, err
		}
	}
	if opts.ContextLen > 0 && opts.ContextLen < c.ContextLen {
		c.ContextLen = opts.ContextLen
	}
	if c.ContextLen == 0 || c.ContextLen > 4096 && opts.ContextLen == 0 {
		c.ContextLen = min(max(c.ContextLen, 1), 4096)
	}

	m := &Model{Config: c, File: f, threads: opts.Threads}
	if m.threads <= 0 {
		m.threads = runtime.GOMAXPROCS(0)
	}
	mat := func(name string, rows, cols int) (*Matrix, error) {
		ti, data, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		mm, err := newMatrix(name, ti, data)
		if err != nil {
			return nil, err
		}
		if mm.Rows != rows || mm.Cols != cols {
			return nil, fmt.Errorf("tensor %s is %dx%d, want %dx%d", name, mm.Rows, mm.Cols, rows, cols)
		}
		return mm, nil
	}
	vec := func(name string, n int) ([]float32, error) {
		mm, err := mat(name, 1, n)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		mm.Row(0, out)
		return out, nil
	}
	if m.tokEmbd, err = func() (*Matrix, error) {
		ti, data, err := f.Tensor("token_embd.weight")
		if err != nil {
			return nil, err
		}
		return newMatrix("token_embd.weight", ti, data)
	}(); err != nil {
		return nil, err
	}
	if m.tokEmbd.Cols != c.Dim {
		return nil, fmt.Errorf("token_embd.weight rows are %d long, want %d", m.tokEmbd.Cols, c.Dim)
	}
	c.Vocab = m.tokEmbd.Rows
	m.Config.Vocab = c.Vocab
	if m.outNorm, err = vec("output_norm.weight", c.Dim); err != nil {
		return nil, err
	}
	if f.HasTensor("output.weight") {
		if m.output, err = mat("output.weight", c.Vocab, c.Dim); err != nil {
			return nil, err
		}
	} else {
		m.output = m.tokEmbd // tied embeddings
	}
	kvDim, qDim := c.KVHeads*c.HeadDim, c.Heads*c.HeadDim
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		var l layer
		steps := []struct {
			dst        **Matrix
			name       string
			rows, cols int
		}{
			{&l.wq, "attn_q.weight", qDim, c.Dim}, {&l.wk, "attn_k.weight", kvDim, c.Dim},
			{&l.wv, "attn_v.weight", kvDim, c.Dim}, {&l.wo, "attn_output.weight", c.Dim, qDim},
			{&l.wGate, "ffn_gate.weight", c.FFN, c.Dim}, {&l.wUp, "ffn_up.weight", c.FFN, c.Dim},
			{&l.wDown, "ffn_down.weight", c.Dim, c.FFN},
		}
		for _, s := range steps {
			if *s.dst, err = mat(p+s.name, s.rows, s.cols); err != nil {
				return nil, err
			}
		}
		if l.attnNorm, err = vec(p+"attn_norm.weight", c.Dim); err != nil {
			return nil, err
		}
		if l.ffnNorm, err = vec(p+"ffn_norm.weight", c.Dim); err != nil {
			return nil, err
		}
		for _, b := range []namedVec{{&l.bq, "attn_q.bias", qDim}, {&l.bk, "attn_k.bias", kvDim}, {&l.bv, "attn_v.bias", kvDim}} {
			if f.HasTensor(p + b.name) {
				if !ai.biasAllowed {
					return nil, fmt.Errorf("tensor %s: %s has no attention biases", p+b.name, arch)
				}
				if *b.dst, err = vec(p+b.name, b.n); err != nil {
					return nil, err
				}
			}
		}
		var norms []namedVec
		if c.QKNorm {
			norms = append(norms, namedVec{&l.qNorm, "attn_q_norm.weight", c.HeadDim}, namedVec{&l.kNorm, "attn_k_norm.weight", c.HeadDim})
		}
		if c.PostNorms {
			norms = append(norms, namedVec{&l.postAttnNorm, "post_attention_norm.weight", c.Dim}, namedVec{&l.postFFNNorm, "post_ffw_norm.weight", c.Dim})
		}
		for _, n := range norms {
			if *n.dst, err = vec(p+n.name, n.n); err != nil {
				return nil, err
			}
		}
		l.local = c.IsLocal(i)
		m.layers = append(m.layers, l)
	}
	scale := 1.0
	if c.RopeScale != 0 {
		scale = c.RopeScale
	}
	m.ropeCos, m.ropeSin = ropeTables(c.ContextLen, c.RopeDims, c.RopeBase, scale)
	if c.SWAPattern > 0 && (c.RopeBaseLocal != c.RopeBase || scale != 1) {
		m.ropeCosLocal, m.ropeSinLocal = ropeTables(c.ContextLen, c.RopeDims, c.RopeBaseLocal, 1)
	} else {
		m.ropeCosLocal, m.ropeSinLocal = m.ropeCos, m.ropeSin
	}
	return m, nil
}

// ropeTables: theta_i = pos * scale * base^(-2i/d), computed in float64 once.
func ropeTables(n, dims int, base, scale float64) (cos, sin []float32) {
	half := dims / 2
	cos = make([]float32, n*half)
	sin = make([]float32, n*half)
	for pos := 0; pos < n; pos++ {
		for i := 0; i < half; i++ {
			theta := float64(pos) * scale * exp64(-2*float64(i)/float64(dims)*math.Log(base))
			cos[pos*half+i] = float32(math.Cos(theta))
			sin[pos*half+i] = float32(math.Sin(theta))
		}
	}
	return cos, sin
}

// gemmaConfig reads Gemma 3's settings, as llama.cpp applies them: every
// sixth layer global (RoPE base from the file, linear scaling if any), the
// others local (a sliding window, RoPE base 10000); embeddings scaled by
// sqrt(dim); q scaled by 1/sqrt(query_pre_attn_scalar) (the head dimension,
// or dim/heads for the 62-layer 27B, when the file does not say); final
// logits soft-capped when the file asks.
func gemmaConfig(f *gguf.File, c *Config) error {
	a := c.Arch
	c.PostNorms, c.GELU = true, true
	c.EmbedScale = float32(math.Sqrt(float64(c.Dim)))
	c.SWAPattern, c.RopeBaseLocal = 6, 10000
	var err error
	if c.SlidingWindow, err = u(f, a+".attention.sliding_window"); err != nil {
		return err
	}
	if c.SlidingWindow == 0 {
		c.SWAPattern = 0
	}
	qpas := float64(c.HeadDim)
	if c.Layers == 62 {
		qpas = float64(c.Dim / c.Heads)
	}
	if _, ok := f.Get(a + ".attention.query_pre_attn_scalar"); ok {
		v, err := u(f, a+".attention.query_pre_attn_scalar")
		if err != nil {
			return err
		}
		if v == 0 {
			return fmt.Errorf("%s.attention.query_pre_attn_scalar is 0", a)
		}
		qpas = float64(v)
	}
	c.QScale = float32(1 / math.Sqrt(qpas))
	if _, ok := f.Get(a + ".final_logit_softcapping"); ok {
		v, err := f.Float(a + ".final_logit_softcapping")
		if err != nil {
			return err
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s.final_logit_softcapping = %g is invalid", a, v)
		}
		c.LogitSoftcap = float32(v)
	}
	if _, ok := f.Get(a + ".rope.scaling.type"); ok {
		typ, err := f.String(a + ".rope.scaling.type")
		if err != nil {
			return err
		}
		switch typ {
		case "none":
		case "linear":
			factor, err := f.Float(a + ".rope.scaling.factor")
			if err != nil {
				return err
			}
			if !(factor >= 1) || math.IsInf(factor, 0) {
				return fmt.Errorf("%s.rope.scaling.factor = %g is invalid", a, factor)
			}
			c.RopeScale = 1 / factor
		default:
			return fmt.Errorf("rope scaling %q is not supported (linear is)", typ)
		}
	}
	return nil
}

// namedVec is a vector tensor of a layer and where it goes.
type namedVec struct {
	dst  *[]float32
	name string
	n    int
}

// ParamCount is the number of weights.
func (m *Model) ParamCount() int64 {
	var n int64
	for _, ti := range m.File.Tensors {
		n += int64(ti.Elements())
	}
	return n
}
