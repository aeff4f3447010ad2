package verify

import (
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
)

func TestCheckNative(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	if err := native.WriteRandomModel(path, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	m, err := native.Load(path, native.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		t.Fatal(err)
	}
	params := native.SampleParams{Temperature: 0.8, TopK: 40, TopP: 0.95, FrequencyPenalty: 0.2, Seed: 99, MaxTokens: 20}
	prompt := tok.Encode("tell me about the network", true, false)
	res, err := m.Generate(tok, prompt, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := Transcript{PromptIDs: prompt, Params: params}
	for _, x := range res.Tokens {
		tr.OutputIDs = append(tr.OutputIDs, x.ID)
		tr.Logprobs = append(tr.Logprobs, x.Logprob)
	}
	if err := CheckNative(m, tr); err != nil {
		t.Fatalf("honest transcript refused: %v", err)
	}
	// fabricated output: one token changed
	bad := tr
	bad.OutputIDs = append([]int(nil), tr.OutputIDs...)
	bad.OutputIDs[5] = (bad.OutputIDs[5] + 1) % 600
	if err := CheckNative(m, bad); err == nil {
		t.Fatal("changed token accepted")
	}
	// a log-prob off by one ulp
	bad = tr
	bad.Logprobs = append([]float32(nil), tr.Logprobs...)
	bad.Logprobs[3] = bad.Logprobs[3] * (1 + 1e-7)
	if err := CheckNative(m, bad); err == nil {
		t.Fatal("changed log-prob accepted")
	}
	// claimed seed differs from the one used
	bad = tr
	bad.Params.Seed = 100
	if err := CheckNative(m, bad); err == nil {
		t.Fatal("wrong seed accepted")
	}
	// served by a different model than claimed
	other := filepath.Join(dir, "other.gguf")
	if err := native.WriteRandomModel(other, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 8, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	m2, err := native.Load(other, native.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := CheckNative(m2, tr); err == nil {
		t.Fatal("transcript of another model accepted")
	}
}
