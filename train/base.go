package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	"github.com/agoranet/agora/engine/gguf"
)

// LoadBase starts a run from a base model instead of seeded weights: the
// F32 GGUF of a model of the run's shape and vocabulary (one this trainer
// wrote, e.g. a finished run to continue on other data). It replaces the
// weights of a trainer at step 0; the optimizer moments stay zero. The
// base is part of the state from then on (the weights are hashed), so two
// runs from the same base, data and seed stay bit-identical.
func LoadBase(tr *Trainer, f *gguf.File) error {
	if tr.Step != 0 {
		return fmt.Errorf("base model: the run is at step %d, a base replaces the weights only at step 0", tr.Step)
	}
	if err := sameTokenizer(tr.Cfg, f); err != nil {
		return err
	}
	for _, t := range tr.ts {
		ti, raw, err := f.Tensor(t.name)
		if err != nil {
			return fmt.Errorf("base model: %w", err)
		}
		if ti.Type != gguf.F32 {
			return fmt.Errorf("base model: tensor %s is %s; the trainer starts from F32 weights (write the base with --type f32)", t.name, ti.Type)
		}
		if ti.Elements() != uint64(t.size()) {
			return fmt.Errorf("base model: tensor %s has %d elements, this run's shape wants %d (%d×%d): another preset", t.name, ti.Elements(), t.size(), t.rows, t.cols)
		}
		w := tr.W[t.off : t.off+t.size()]
		for i := range w {
			w[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
	return nil
}

// sameTokenizer checks that a base model carries the vocabulary the run's
// data is encoded with (the trainer's, a function of the vocabulary size).
func sameTokenizer(c Config, f *gguf.File) error {
	ref, err := vocabFile(c)
	if err != nil {
		return fmt.Errorf("base model: %w", err)
	}
	for _, k := range []string{"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.merges"} {
		want, wok := ref.Get(k)
		got, gok := f.Get(k)
		if gok != wok || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("base model: its %s is not this run's (a %d-token vocabulary of Agora's trainer): the data would be read with another tokenizer", k, c.Vocab)
		}
	}
	return nil
}
