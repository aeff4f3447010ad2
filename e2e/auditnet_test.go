package e2e

import (
	"context"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
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

func (c *claimBackend) Prepare(model string, ir *provider.InferenceRequest) (*provider.Prepared, error) {
	if model != c.name {
		return nil, provider.ErrUnknownModel
	}
	b, inner := c.honest, c.honestName
	if c.fake(c.n.Add(1)) {
		b, inner = c.cheap, c.cheapName
	}
	p, err := b.Prepare(inner, ir)
	if err != nil {
		return nil, err
	}
	p.Model, p.ModelHash = c.name, c.claim.Hash
	return p, nil
}

// auditNet is the verification tests' network: two validators that both
// run the audit worker with the registered model "tiny", a gateway paying
// from Accounts[0], and the providers a test starts (honest or cheating)
// with Accounts[1+i].
type auditNet struct {
	t           *testing.T
	ctx         context.Context
	nw          *testnet.Network
	c           *client.Client // node 0
	dir         string
	real, cheap string             // the registered model and a cheaper one with the same tokenizer
	claim       provider.ModelSpec // the registered model as providers announce it
	gw          *gateway.Gateway
	oa          openai.Client
}

func startAuditNet(t *testing.T, params types.Params, accounts int) *auditNet {
	t.Helper()
	nw := testnet.New(t, testnet.Options{Validators: 2, Accounts: accounts, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	a := &auditNet{t: t, nw: nw, c: nw.Client(0), dir: t.TempDir()}
	a.real, a.cheap = filepath.Join(a.dir, "tiny.gguf"), filepath.Join(a.dir, "cheap.gguf")
	if err := native.WriteRandomModel(a.real, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	if err := native.WriteRandomModel(a.cheap, native.GenOptions{Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 600, Context: 256, Seed: 8, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.ctx = ctx
	a.claim = a.backend(a.real).Models()[0]

	gw, err := gateway.New(gateway.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(a.dir, "gateway"), Deposit: 5_000_000, ChannelBlocks: 2000, Refresh: 200 * time.Millisecond}, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.gw = gw
	a.oa = openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))

	// Both validators audit with the registered model. Cleanup stops the
	// workers before their models are closed.
	var workers sync.WaitGroup
	var auditors []*validator.Auditor
	for i := range nw.Operators {
		c := nw.Client(i)
		aud, err := validator.NewAuditor(c, []string{a.real})
		if err != nil {
			t.Fatal(err)
		}
		auditors = append(auditors, aud)
		w := validator.NewWorker(c, aud, c.NewSigner(nw.Operators[i]), nil, quietLog())
		workers.Add(1)
		go func() { defer workers.Done(); w.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		workers.Wait()
		for _, aud := range auditors {
			aud.Close()
		}
		gw.Stop()
	})
	return a
}

// backend opens a native backend (closed at cleanup).
func (a *auditNet) backend(path string) *provider.NativeBackend {
	a.t.Helper()
	b, err := provider.NewNativeBackend([]string{path}, native.Options{Threads: 1})
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(b.Close)
	return b
}

// cheater is a backend serving name under the registered model's hash,
// generating the requests fake selects with the cheaper model.
func (a *auditNet) cheater(name string, fake func(int64) bool) provider.Backend {
	return &claimBackend{name: name, honestName: a.claim.Name, cheapName: "cheap", claim: a.claim,
		honest: a.backend(a.real), cheap: a.backend(a.cheap), fake: fake}
}

// provider starts provider i (key Accounts[1+i]) over b; it is stopped at cleanup.
func (a *auditNet) provider(i int, b provider.Backend) *provider.Provider {
	a.t.Helper()
	p, err := provider.New(provider.Config{ChainRPC: a.nw.Configs[0].RPC.Laddr, Key: a.nw.Accounts[1+i], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(a.dir, fmt.Sprintf("provider%d", i)), PriceIn: 1000, PriceOut: 2000, Concurrency: 2, Tick: 100 * time.Millisecond}, b, quietLog(), nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := p.Start(a.ctx); err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { p.Stop() }) // idempotent: a test may stop it earlier
	return p
}

// chat sends one chat completion for model through the gateway.
func (a *auditNet) chat(model, prompt string) {
	a.t.Helper()
	if _, err := a.oa.Chat.Completions.New(a.ctx, openai.ChatCompletionNewParams{Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}, MaxTokens: openai.Int(6)}); err != nil {
		a.t.Fatalf("chat %s: %v", model, err)
	}
}

// view reads a provider's on-chain record.
func (a *auditNet) view(p *provider.Provider) api.ProviderView {
	a.t.Helper()
	var v api.ProviderView
	if err := a.c.Query(a.ctx, "/provider/"+p.Address().String(), 0, &v); err != nil {
		a.t.Fatal(err)
	}
	return v
}

// receipts lists the receipts the gateway holds.
func (a *auditNet) receipts() []gateway.StoredReceipt {
	a.t.Helper()
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(a.t, a.gw.URL()+"/v1/receipts?limit=1000", &list)
	return list.Data
}

// everyEpoch runs round (traffic, then a check) once per epoch of chain
// time, so that each round's traffic lands in a later epoch, until round
// reports done; after timeout the test fails with what and the last
// round's word.
func (a *auditNet) everyEpoch(timeout time.Duration, what string, round func(n int) (done bool, why string)) {
	a.t.Helper()
	n, next, last := 0, int64(0), ""
	poll.Until(a.t, timeout, what, func() (bool, string) {
		if h := a.nw.Height(0); h < next {
			return false, fmt.Sprintf("after %d rounds: %s (next round at height %d, chain at %d)", n, last, next, h)
		}
		done, why := round(n)
		n++
		if done {
			return true, ""
		}
		next, last = a.nw.Height(0)+a.nw.Params.EpochLength, why
		return false, fmt.Sprintf("after %d rounds: %s", n, why)
	})
}
