package validator

import (
	"context"
	"crypto/sha256"
	"github.com/agoranet/agora/chain/api"
	"os"
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/testkey"
)

// TestPartialTranscript: a stream cut short is recorded as the prefix its
// provider generated (transcript marked cancelled, receipt counting those
// tokens). Its opening checks like a full one; the same prefix under a
// receipt claiming more tokens than it records, or with a token changed,
// is a fabrication.
func TestPartialTranscript(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := native.WriteRandomModel(path, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	a, err := NewAuditor(nil, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	bz, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mh := sha256.Sum256(bz)
	m := a.models[mh]
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		t.Fatal(err)
	}
	params := native.SampleParams{Temperature: 0.9, TopK: 40, TopP: 0.95, Seed: 5, MaxTokens: 200}
	prompt := tok.Encode("a stream cut short", true, false)
	// As the provider does when its request is cancelled: the generation
	// stops at the token in hand, which is kept.
	const cut = 12
	res, err := m.Generate(tok, prompt, params, func(native.TokenResult) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tokens) != 1 {
		t.Fatalf("a generation stopped at its first token has %d tokens", len(res.Tokens))
	}
	n := 0
	res, err = m.Generate(tok, prompt, params, func(native.TokenResult) bool { n++; return n < cut })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tokens) != cut {
		t.Fatalf("the generation ended by itself after %d tokens, before the cut at %d (%s): pick another seed", len(res.Tokens), cut, res.FinishReason)
	}
	tr := &inference.Transcript{Model: "m", PromptIDs: prompt, Temperature: params.Temperature, TopK: params.TopK, TopP: params.TopP,
		Seed: params.Seed, MaxTokens: params.MaxTokens, Text: []byte(res.Text), Cancelled: true}
	for _, x := range res.Tokens {
		tr.OutputIDs = append(tr.OutputIDs, x.ID)
		tr.Logprobs = append(tr.Logprobs, x.Logprob)
	}
	priv, pub := testkey.Pair("partial-provider")
	prov := types.AddressFromPubKey(pub)
	respHash := sha256.Sum256(tr.Text)
	// open signs a receipt for tr claiming completion tokens and returns
	// the finding on its opening (a one-receipt epoch).
	open := func(completion uint32, tr *inference.Transcript) Finding {
		t.Helper()
		r := &types.Receipt{ChainId: "c", Provider: prov, ChannelId: 1, Epoch: 3, Index: 0, RequestHash: make([]byte, 32),
			ResponseHash: respHash[:], ModelHash: mh[:], PromptTokens: uint32(len(prompt)), CompletionTokens: completion,
			PriceInputPer_1K: 1000, PriceOutputPer_1K: 2000, Amount: inference.Cost(len(prompt), int(completion), 1000, 2000), Seed: params.Seed}
		sr, err := receipt.Sign(priv, r)
		if err != nil {
			t.Fatal(err)
		}
		ids := [][32]byte{sr.ID()}
		proof, err := merkle.Prove(ids, 0)
		if err != nil {
			t.Fatal(err)
		}
		root := merkle.Root(ids)
		o := inference.Opening{Proof: receipt.ProofToJSON(sr, proof, root, true), Transcript: tr}
		return a.checkOpening(context.Background(), api.EpochView{Number: 3}, api.CommitmentView{Provider: prov, RecordCount: 1, Root: root[:]}, pub, 0, o)
	}
	if f := open(cut, tr); !f.OK || f.Fault != FaultNone {
		t.Fatalf("an honest partial transcript failed: %+v", f)
	}
	if f := open(cut+5, tr); f.OK || f.Fault != FaultFabricated {
		t.Fatalf("a receipt claiming %d tokens for a transcript of %d passed: %+v", cut+5, cut, f)
	}
	bad := *tr
	bad.OutputIDs = append([]int(nil), tr.OutputIDs...)
	bad.OutputIDs[cut-1] = (bad.OutputIDs[cut-1] + 1) % 600
	if f := open(cut, &bad); f.OK || f.Fault != FaultFabricated || f.Report == nil {
		t.Fatalf("a partial transcript with its last token changed passed: %+v", f)
	}
}
