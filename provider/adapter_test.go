package provider

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/oaisim"
	"github.com/agoranet/agora/protocol/inference"
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
		ir     InferenceRequest
		stream bool
	}{
		{"chat", InferenceRequest{Chat: true, Messages: []native.Message{{Role: "user", Content: "hello there"}}, MaxTokens: 24, Params: native.SampleParams{Temperature: 1, Seed: 4}}, false},
		{"chat stream", InferenceRequest{Chat: true, Messages: []native.Message{{Role: "user", Content: "hello there"}}, MaxTokens: 24, Params: native.SampleParams{Temperature: 0.8, TopP: 0.9, Seed: 5}, Logprobs: true, TopLogprobs: 3}, true},
		{"plain", InferenceRequest{Prompt: "the quick brown fox", MaxTokens: 24, Params: native.SampleParams{Temperature: 0}}, false},
	} {
		p, err := b.Prepare("gpu", &c.ir)
		if err != nil {
			t.Fatal(err)
		}
		var streamed strings.Builder
		streamedTokens := 0
		var onDelta DeltaFunc
		if c.stream {
			onDelta = func(d Delta) error { streamed.WriteString(d.Text); streamedTokens += d.Tokens.Len(); return nil }
		}
		out, err := p.Run(context.Background(), onDelta)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if out.Verify != inference.VerifyTolerance || out.CompletionTokens != len(out.Pieces) || out.PromptTokens != len(p.PromptIDs) || len(out.Pieces) == 0 {
			t.Fatalf("%s: output %+v", c.name, out)
		}
		if c.stream && (streamed.String() != out.Text || streamedTokens != len(out.Pieces)) {
			t.Fatalf("%s: streamed %q with %d tokens' log-probs, text %q of %d tokens", c.name, streamed.String(), streamedTokens, out.Text, len(out.Pieces))
		}
		rep, err := verify.CheckTolerance(m, vocab, verify.Reported{PromptIDs: p.PromptIDs, Pieces: out.Pieces, Logprobs: out.Logprobs,
			Top: out.Top, Params: p.Params, Text: []byte(out.Text)}, verify.DefaultTolerances())
		if err != nil {
			t.Fatalf("%s: honest transcript refused: %v (%+v)", c.name, err, rep)
		}
	}
	if caps := strings.Join(b.Capabilities(), ","); caps != "chat,completions,stream,logprobs" {
		t.Fatalf("capabilities with a verifiable model: %s", caps)
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
	p, err := nb.Prepare("gpu", &InferenceRequest{Prompt: "hi", MaxTokens: 4})
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
		p, err := ob.Prepare("gpu", &InferenceRequest{Prompt: "hi", MaxTokens: 4})
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

// TestAdapterLogprobs: asked for log-probs, the adapter asks its backend
// for them in the endpoint's form (chat: logprobs true + top_logprobs;
// text: the number) and returns what the backend reported, streamed chunk
// by chunk too; a backend that answers without them fails the request.
func TestAdapterLogprobs(t *testing.T) {
	var asked []map[string]any
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		chatLP := `{"content":[{"token":"Hel","logprob":-0.5,"bytes":[72,101,108],"top_logprobs":[{"token":"Hel","logprob":-0.5,"bytes":[72,101,108]},{"token":"Hi","logprob":-1.5,"bytes":[72,105]}]},` +
			`{"token":"lo","logprob":-0.25,"bytes":[108,111],"top_logprobs":[{"token":"lo","logprob":-0.25,"bytes":[108,111]},{"token":"p","logprob":-2,"bytes":[112]}]}]}`
		switch {
		case req["model"] == "bare":
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
		case req["stream"] == true:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"choices":[{"delta":{"content":"Hel"},"logprobs":{"content":[{"token":"Hel","logprob":-0.5,"bytes":[72,101,108],"top_logprobs":[]}]}}]}`+"\n\n")
			io.WriteString(w, `data: {"choices":[{"delta":{"content":"lo"},"logprobs":{"content":[{"token":"lo","logprob":-0.25,"bytes":[108,111],"top_logprobs":[]}]},"finish_reason":"stop"}]}`+"\n\n")
			io.WriteString(w, `data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`+"\n\ndata: [DONE]\n\n")
		case r.URL.Path == "/v1/completions":
			io.WriteString(w, `{"choices":[{"text":"Hello","finish_reason":"stop","logprobs":{"tokens":["Hel","lo"],"token_logprobs":[-0.5,-0.25],"top_logprobs":[{"Hel":-0.5,"Hi":-1.5},{"lo":-0.25,"p":-2}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
		default:
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop","logprobs":`+chatLP+`}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
		}
	}))
	defer srv.Close()
	b, err := NewOpenAIBackend(srv.URL+"/v1", "", []string{"m", "bare"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if caps := strings.Join(b.Capabilities(), ","); caps != "chat,completions,stream" {
		t.Fatalf("capabilities of an adapter without verifiable models: %s", caps)
	}
	run := func(model string, ir InferenceRequest, onDelta DeltaFunc) (*Output, error) {
		p, err := b.Prepare(model, &ir)
		if err != nil {
			t.Fatal(err)
		}
		return p.Run(context.Background(), onDelta)
	}
	chat := InferenceRequest{Chat: true, Messages: []native.Message{{Role: "user", Content: "hi"}}, MaxTokens: 8, Logprobs: true, TopLogprobs: 2}
	text := InferenceRequest{Prompt: "hi", MaxTokens: 8, Logprobs: true, TopLogprobs: 2}
	// in this order: the checks below read the backend's requests by position
	for _, c := range []struct {
		name string
		ir   InferenceRequest
	}{{"chat", chat}, {"text", text}} {
		name, ir := c.name, c.ir
		out, err := run("m", ir, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out.Pieces) != 2 || string(out.Pieces[0]) != "Hel" || string(out.Pieces[1]) != "lo" || out.Logprobs[0] != -0.5 || out.Logprobs[1] != -0.25 ||
			len(out.Top[0]) != 2 || string(out.Top[0][1].Token) != "Hi" || out.Top[0][1].Logprob != -1.5 {
			t.Fatalf("%s: %q %v %+v", name, out.Pieces, out.Logprobs, out.Top)
		}
	}
	mu.Lock()
	if asked[0]["logprobs"] != true || asked[0]["top_logprobs"] != float64(2) || asked[1]["logprobs"] != float64(2) || asked[1]["top_logprobs"] != nil {
		t.Fatalf("asked the backend %v / %v", asked[0], asked[1])
	}
	mu.Unlock()
	var deltas []Delta
	out, err := run("m", chat, func(d Delta) error { deltas = append(deltas, d); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(deltas) != 2 || deltas[0].Tokens.Len() != 1 || deltas[1].Tokens.Logprobs[0] != -0.25 || len(out.Pieces) != 2 {
		t.Fatalf("streamed deltas %+v, output %+v", deltas, out)
	}
	if _, err := run("bare", chat, nil); err == nil || !strings.Contains(err.Error(), "backend returned none") {
		t.Fatalf("a backend without log-probs: %v", err)
	}
	// not asked for: none asked of the backend
	plain := chat
	plain.Logprobs = false
	if out, err := run("m", plain, nil); err != nil || len(out.Pieces) != 0 {
		t.Fatalf("not asked: %v %+v", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if last := asked[len(asked)-1]; last["logprobs"] != nil {
		t.Fatalf("asked the backend for log-probs unasked: %v", last)
	}
}
