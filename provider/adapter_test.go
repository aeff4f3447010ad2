package provider

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/oaisim"
	"github.com/agoranet/agora/verify"
)

// TestVerifiableAdapter: a NAME=FILE.gguf model is registered under the
// file's hash, its prompt is tokenized locally and sent as token ids, and
// the transcript it builds from the backend's log-probs (streamed or not,
// chat or plain) passes the validators' tolerance check; a backend that
// reports no log-probs is refused.
func TestVerifiableAdapter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.gguf")
	if err := native.WriteRandomModel(path, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	m, err := native.Load(path, native.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := oaisim.New("gpu", m, oaisim.Options{Noise: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	b, err := NewOpenAIBackend(hs.URL+"/v1", "", []string{"gpu=" + path, "plain"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want, _ := fileHash(path)
	if b.Models()[0].Hash != want || b.Models()[0].ContextLength != 256 {
		t.Fatalf("spec %+v", b.Models()[0])
	}
	vocab := verify.NewVocab(tok)
	for _, c := range []struct {
		name   string
		job    Job
		stream bool
	}{
		{"chat", Job{Chat: true, Messages: []native.Message{{Role: "user", Content: "hello there"}}, MaxTokens: 24, Params: native.SampleParams{Temperature: 1, Seed: 4}}, false},
		{"chat stream", Job{Chat: true, Messages: []native.Message{{Role: "user", Content: "hello there"}}, MaxTokens: 24, Params: native.SampleParams{Temperature: 0.8, TopP: 0.9, Seed: 5}}, true},
		{"plain", Job{Prompt: "the quick brown fox", MaxTokens: 24, Params: native.SampleParams{Temperature: 0}}, false},
	} {
		p, err := b.Prepare("gpu", &c.job)
		if err != nil {
			t.Fatal(err)
		}
		var streamed strings.Builder
		var onDelta DeltaFunc
		if c.stream {
			onDelta = func(s string, _ bool) error { streamed.WriteString(s); return nil }
		}
		out, err := p.Run(context.Background(), onDelta)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if out.Verify != VerifyTolerance || out.CompletionTokens != len(out.Pieces) || out.PromptTokens != len(p.PromptIDs) || len(out.Pieces) == 0 {
			t.Fatalf("%s: output %+v", c.name, out)
		}
		if c.stream && streamed.String() != out.Text {
			t.Fatalf("%s: streamed %q, text %q", c.name, streamed.String(), out.Text)
		}
		rep, err := verify.CheckTolerance(m, vocab, verify.Reported{PromptIDs: p.PromptIDs, Pieces: out.Pieces, Logprobs: out.Logprobs,
			Top: out.Top, Params: p.Params, Text: []byte(out.Text)}, verify.DefaultTolerances())
		if err != nil {
			t.Fatalf("%s: honest transcript refused: %v (%+v)", c.name, err, rep)
		}
	}
	// A model declared without a GGUF stays unverifiable, and a backend
	// that answers a verifiable model without log-probs is refused.
	if b.Models()[1].Hash == want {
		t.Fatal("plain model registered under the GGUF hash")
	}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"choices":[{"text":"hello","finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
	}))
	defer bare.Close()
	nb, err := NewOpenAIBackend(bare.URL+"/v1", "", []string{"gpu=" + path}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	p, err := nb.Prepare("gpu", &Job{Prompt: "hi", MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no logprobs") {
		t.Fatalf("backend without log-probs: %v", err)
	}
	// A backend whose log-probs validators could not check (a token outside
	// the model's vocabulary; text that is not the tokens) fails the
	// request instead of producing a receipt.
	known, _ := json.Marshal(tok.Piece(300)) // a token of the vocabulary
	for _, answer := range []string{
		`{"choices":[{"text":"zz","logprobs":{"content":[{"token":"zz","logprob":-1,"bytes":[0,122,122],"top_logprobs":[]}]}}]}`,
		`{"choices":[{"text":"something else","logprobs":{"content":[{"token":` + string(known) + `,"logprob":-1,"top_logprobs":[]}]}}]}`,
	} {
		odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, answer) }))
		ob, err := NewOpenAIBackend(odd.URL+"/v1", "", []string{"gpu=" + path}, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ob.Prepare("gpu", &Job{Prompt: "hi", MaxTokens: 4})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "validators could not check") ||
			(strings.Contains(answer, "something") && !strings.Contains(err.Error(), "not the decoded output")) {
			t.Fatalf("unauditable transcript %s: %v", answer, err)
		}
		ob.Close()
		odd.Close()
	}
	for _, bad := range [][]string{{"=x.gguf"}, {"a", "a"}, {"gpu=" + filepath.Join(dir, "missing.gguf")}} {
		if _, err := NewOpenAIBackend(bare.URL, "", bad, 0); err == nil {
			t.Fatalf("declaration %q accepted", bad)
		}
	}
}
