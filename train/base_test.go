package train

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// TestLoadBase: a run started from a written F32 model holds exactly that
// model's weights (whatever its own seed), two runs from the same base and
// data stay bit-identical, and a base of another type, shape or
// vocabulary, or a run past step 0, is refused with the reason.
func TestLoadBase(t *testing.T) {
	cfg, hyp := smallRun(6)
	toks := randTokens(2000, cfg.Vocab, 3)
	first, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := first.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	write := func(tr *Trainer, typ gguf.TensorType) *gguf.File {
		var b bytes.Buffer
		if err := tr.WriteGGUFTo(&b, typ, "base"); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := write(first, gguf.F32)
	run := func() *Trainer {
		h := hyp
		h.Seed = 99 // other seeded weights, replaced by the base
		tr, err := New(cfg, h, NewData(randTokens(2000, cfg.Vocab, 4), cfg.SeqLen, 2), 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := LoadBase(tr, base); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a, b := run(), run()
	for name, w := range first.Weights() {
		got := a.Weights()[name]
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("%s[%d] = %v after LoadBase, the base has %v", name, i, got[i], w[i])
			}
		}
	}
	for range 3 {
		if _, err := a.TrainStep(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.TrainStep(); err != nil {
			t.Fatal(err)
		}
		if a.Hash() != b.Hash() {
			t.Fatalf("step %d: runs from the same base differ: %s vs %s", a.Step, a.Hash(), b.Hash())
		}
	}

	other := cfg
	other.Dim, other.FFN = 48, 96
	wide, err := New(other, hyp, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherVocab := cfg
	otherVocab.Vocab = 320
	voc, err := New(otherVocab, hyp, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() *Trainer {
		tr, err := New(cfg, hyp, NewData(toks, cfg.SeqLen, 1), 1)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	for _, c := range []struct {
		name string
		tr   *Trainer
		base *gguf.File
		want string
	}{
		{"quantized", fresh(), write(first, gguf.Q8_0), "is Q8_0; the trainer starts from F32"},
		{"another shape", fresh(), write(wide, gguf.F32), "has 14400 elements, this run's shape wants 9600"},
		{"another vocabulary", fresh(), write(voc, gguf.F32), "tokenizer.ggml.tokens is not this run's"},
		{"past step 0", a, base, "the run is at step 3"},
	} {
		if err := LoadBase(c.tr, c.base); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}
