package demomodel

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/train"
)

// TestEmbeddedModelIsTheLoggedOne: the embedded GGUF is the file the
// embedded log's run wrote (its sha256), the log is a whole run (a
// checkpoint every 10 steps up to its last, the last its final state) that
// beats the bigram baseline on held-out text, and the model loads in the
// engine with the demo preset's shape.
func TestEmbeddedModelIsTheLoggedOne(t *testing.T) {
	l, err := ReadLog()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(GGUF)
	if got := hex.EncodeToString(sum[:]); got != l.ModelSHA256 {
		t.Fatalf("embedded GGUF sha256 %s, the log records %s: rebuild both with scripts/demo-model.sh", got, l.ModelSHA256)
	}
	if len(GGUF) > 8<<20 {
		t.Errorf("the demo model is %d bytes, over the 8 MB a committed model may weigh", len(GGUF))
	}
	if l.Preset != "demo" || l.Hyper.Seed != 1 || l.Hyper.Steps <= 0 {
		t.Fatalf("log of preset %q, seed %d, %d steps; want the demo preset, seed 1", l.Preset, l.Hyper.Seed, l.Hyper.Steps)
	}
	if n := len(l.Checkpoints); n != l.Hyper.Steps/10 {
		t.Fatalf("%d checkpoints for %d steps, want one every 10 steps", n, l.Hyper.Steps)
	}
	for i, c := range l.Checkpoints {
		if c.Step != 10*(i+1) || len(c.Hash) != 64 {
			t.Fatalf("checkpoint %d: %+v", i, c)
		}
	}
	if last := l.Checkpoints[len(l.Checkpoints)-1]; last.Step != l.Hyper.Steps || last.Hash != l.FinalState {
		t.Errorf("last checkpoint %+v, final state %s after %d steps", last, l.FinalState, l.Hyper.Steps)
	}
	if !(l.HeldOutPPL > 1 && l.HeldOutPPL < l.BigramPPL) || l.EvalTokens < 10000 {
		t.Errorf("held-out perplexity %.2f against the bigram model's %.2f over %d tokens: want the trained model lower", l.HeldOutPPL, l.BigramPPL, l.EvalTokens)
	}
	t.Logf("%s: %d parameters, %d steps, held-out perplexity %.2f (bigram %.2f), %d bytes", Name, l.Params, l.Hyper.Steps, l.HeldOutPPL, l.BigramPPL, len(GGUF))

	m, tok := load(t)
	want := train.Presets["demo"].Config
	if c := m.Config; c.Dim != want.Dim || c.Layers != want.Layers || c.Vocab != want.Vocab || c.ContextLen != want.SeqLen || m.ParamCount() != int64(l.Params) {
		t.Errorf("loaded shape %+v (%d parameters), want the demo preset %+v (%d)", m.Config, m.ParamCount(), want, l.Params)
	}
	if tok.VocabSize() != want.Vocab {
		t.Errorf("tokenizer of %d tokens, want %d", tok.VocabSize(), want.Vocab)
	}
}

func load(t *testing.T) (*native.Model, *tokenizer.Tokenizer) {
	t.Helper()
	f, err := gguf.Parse(GGUF)
	if err != nil {
		t.Fatal(err)
	}
	m, err := native.FromFile(f, native.Options{})
	if err != nil {
		t.Fatalf("the engine cannot load the demo model: %v", err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// TestDemoModelWritesEnglish: the engine (Q8_0 weights, as `agora up`
// serves them) predicts English it never trained on far better than
// chance, and its answer to the README's chat (sampled, seed 1) is words.
func TestDemoModelWritesEnglish(t *testing.T) {
	m, tok := load(t)
	// Plain English, written for this test (not a Brown Corpus sentence).
	text := "When the man came back to the house that night, his wife told him that the children had gone to the city with their teacher and would not be home until Monday."
	ids := tok.Encode(text, true, false)
	logits, err := m.NewSession().Forward(ids, true)
	if err != nil {
		t.Fatal(err)
	}
	var nll float64
	for i := 0; i+1 < len(ids); i++ {
		nll -= float64(native.LogSoftmax(logits[i])[ids[i+1]])
	}
	ppl := math.Exp(nll / float64(len(ids)-1))
	t.Logf("perplexity %.2f over %d tokens of unseen English (chance: %d)", ppl, len(ids)-1, tok.VocabSize())
	if ppl > 30 {
		t.Errorf("perplexity %.2f on English text, want below 30 (chance is %d)", ppl, tok.VocabSize())
	}

	chat, err := native.ChatTemplateOf(m.File, tok)
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := chat.Prompt(tok, []native.Message{{Role: "user", Content: "Hello!"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Generate(tok, prompt, native.SampleParams{Temperature: 0.8, Seed: 1, MaxTokens: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answer to Hello! (temperature 0.8, seed 1): %q", res.Text)
	common := map[string]bool{"the": true, "of": true, "and": true, "to": true, "a": true, "in": true, "is": true, "was": true, "he": true, "that": true, "it": true, "for": true, "with": true, "as": true, "his": true, "on": true, "be": true, "at": true, "by": true, "i": true, "this": true, "had": true, "not": true, "are": true, "but": true, "from": true, "or": true, "have": true, "an": true, "they": true, "which": true, "you": true, "were": true, "her": true, "she": true, "we": true}
	words, known := 0, 0
	for _, w := range strings.Fields(res.Text) {
		w = strings.ToLower(strings.Trim(w, `.,;:!?"'()-`))
		if w == "" {
			continue
		}
		words++
		if common[w] {
			known++
		}
	}
	if len(res.Tokens) < 32 || words < 8 || known < 3 {
		t.Errorf("answer %q: %d tokens, %d words, %d of them common English words; want English-like text", res.Text, len(res.Tokens), words, known)
	}
}
