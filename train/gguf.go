package train

import (
	"bytes"
	"fmt"
	"io"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
)

// genOptions is the engine model generator's description of this shape:
// the trainer writes models with it (metadata, tokenizer, tensor names and
// order), and its vocabulary is the tokenizer the data is encoded with.
func (c Config) genOptions(typ gguf.TensorType, name string) native.GenOptions {
	return native.GenOptions{
		Arch: "llama", Dim: c.Dim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads,
		FFN: c.FFN, Vocab: c.Vocab, Context: c.SeqLen, Type: typ, Tied: c.Tied, Name: name,
	}
}

// WriteGGUFTo writes the model WriteGGUF writes onto w (the same bytes).
func (tr *Trainer) WriteGGUFTo(w io.Writer, typ gguf.TensorType, name string) error {
	o := tr.Cfg.genOptions(typ, name)
	o.Weights = tr.Weights()
	return native.WriteRandomModelTo(w, o)
}

// WriteGGUF writes the model in the engine's layout with weights of type
// typ (F32, or any type the engine's writer quantizes to).
func (tr *Trainer) WriteGGUF(path string, typ gguf.TensorType, name string) error {
	o := tr.Cfg.genOptions(typ, name)
	o.Weights = tr.Weights()
	if err := native.WriteRandomModel(path, o); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Tokenizer is the engine's tokenizer for a shape's vocabulary (a
// SentencePiece-style vocabulary of bytes and the generator's merges, the
// one every written model carries).
func Tokenizer(c Config) (*tokenizer.Tokenizer, error) {
	f, err := vocabFile(c)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return tokenizer.FromGGUF(f)
}

// vocabFile is a one-layer model of c's vocabulary, built in memory (no
// temporary file: a compute job has nowhere to write one): its tokenizer
// metadata is every written model's.
func vocabFile(c Config) (*gguf.File, error) {
	var b bytes.Buffer
	o := native.GenOptions{Dim: 32, Layers: 1, Heads: 1, FFN: 32, Vocab: c.Vocab, Context: 16, Type: gguf.F32, Tied: true}
	if err := native.WriteRandomModelTo(&b, o); err != nil {
		return nil, err
	}
	return gguf.Parse(b.Bytes())
}
