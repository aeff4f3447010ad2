package verify

import (
	"bytes"
	"testing"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/internal/oaisim"
)

// TestPartialTranscripts: a generation cut short (its client left, or its
// provider stopped) is a prefix of a generation, ending neither at EOS nor
// at max_tokens. Both checks judge a prefix token by token, so an honest
// one passes; a tampered one, or one whose text runs past its tokens,
// does not.
func TestPartialTranscripts(t *testing.T) {
	f := newTolFixture(t)
	const cut = 12

	// Exact path: stopped as the provider stops a cancelled generation.
	params := native.SampleParams{Temperature: 0.8, TopK: 40, TopP: 0.95, FrequencyPenalty: 0.2, Seed: 99, MaxTokens: 100}
	prompt := f.tok.Encode("tell me about the network", true, false)
	n := 0
	res, err := f.real.Generate(f.tok, prompt, params, func(native.TokenResult) bool { n++; return n < cut })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tokens) != cut {
		t.Fatalf("the generation ended by itself after %d tokens (%s), before the cut at %d", len(res.Tokens), res.FinishReason, cut)
	}
	tr := Transcript{PromptIDs: prompt, Params: params}
	for _, x := range res.Tokens {
		tr.OutputIDs = append(tr.OutputIDs, x.ID)
		tr.Logprobs = append(tr.Logprobs, x.Logprob)
	}
	if err := CheckNative(f.real, tr); err != nil {
		t.Fatalf("honest partial transcript refused: %v", err)
	}
	bad := tr
	bad.OutputIDs = append([]int(nil), tr.OutputIDs...)
	bad.OutputIDs[cut-1] = (bad.OutputIDs[cut-1] + 1) % 600
	if err := CheckNative(f.real, bad); err == nil {
		t.Fatal("partial transcript with its last token changed accepted")
	}

	// Tolerance path: the first tokens a backend reported.
	p := native.SampleParams{Temperature: 0.8, TopP: 0.95, Seed: 11}
	full := f.serve(t, f.real, oaisim.Options{Noise: 0.02}, "a stream cut short by its client", p, 48)
	if len(full.Pieces) <= cut {
		t.Fatalf("the backend generated %d tokens, not more than %d", len(full.Pieces), cut)
	}
	part := Reported{PromptIDs: full.PromptIDs, Pieces: full.Pieces[:cut], Logprobs: full.Logprobs[:cut], Top: full.Top[:cut],
		Params: p, Text: bytes.Join(full.Pieces[:cut], nil)}
	tol := DefaultTolerances()
	if r, err := CheckTolerance(f.real, f.vocab, part, tol); err != nil || r.Tokens != cut {
		t.Fatalf("honest partial transcript refused: %v (%+v)", err, r)
	}
	tampered := part
	tampered.Logprobs = append([]float32(nil), part.Logprobs...)
	tampered.Logprobs[cut-1] -= 2
	if _, err := CheckTolerance(f.real, f.vocab, tampered, tol); err == nil {
		t.Fatal("partial transcript with a log-prob off by 2 nats accepted")
	}
	longer := part
	longer.Text = bytes.Join(full.Pieces, nil) // the text of more tokens than recorded
	if _, err := CheckTolerance(f.real, f.vocab, longer, tol); err == nil {
		t.Fatal("partial transcript whose text runs past its tokens accepted")
	}
}
