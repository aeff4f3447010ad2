package train

import (
	"fmt"
	"math"

	"github.com/agoranet/agora/engine/native"
)

// Config is a model's shape (the llama architecture as engine/native reads
// it: RoPE on pairs (2i, 2i+1), base 10000, RMSNorm eps 1e-5).
type Config struct {
	Dim     int  `json:"dim"`
	Layers  int  `json:"layers"`
	Heads   int  `json:"heads"`
	KVHeads int  `json:"kv_heads"`
	FFN     int  `json:"ffn"`
	Vocab   int  `json:"vocab"`
	SeqLen  int  `json:"seq_len"` // tokens per training window (and the written context length)
	Tied    bool `json:"tied"`    // output projection reuses token_embd
}

const (
	ropeBase = 10000
	normEps  = float32(1e-5)
)

// Hyper are the optimisation settings.
type Hyper struct {
	Batch       int     `json:"batch"` // windows per step
	Steps       int     `json:"steps"` // the schedule's length
	Warmup      int     `json:"warmup"`
	LR          float64 `json:"lr"`
	MinLR       float64 `json:"min_lr"`
	WeightDecay float64 `json:"weight_decay"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	AdamEps     float64 `json:"adam_eps"`
	Clip        float64 `json:"clip"` // global gradient norm bound (0: off)
	Seed        uint64  `json:"seed"` // initial weights and data order
}

// Preset is a named model shape with hyperparameters that suit it.
type Preset struct {
	Config Config
	Hyper  Hyper
}

// Presets are the shapes `agora train --preset` offers.
var Presets = map[string]Preset{
	"tiny": {
		Config: Config{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 192, Vocab: 512, SeqLen: 64, Tied: true},
		Hyper:  Hyper{Batch: 8, Warmup: 20, LR: 3e-3, MinLR: 3e-4, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.95, AdamEps: 1e-8, Clip: 1},
	},
	"small": {
		Config: Config{Dim: 256, Layers: 4, Heads: 8, KVHeads: 4, FFN: 704, Vocab: 2048, SeqLen: 128, Tied: true},
		Hyper:  Hyper{Batch: 8, Warmup: 100, LR: 1.5e-3, MinLR: 1.5e-4, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.95, AdamEps: 1e-8, Clip: 1},
	},
	// demo is the model `agora up` serves (demomodel): small's shape with
	// a 256-token window, room for the chat template, a prompt and a
	// 64-token answer; 4 windows a step, so a 45-minute one-thread budget
	// buys more (noisier) steps.
	"demo": {
		Config: Config{Dim: 256, Layers: 4, Heads: 8, KVHeads: 4, FFN: 704, Vocab: 2048, SeqLen: 256, Tied: true},
		Hyper:  Hyper{Batch: 4, Warmup: 100, LR: 2e-3, MinLR: 2e-4, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.95, AdamEps: 1e-8, Clip: 1},
	},
}

// PresetNames lists the presets in order, for messages.
const PresetNames = "tiny, small, demo"

// Validate checks a shape.
func (c Config) Validate() error {
	if c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.FFN <= 0 || c.SeqLen < 2 {
		return fmt.Errorf("invalid shape %+v: every size must be positive and the window at least 2 tokens", c)
	}
	if c.Heads%c.KVHeads != 0 || c.Dim%c.Heads != 0 || (c.Dim/c.Heads)%2 != 0 {
		return fmt.Errorf("invalid shape: dim %d, heads %d, kv heads %d (heads must divide dim into even head widths and divide by kv heads)", c.Dim, c.Heads, c.KVHeads)
	}
	if c.Vocab < 300 {
		return fmt.Errorf("vocab %d: the engine's tokenizer needs at least 300 tokens", c.Vocab)
	}
	return nil
}

// HeadDim is the width of a head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// tensor is one named weight in the flat parameter vector.
type tensor struct {
	name       string
	rows, cols int // a vector has rows 1
	off        int
	decay      bool // matrices take weight decay; norms do not
}

func (t tensor) size() int { return t.rows * t.cols }

// layout lists the tensors in the engine's names and the order
// modelgen writes them; the flat vector (and the state hash) follow it.
func (c Config) layout() []tensor {
	qDim, kvDim := c.Dim, c.KVHeads*c.HeadDim()
	var ts []tensor
	off := 0
	add := func(name string, rows, cols int, decay bool) {
		ts = append(ts, tensor{name, rows, cols, off, decay})
		off += rows * cols
	}
	add("token_embd.weight", c.Vocab, c.Dim, true)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", 1, c.Dim, false)
		add(p+"attn_q.weight", qDim, c.Dim, true)
		add(p+"attn_k.weight", kvDim, c.Dim, true)
		add(p+"attn_v.weight", kvDim, c.Dim, true)
		add(p+"attn_output.weight", c.Dim, qDim, true)
		add(p+"ffn_gate.weight", c.FFN, c.Dim, true)
		add(p+"ffn_up.weight", c.FFN, c.Dim, true)
		add(p+"ffn_down.weight", c.Dim, c.FFN, true)
		add(p+"ffn_norm.weight", 1, c.Dim, false)
	}
	add("output_norm.weight", 1, c.Dim, false)
	if !c.Tied {
		add("output.weight", c.Vocab, c.Dim, true)
	}
	return ts
}

// ParamCount is the number of weights.
func (c Config) ParamCount() int {
	ts := c.layout()
	last := ts[len(ts)-1]
	return last.off + last.size()
}

// initWeights fills w from seed: matrices uniform with std 1/sqrt(fan in)
// (the residual projections scaled by 1/sqrt(2·layers)), embeddings and
// output std 1/sqrt(dim), norms 1; one SplitMix64 stream in layout order.
func initWeights(c Config, w []float32, seed uint64) {
	rng := native.NewRNG(seed)
	for _, t := range c.layout() {
		v := w[t.off : t.off+t.size()]
		if t.rows == 1 {
			for i := range v {
				v[i] = 1
			}
			continue
		}
		std := 1 / math.Sqrt(float64(t.cols))
		switch {
		case t.name == "token_embd.weight" || t.name == "output.weight":
			std = 1 / math.Sqrt(float64(c.Dim)) // logits of std ~1 from a normed x
		case hasSuffix(t.name, "attn_output.weight") || hasSuffix(t.name, "ffn_down.weight"):
			std /= math.Sqrt(2 * float64(c.Layers))
		}
		for i := range v {
			v[i] = float32((rng.Float64()*2 - 1) * std * math.Sqrt(3))
		}
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }
