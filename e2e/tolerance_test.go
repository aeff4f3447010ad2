package e2e

import (
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openai/openai-go"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/oaisim"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/validator"
)

// TestTolerancePath: two providers put OpenAI-compatible backends that
// behave like GPUs (logits with noise, so nothing reproduces bit for bit) in
// front of the registered model, declared as NAME=FILE.gguf. The honest one
// serves epoch after epoch and every audit of it passes on the tolerance
// path; the other runs a prefill attack (a cheaper model writes every token,
// the registered model only scores them, so the reported log-probs are
// right) and is caught by the plausibility test, confirmed by the second
// validator, slashed, and its client refunded.
func TestTolerancePath(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.OpeningWindow = 10, 4, 40
	params.AuditCeilingBps = 5000
	a := startAuditNet(t, params, 3)
	nw, c, ctx := a.nw, a.c, a.ctx

	load := func(path string) *native.Model {
		m, err := native.Load(path, native.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	real, cheap := load(a.real), load(a.cheap)
	backend := func(opts oaisim.Options) *provider.OpenAIBackend {
		srv, err := oaisim.New("tiny-gpu", real, opts)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler()) // 127.0.0.1
		t.Cleanup(hs.Close)
		b, err := provider.NewOpenAIBackend(hs.URL+"/v1", "", []string{"tiny-gpu=" + a.real}, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		if b.Models()[0].Hash != a.claim.Hash {
			t.Fatal("a verifiable adapter model is not registered under its GGUF's hash")
		}
		return b
	}
	honest := a.provider(0, backend(oaisim.Options{Noise: 0.02}))
	attacker := a.provider(1, backend(oaisim.Options{Noise: 0.02, Writer: cheap}))
	bondBefore := map[string]uint64{}
	for _, p := range []*provider.Provider{honest, attacker} {
		bondBefore[p.Address().String()] = a.view(p).Bonded
	}

	// Both serve "tiny-gpu": the gateway spreads requests over them. Long
	// enough answers (32 tokens, temperature 1) for the plausibility test.
	chat := func(i int) {
		if _, err := a.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "tiny-gpu",
			Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("tell me about the network, part %d", i))},
			MaxTokens:   openai.Int(32),
			Temperature: openai.Float(1), Seed: openai.Int(int64(i))}); err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
	}
	served := func(p *provider.Provider) map[uint64]bool {
		out := map[uint64]bool{}
		for _, r := range a.receipts() {
			if r.Provider == p.Address().String() {
				out[r.Epoch] = true
			}
		}
		return out
	}
	a.everyEpoch(150*time.Second, "the attacker's fault, with the honest provider serving 4 epochs", func(round int) (bool, string) {
		for i := 0; i < 6; i++ {
			chat(round*6 + i)
		}
		if faultKinds(t, nw.Configs[0].API.Laddr)[attacker.Address().String()]["fabricated_output"] && len(served(honest)) >= 4 {
			return true, ""
		}
		return false, fmt.Sprintf("attacker faults %d, honest served %d epochs", a.view(attacker).Faults, len(served(honest)))
	})

	// The attacker's applied verdicts are fabricated-output faults, each
	// refunding its receipt's exact amount, with both validators' votes.
	amount := map[string]uint64{}
	for _, r := range a.receipts() {
		amount[fmt.Sprintf("%s/%d/%d", r.Provider, r.Epoch, r.Index)] = r.Amount
	}
	var verdicts []explorer.Verdict
	getJSON(t, "http://"+nw.Configs[0].API.Laddr+"/explorer/api/verdicts?limit=1000", &verdicts)
	applied := 0
	for _, v := range verdicts {
		if v.Target == honest.Address().String() {
			t.Fatalf("the honest provider was reported: %+v", v)
		}
		if !v.Applied || v.Kind != "fabricated_output" {
			continue
		}
		applied++
		if billed := amount[fmt.Sprintf("%s/%d/%d", v.Provider, v.Epoch, v.Index)]; billed == 0 || v.Refund != billed || v.Votes != 2 {
			t.Fatalf("verdict %+v: the receipt billed %d", v, billed)
		}
	}
	if applied == 0 {
		t.Fatal("no applied fabricated-output verdict")
	}
	if v := a.view(attacker); v.Bonded >= bondBefore[v.Address.String()] || v.Faults == 0 {
		t.Fatalf("attacker not slashed: %+v", v)
	}

	// Every committed epoch of the honest provider, audited again here: each
	// sampled receipt passes on the tolerance path (none is unverifiable).
	aud, err := validator.NewAuditor(c, []string{a.real})
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()
	// An epoch is sampled once its commit window has closed: wait until at
	// least three of the honest provider's epochs are (a loaded machine
	// commits and seeds them later than the loop above ends).
	seeded := func() []uint64 {
		var out []uint64
		for e := range served(honest) {
			var ep api.EpochView
			if err := c.Query(ctx, fmt.Sprintf("/epoch/%d", e), 0, &ep); err == nil && len(ep.Seed) > 0 {
				out = append(out, e)
			}
		}
		return out
	}
	var epochs []uint64
	poll.Until(t, 60*time.Second, "three of the honest provider's epochs sampled", func() (bool, string) {
		epochs = seeded()
		return len(epochs) >= 3, fmt.Sprintf("only epochs %v sampled", epochs)
	})
	checked := 0
	for _, e := range epochs {
		fs, err := aud.AuditEpoch(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Provider != honest.Address().String() {
				continue
			}
			if !f.OK {
				t.Fatalf("honest tolerance-path receipt failed: %+v", f)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Fatalf("only %d honest receipts audited", checked)
	}
	if v := a.view(honest); v.Faults != 0 || v.Bonded != bondBefore[v.Address.String()] {
		t.Fatalf("honest provider slashed: %+v", v)
	}
	t.Logf("honest receipts audited on the tolerance path: %d; attacker faults: %d", checked, a.view(attacker).Faults)
}
