// Package native is Agora's built-in inference engine: pure Go, deterministic
// and batch-invariant transformer inference for llama-family GGUF models.
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
}

// supported architectures and their RoPE layout (as llama.cpp uses them).
var archRopeNeoX = map[string]bool{"llama": false, "mistral": false, "qwen2": true}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    *Matrix
	bq, bk, bv        []float32 // optional biases (Qwen2)
	wGate, wUp, wDown *Matrix
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
	threads int
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
	neox, ok := archRopeNeoX[arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (llama, mistral, qwen2 are)", arch)
	}
	c := Config{Arch: arch, RopeNeoX: neox}
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
	if c.Heads == 0 || c.KVHeads == 0 || c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 || c.Layers == 0 || c.FFN == 0 {
		return nil, fmt.Errorf("inconsistent shape: dim %d, heads %d, kv heads %d, layers %d, ffn %d", c.Dim, c.Heads, c.KVHeads, c.Layers, c.FFN)
	}
	c.HeadDim = c.Dim / c.Heads
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
	kvDim := c.KVHeads * c.HeadDim
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		var l layer
		steps := []struct {
			dst        **Matrix
			name       string
			rows, cols int
		}{
			{&l.wq, "attn_q.weight", c.Dim, c.Dim}, {&l.wk, "attn_k.weight", kvDim, c.Dim},
			{&l.wv, "attn_v.weight", kvDim, c.Dim}, {&l.wo, "attn_output.weight", c.Dim, c.Dim},
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
		for _, b := range []struct {
			dst  *[]float32
			name string
			n    int
		}{{&l.bq, "attn_q.bias", c.Dim}, {&l.bk, "attn_k.bias", kvDim}, {&l.bv, "attn_v.bias", kvDim}} {
			if f.HasTensor(p + b.name) {
				if *b.dst, err = vec(p+b.name, b.n); err != nil {
					return nil, err
				}
			}
		}
		m.layers = append(m.layers, l)
	}
	// RoPE tables: theta_i = pos * base^(-2i/d), computed in float64 once.
	half := c.RopeDims / 2
	m.ropeCos = make([]float32, c.ContextLen*half)
	m.ropeSin = make([]float32, c.ContextLen*half)
	for pos := 0; pos < c.ContextLen; pos++ {
		for i := 0; i < half; i++ {
			theta := float64(pos) * exp64(-2*float64(i)/float64(c.RopeDims)*math.Log(c.RopeBase))
			m.ropeCos[pos*half+i] = float32(math.Cos(theta))
			m.ropeSin[pos*half+i] = float32(math.Sin(theta))
		}
	}
	return m, nil
}

// ParamCount is the number of weights.
func (m *Model) ParamCount() int64 {
	var n int64
	for _, ti := range m.File.Tensors {
		n += int64(ti.Elements())
	}
	return n
}
