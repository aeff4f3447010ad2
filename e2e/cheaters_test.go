package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/testnet"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/validator"
)

// claimBackend serves under name, claims the registered model's hash on
// every receipt, and for the requests fake selects generates with a cheaper
// model instead: a provider that fabricates some or all of its output.
type claimBackend struct {
	name, honestName, cheapName string
	claim                       provider.ModelSpec
	honest, cheap               *provider.NativeBackend
	fake                        func(n int64) bool
	n                           atomic.Int64
}

func (c *claimBackend) Models() []provider.ModelSpec {
	s := c.claim
	s.Name = c.name
	return []provider.ModelSpec{s}
}

func (c *claimBackend) Prepare(model string, job *provider.Job) (*provider.Prepared, error) {
	if model != c.name {
		return nil, provider.ErrUnknownModel
	}
	b, inner := c.honest, c.honestName
	if c.fake(c.n.Add(1)) {
		b, inner = c.cheap, c.cheapName
	}
	p, err := b.Prepare(inner, job)
	if err != nil {
		return nil, err
	}
	p.Model, p.ModelHash = c.name, c.claim.Hash
	return p, nil
}

// TestCheatersCaught: on a two-validator network whose validators both run
// the audit worker, a provider that serves a cheaper model than the one it
// registered, one that fabricates half of its answers and one that stops
// serving its openings are each caught, confirmed by the second validator,
// slashed, and their clients refunded for fabricated answers; an honest
// provider serving every epoch beside them is never slashed and builds
// reputation.
func TestCheatersCaught(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.OpeningWindow = 10, 4, 40
	params.AuditCeilingBps = 5000 // new providers: half their receipts audited
	nw := testnet.New(t, testnet.Options{Validators: 2, Accounts: 5, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	real, cheap := filepath.Join(dir, "tiny.gguf"), filepath.Join(dir, "cheap.gguf")
	if err := native.WriteRandomModel(real, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	if err := native.WriteRandomModel(cheap, native.GenOptions{Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 600, Context: 256, Seed: 8, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	open := func(path string) *provider.NativeBackend {
		b, err := provider.NewNativeBackend([]string{path}, native.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	honestB := open(real)
	claim := honestB.Models()[0]
	start := func(i int, b provider.Backend) *provider.Provider {
		p, err := provider.New(provider.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1+i], Listen: "127.0.0.1:0",
			DataDir: filepath.Join(dir, fmt.Sprintf("provider%d", i)), PriceIn: 1000, PriceOut: 2000, Concurrency: 2, Tick: 100 * time.Millisecond}, b, quietLog(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cheater := func(name string, fake func(int64) bool) provider.Backend {
		return &claimBackend{name: name, honestName: claim.Name, cheapName: "cheap", claim: claim, honest: open(real), cheap: open(cheap), fake: fake}
	}
	honest := start(0, honestB)
	substitute := start(1, cheater("tiny-substitute", func(int64) bool { return true }))
	fabricator := start(2, cheater("tiny-fabricator", func(n int64) bool { return n%2 == 0 }))
	refuser := start(3, cheater("tiny-refuser", func(int64) bool { return false }))
	stopped := false
	defer func() {
		for _, p := range []*provider.Provider{honest, substitute, fabricator} {
			p.Stop()
		}
		if !stopped {
			refuser.Stop()
		}
	}()

	gw, err := gateway.New(gateway.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "gateway"), Deposit: 5_000_000, ChannelBlocks: 2000, Refresh: 200 * time.Millisecond}, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	oa := openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))

	// Both validators run the audit worker with the registered model.
	for i := range nw.Operators {
		c := nw.Client(i)
		aud, err := validator.NewAuditor(c, []string{real})
		if err != nil {
			t.Fatal(err)
		}
		defer aud.Close()
		w := validator.NewWorker(c, aud, c.NewSigner(nw.Operators[i]), nil, quietLog())
		go w.Run(ctx)
	}

	c := nw.Client(0)
	prov := func(p *provider.Provider) app.ProviderView {
		var v app.ProviderView
		if err := c.Query(ctx, "/provider/"+p.Address().String(), 0, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	chat := func(model string, i int) {
		if _, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("question %d for %s", i, model))}, MaxTokens: openai.Int(6)}); err != nil {
			t.Fatalf("chat %s %d: %v", model, i, err)
		}
	}
	bondBefore := map[string]uint64{}
	for _, p := range []*provider.Provider{honest, substitute, fabricator, refuser} {
		bondBefore[p.Address().String()] = prov(p).Bonded
	}

	// Traffic for a few epochs; the refuser stops (and so serves no openings)
	// once it has committed its first epoch.
	var refuserEpoch uint64
	deadline := time.Now().Add(150 * time.Second)
	for round := 0; ; round++ {
		for i := 0; i < 4; i++ {
			chat("tiny", round*4+i)
			if prov(fabricator).Faults == 0 {
				chat("tiny-fabricator", round*4+i)
			}
			if round == 0 {
				chat("tiny-substitute", i)
				chat("tiny-refuser", i)
			}
		}
		if !stopped {
			var list struct {
				Data []gateway.StoredReceipt `json:"data"`
			}
			getJSON(t, gw.URL()+"/v1/receipts", &list)
			for _, r := range list.Data {
				if r.Provider == refuser.Address().String() {
					refuserEpoch = r.Epoch
				}
			}
			var cm app.CommitmentView
			for time.Now().Before(deadline) {
				if err := c.Query(ctx, fmt.Sprintf("/commitment/%d/%s", refuserEpoch, refuser.Address()), 0, &cm); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			refuser.Stop()
			stopped = true
		}
		if k := faultKinds(t, nw.Configs[0].API.Laddr); k[substitute.Address().String()]["fabricated_output"] &&
			k[fabricator.Address().String()]["fabricated_output"] && k[refuser.Address().String()]["refused_opening"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds: faults substitute %d, fabricator %d, refuser %d", round+1, prov(substitute).Faults, prov(fabricator).Faults, prov(refuser).Faults)
		}
		time.Sleep(1500 * time.Millisecond) // about an epoch
	}

	// The verdicts, as the explorer indexed them: every fabricated-output
	// fault refunded its receipt's exact amount to the client, and both
	// validators voted for each applied fault.
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, gw.URL()+"/v1/receipts?limit=1000", &list)
	amount := map[string]uint64{}
	for _, r := range list.Data {
		amount[fmt.Sprintf("%s/%d/%d", r.Provider, r.Epoch, r.Index)] = r.Amount
	}
	var verdicts []explorer.Verdict
	deadline = time.Now().Add(20 * time.Second)
	for {
		getJSON(t, "http://"+nw.Configs[0].API.Laddr+"/explorer/api/verdicts?limit=1000", &verdicts)
		applied := 0
		for _, v := range verdicts {
			if v.Applied {
				applied++
			}
		}
		if uint64(applied) >= prov(substitute).Faults+prov(fabricator).Faults+prov(refuser).Faults {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the explorer indexed %d applied verdicts", applied)
		}
		time.Sleep(200 * time.Millisecond)
	}
	kinds := map[string]map[string]bool{}
	for _, v := range verdicts {
		if v.Target == honest.Address().String() {
			t.Fatalf("the honest provider was reported: %+v", v)
		}
		if !v.Applied {
			// The first vote, or a vote on a receipt already faulted (e.g.
			// by the gateway's omission report): it changed nothing.
			if v.Slashed != 0 || v.Refund != 0 || v.Reward != 0 {
				t.Fatalf("an unapplied verdict moved funds: %+v", v)
			}
			continue
		}
		if v.Kind != "omitted_receipt" && v.Votes != 2 {
			t.Fatalf("a fault applied without the second validator: %+v", v)
		}
		if kinds[v.Target] == nil {
			kinds[v.Target] = map[string]bool{}
		}
		kinds[v.Target][v.Kind] = true
		if v.Kind == "fabricated_output" {
			a := amount[fmt.Sprintf("%s/%d/%d", v.Provider, v.Epoch, v.Index)]
			if a == 0 || v.Refund != a {
				t.Fatalf("fabricated receipt %s/%d/%d: refund %d, the receipt billed %d", v.Provider, v.Epoch, v.Index, v.Refund, a)
			}
		}
	}
	if !kinds[substitute.Address().String()]["fabricated_output"] || !kinds[fabricator.Address().String()]["fabricated_output"] || !kinds[refuser.Address().String()]["refused_opening"] {
		t.Fatalf("fault kinds: %v", kinds)
	}

	// Each cheater lost exactly the slashes of its applied faults, in order
	// (a stopped provider also fails the gateway's omission challenge).
	// Audits of later epochs may still land: compare until both views agree.
	bps := map[string]uint64{"fabricated_output": params.SlashProviderFraudBps, "refused_opening": params.SlashProviderRefusalBps, "omitted_receipt": params.SlashProviderOmitBps}
	deadline = time.Now().Add(30 * time.Second)
	for {
		getJSON(t, "http://"+nw.Configs[0].API.Laddr+"/explorer/api/verdicts?limit=1000", &verdicts)
		mismatch := ""
		for _, p := range []*provider.Provider{substitute, fabricator, refuser} {
			v := prov(p)
			want, n := bondBefore[v.Address.String()], uint64(0)
			for i := len(verdicts) - 1; i >= 0; i-- { // oldest first
				if verdicts[i].Applied && verdicts[i].Target == v.Address.String() {
					want -= want * bps[verdicts[i].Kind] / 10000
					n++
				}
			}
			if v.Bonded != want || v.Faults != n || v.ReputationBps != 0 {
				mismatch = fmt.Sprintf("provider %s: bond %d, want %d after %d faults (chain counts %d); reputation %d", v.Address, v.Bonded, want, n, v.Faults, v.ReputationBps)
			}
		}
		if mismatch == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(mismatch)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// The honest provider: never slashed; its reputation grows as its epochs settle.
	deadline = time.Now().Add(60 * time.Second)
	for {
		v := prov(honest)
		if v.Faults != 0 || v.Bonded != bondBefore[v.Address.String()] {
			t.Fatalf("honest provider slashed: %+v", v)
		}
		if v.ReputationBps > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("honest provider's reputation never grew: %+v", v)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// faultKinds maps each provider to the kinds of its applied faults, as the
// explorer on api indexed them.
func faultKinds(t *testing.T, api string) map[string]map[string]bool {
	var vs []explorer.Verdict
	getJSON(t, "http://"+api+"/explorer/api/verdicts?limit=1000", &vs)
	out := map[string]map[string]bool{}
	for _, v := range vs {
		if !v.Applied {
			continue
		}
		if out[v.Target] == nil {
			out[v.Target] = map[string]bool{}
		}
		out[v.Target][v.Kind] = true
	}
	return out
}
