package native

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/tokenizer"
)

// FuzzLoadModel: a mutated model file either fails to load with an error or
// loads and runs; it never panics.
func FuzzLoadModel(f *testing.F) {
	dir := f.TempDir()
	for _, arch := range []string{"qwen3", "gemma3"} { // q/k norms, post-norms, windows, templates
		p := filepath.Join(dir, arch+".gguf")
		if err := WriteRandomModel(p, GenOptions{Arch: arch, Dim: 32, Layers: 6, Heads: 2, HeadDim: 32, Vocab: 300, Context: 32, Seed: 1, Type: gguf.Q8_0, SlidingWindow: 4}); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		f.Add(b, uint(len(b)/3), byte(0x10))
	}
	path := filepath.Join(dir, "seed.gguf")
	if err := WriteRandomModel(path, GenOptions{Dim: 32, Layers: 1, Heads: 2, Vocab: 300, Context: 32, Seed: 1, Type: gguf.Q8_0}); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(path)
	f.Add(seed, uint(0), byte(0))
	f.Add(seed, uint(len(seed)/2), byte(0xff))
	// one seed per weight type, mutated inside its tensor data
	for i, typ := range supportedTypes {
		o := GenOptions{Dim: 32, Layers: 1, Heads: 2, Vocab: 300, Context: 32, Seed: 1, Type: typ}
		if elems, _, _ := typ.BlockSize(); elems == qkK {
			o.Dim, o.FFN = 256, 256
		}
		p := filepath.Join(dir, typ.String()+".gguf")
		if err := WriteRandomModel(p, o); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		f.Add(b, uint(len(b)-1-i*37), byte(0x7c)) // an f16 scale's high byte made huge
		f.Add(b[:len(b)-100], uint(0), byte(0))   // truncated tensor data
	}
	f.Fuzz(func(t *testing.T, b []byte, at uint, val byte) {
		if len(b) > 0 {
			b = append([]byte(nil), b...)
			b[int(at%uint(len(b)))] ^= val
		}
		g, err := gguf.Parse(b)
		if err != nil {
			return
		}
		m, err := FromFile(g, Options{ContextLen: 16})
		if err != nil {
			return
		}
		if tok, err := tokenizer.FromGGUF(g); err == nil {
			ids := tok.Encode("hello", tok.AddBOS, true)
			if c, err := ChatTemplateOf(g, tok); err == nil {
				c.Prompt(tok, []Message{{Role: "user", Content: "hello"}})
			}
			if len(ids) > 0 && len(ids) < 16 {
				m.NewSession().Forward(ids, false)
			}
		}
	})
}
