package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/verify"
)

type inferenceNet struct {
	nw        *testnet.Network
	model     string
	providers []*provider.Provider
	backends  []*provider.NativeBackend
	gw        *gateway.Gateway
	gwReg     *prometheus.Registry // the first gateway's metrics
	oa        openai.Client
	dir       string

	provRegs []*prometheus.Registry // the providers' metrics
}

// startInference starts a validator, two native providers (the first cheaper)
// and a gateway.
func startInference(t *testing.T) *inferenceNet {
	t.Helper()
	return startInferenceWith(t, nil, nil)
}

// startInferenceWith lets a test adjust each provider's and the gateway's config.
func startInferenceWith(t *testing.T, adjust func(i int, c *provider.Config), adjustGateway func(c *gateway.Config)) *inferenceNet {
	t.Helper()
	params := types.DefaultParams()
	params.EpochLength = 10
	params.CommitWindow = 4
	// Room for audits and reports even under -race; no epoch settles during
	// these tests, so provider balances move only by what clients paid.
	params.OpeningWindow = 2000
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 3, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.gguf")
	if err := native.WriteRandomModel(model, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	in := &inferenceNet{nw: nw, model: "tiny", dir: dir}
	ctx := context.Background()
	for i, price := range []uint64{1000, 3000} {
		b, err := provider.NewNativeBackend([]string{model}, native.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		pc := provider.Config{
			ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1+i], Listen: "127.0.0.1:0",
			DataDir: filepath.Join(dir, fmt.Sprintf("provider%d", i)), PriceIn: price, PriceOut: 2 * price,
			Concurrency: 2, Tick: 100 * time.Millisecond,
		}
		if adjust != nil {
			adjust(i, &pc)
		}
		preg := prometheus.NewRegistry()
		in.provRegs = append(in.provRegs, preg)
		p, err := provider.New(pc, b, quietLog(), preg)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		in.providers = append(in.providers, p)
		in.backends = append(in.backends, b)
	}
	t.Cleanup(func() {
		for i, p := range in.providers {
			if p != nil {
				p.Stop()
				in.backends[i].Close()
			}
		}
	})
	gc := gateway.Config{
		ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "gateway"), Deposit: 5_000_000, ChannelBlocks: 400, Refresh: 200 * time.Millisecond,
	}
	if adjustGateway != nil {
		adjustGateway(&gc)
	}
	in.gwReg = prometheus.NewRegistry()
	gw, err := gateway.New(gc, quietLog(), in.gwReg)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop() })
	in.gw = gw
	in.oa = openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return in
}

// TestInferenceEndToEnd: the official OpenAI Go SDK completes chats through
// the gateway, streaming and not; receipts verify and are included under the
// roots committed on chain; settlement pays each provider exactly its receipts.
func TestInferenceEndToEnd(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	c := in.nw.Client(0)
	// Balances at a fixed height; every tx a provider signs after it is
	// accounted for below, whatever its kind.
	st, err := c.RPC().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	startHeight := st.SyncInfo.LatestBlockHeight
	startBal := map[string]uint64{}
	for _, p := range in.providers {
		var acc api.AccountView
		if err := c.Query(ctx, api.AccountPath(p.Address()), startHeight, &acc); err != nil {
			t.Fatal(err)
		}
		startBal[p.Address().String()] = acc.Balance
	}

	// non-streaming
	for i := 0; i < 3; i++ {
		res, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:     in.model,
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("tell me a story number %d", i))},
			MaxTokens: openai.Int(12),
			Seed:      openai.Int(int64(i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Choices) != 1 || res.Choices[0].Message.Content == "" || res.Usage.CompletionTokens == 0 || res.Usage.CompletionTokens > 12 {
			t.Fatalf("completion %+v", res)
		}
	}
	// streaming
	stream := in.oa.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:     in.model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream please")},
		MaxTokens: openai.Int(10),
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 3 || len(acc.Choices) != 1 || acc.Choices[0].Message.Content == "" {
		t.Fatalf("stream: %d chunks, %+v", chunks, acc.Choices)
	}
	// a raw stream: the receipt's id comes in a comment before [DONE] and in a trailer
	streamID := rawStreamReceiptID(t, in.gw.URL(), in.model)
	// the models list
	models, err := in.oa.Models.List(ctx)
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != in.model {
		t.Fatalf("models %+v %v", models, err)
	}

	// receipts held by the gateway verify
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	if len(list.Data) != 5 {
		t.Fatalf("gateway holds %d receipts, want 5", len(list.Data))
	}
	billed := map[string]uint64{}
	streamHeld := false
	for _, r := range list.Data {
		streamHeld = streamHeld || r.ID == streamID
		sr, err := receipt.Decode(r.Encoded)
		if err != nil {
			t.Fatal(err)
		}
		var acc api.AccountView
		if err := c.Query(ctx, "/account/"+r.Provider, 0, &acc); err != nil {
			t.Fatal(err)
		}
		if err := sr.Verify(acc.PubKey); err != nil {
			t.Fatal(err)
		}
		billed[r.Provider] += r.Amount
	}

	if !streamHeld {
		t.Fatalf("the stream's receipt %s is not among the gateway's receipts", streamID)
	}
	// inclusion proofs against the roots committed on chain
	deadline := time.Now().Add(60 * time.Second)
	for _, r := range list.Data {
		var cm api.CommitmentView
		poll.Until(t, time.Until(deadline), fmt.Sprintf("the commitment of epoch %d by %s", r.Epoch, r.Provider), func() (bool, string) {
			err := c.Query(ctx, fmt.Sprintf("/commitment/%d/%s", r.Epoch, r.Provider), 0, &cm)
			return err == nil, fmt.Sprint(err)
		})
		url := providerURL(t, in, r.Provider) + "/v1/receipts/" + r.ID + "/proof"
		var pj receipt.ProofJSON
		getJSON(t, url, &pj)
		if _, err := pj.VerifyAgainst(cm.Root); err != nil {
			t.Fatalf("receipt %s: %v", r.ID, err)
		}
		if cm.RecordCount == 0 || hex.EncodeToString(cm.Root) != pj.Root {
			t.Fatalf("commitment %+v vs proof root %s", cm, pj.Root)
		}
	}

	// the same check as a user runs it
	out := run(t, "receipt", "verify", list.Data[0].ID, "--gateway", in.gw.URL(), "--node", in.nw.Configs[0].RPC.Laddr, "-o", "json")
	if !strings.Contains(out, `"verified": true`) {
		t.Fatalf("agora receipt verify: %s", out)
	}
	if out := runFail(t, "receipt", "verify", strings.Repeat("ab", 32), "--gateway", in.gw.URL(), "--node", in.nw.Configs[0].RPC.Laddr); !strings.Contains(out, "no receipt") {
		t.Fatalf("unknown receipt: %s", out)
	}

	// an audited receipt's transcript re-executes bit for bit (what a validator will do)
	ref, err := native.Load(filepath.Join(in.dir, "tiny.gguf"), native.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, r := range list.Data {
		// Transcripts are private to their provider (validators get only the
		// sampled or disputed ones, as openings): read it from its store.
		var tr *inference.Transcript
		for _, p := range in.providers {
			if p.Address().String() == r.Provider {
				if tr, err = p.Store().Transcript(r.Epoch, r.Index); err != nil {
					t.Fatal(err)
				}
			}
		}
		if tr == nil {
			t.Fatalf("receipt %s: no provider holds it", r.ID)
		}
		resp, err := http.Get(fmt.Sprintf("%s/v1/transcripts/%d/%d", providerURL(t, in, r.Provider), r.Epoch, r.Index))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a client's transcript is served to anyone: status %d", resp.StatusCode)
		}
		vt := verify.Transcript{PromptIDs: tr.PromptIDs, OutputIDs: tr.OutputIDs, Logprobs: tr.Logprobs, Params: native.SampleParams{
			Temperature: tr.Temperature, TopP: tr.TopP, TopK: tr.TopK, MinP: tr.MinP, RepeatPenalty: tr.RepeatPen,
			FrequencyPenalty: tr.FreqPen, PresencePenalty: tr.PresPen, Seed: tr.Seed, MaxTokens: tr.MaxTokens}}
		if err := verify.CheckNative(ref, vt); err != nil {
			t.Fatalf("receipt %s: transcript does not re-execute: %v", r.ID, err)
		}
		tampered := vt
		tampered.OutputIDs = append([]int(nil), vt.OutputIDs...)
		tampered.OutputIDs[0] = (tampered.OutputIDs[0] + 1) % 600
		if verify.CheckNative(ref, tampered) == nil {
			t.Fatal("a tampered transcript re-executed")
		}
	}

	// settlement: each provider's channel redeemed exactly its receipts, and its
	// balance rose by exactly that (minus the fees of its own txs)
	for _, p := range in.providers {
		addr := p.Address().String()
		poll.Until(t, time.Until(deadline), "provider "+addr+" to redeem its receipts", func() (bool, string) {
			redeemed := redeemedBy(t, c, addr)
			return redeemed == billed[addr], fmt.Sprintf("redeemed %d, receipts bill %d", redeemed, billed[addr])
		})
		st, err := c.RPC().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := st.SyncInfo.LatestBlockHeight
		var acc api.AccountView
		if err := c.Query(ctx, api.AccountPath(p.Address()), h, &acc); err != nil {
			t.Fatal(err)
		}
		fees, kinds := txFees(t, c, p.Address(), startHeight, h)
		if want := startBal[addr] - fees + billed[addr]; acc.Balance != want {
			t.Fatalf("provider %s balance %d at height %d, want %d (start %d at height %d, fees %d of txs %v, paid %d)", addr, acc.Balance, h, want, startBal[addr], startHeight, fees, kinds, billed[addr])
		}
	}
}

func providerURL(t *testing.T, in *inferenceNet, addr string) string {
	for _, p := range in.providers {
		if p != nil && p.Address().String() == addr {
			return p.URL()
		}
	}
	t.Fatalf("no provider %s", addr)
	return ""
}

// txFees sums the fees of every tx signed by addr in blocks from+1..to, and
// lists their kinds. A bond would move balance into stake: the test fails on
// one, since a provider bonds only before it starts.
func txFees(t *testing.T, c *client.Client, addr types.Address, from, to int64) (fees uint64, kinds []string) {
	t.Helper()
	q := fmt.Sprintf("agora.signer='%s' AND tx.height>%d AND tx.height<=%d", addr, from, to)
	perPage := 100
	for page := 1; ; page++ {
		res, err := c.RPC().TxSearch(context.Background(), q, false, &page, &perPage, "asc")
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range res.Txs {
			attrs := map[string]string{}
			for _, ev := range tx.TxResult.Events {
				for _, a := range ev.Attributes {
					attrs[a.Key] = a.Value
				}
			}
			if attrs["msg"] == "bond_provider" {
				t.Fatalf("provider %s bonded at height %d, during the test", addr, tx.Height)
			}
			f, err := strconv.ParseUint(attrs["fee"], 10, 64)
			if err != nil {
				t.Fatalf("tx %X: fee %q: %v", tx.Hash, attrs["fee"], err)
			}
			fees += f
			kinds = append(kinds, attrs["msg"])
		}
		if page*perPage >= res.TotalCount {
			return fees, kinds
		}
	}
}

// TestFailover: the preferred provider dies mid-run; later requests succeed
// on the other, and every request is billed exactly once.
func TestFailover(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	ask := func(i int) string {
		res, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: in.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("question %d", i))},
			MaxTokens: openai.Int(6),
		})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		return res.ID
	}
	for i := 0; i < 2; i++ {
		ask(i)
	}
	// kill the preferred (cheaper) provider
	in.providers[0].Stop()
	in.backends[0].Close()
	in.providers[0] = nil
	for i := 2; i < 6; i++ {
		ask(i)
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	if len(list.Data) != 6 {
		t.Fatalf("%d receipts for 6 requests", len(list.Data))
	}
	per := map[string]int{}
	seen := map[string]bool{}
	var billed1 uint64
	p1 := in.providers[1].Address().String()
	for _, r := range list.Data {
		per[r.Provider]++
		if seen[r.ID] {
			t.Fatalf("receipt %s twice", r.ID)
		}
		seen[r.ID] = true
		if r.Provider == p1 {
			billed1 += r.Amount
		}
	}
	if per[p1] != 4 || len(per) != 2 {
		t.Fatalf("receipts per provider %v", per)
	}
	// the survivor is paid exactly its receipts
	c := in.nw.Client(0)
	poll.Until(t, 60*time.Second, "provider 1 to redeem its receipts", func() (bool, string) {
		redeemed := redeemedBy(t, c, p1)
		if redeemed > billed1 {
			t.Fatalf("provider 1 redeemed %d for receipts of %d", redeemed, billed1)
		}
		return redeemed == billed1, fmt.Sprintf("provider 1 redeemed %d for receipts of %d", redeemed, billed1)
	})
}

// redeemedBy sums what provider addr's channels have redeemed on chain.
func redeemedBy(t *testing.T, c *client.Client, addr string) uint64 {
	t.Helper()
	var chans []api.ChannelView
	if err := c.Query(context.Background(), "/channels/provider/"+addr, 0, &chans); err != nil {
		t.Fatal(err)
	}
	var redeemed uint64
	for _, ch := range chans {
		redeemed += ch.Redeemed
	}
	return redeemed
}

// TestAdaptivePricing: an idle provider lowers its prices epoch by epoch
// (published on chain, charged from the next epoch); receipts at the new
// prices are accepted and paid exactly.
func TestAdaptivePricing(t *testing.T) {
	in := startInferenceWith(t, func(i int, c *provider.Config) {
		c.Pricing = provider.Pricing{Adaptive: true, FloorPct: 50}
	}, nil)
	ctx := context.Background()
	c := in.nw.Client(0)
	addr := in.providers[0].Address().String()
	var pv api.ProviderView
	deadline := time.Now().Add(60 * time.Second)
	poll.Until(t, 60*time.Second, "the idle provider to lower its price", func() (bool, string) {
		if err := c.Query(ctx, "/provider/"+addr, 0, &pv); err != nil {
			t.Fatal(err)
		}
		return pv.PriceInputPer1K < 1000, fmt.Sprintf("input price %d", pv.PriceInputPer1K)
	})
	if pv.PriceInputPer1K < 500 || pv.PriceOutputPer1K != 2*pv.PriceInputPer1K {
		t.Fatalf("prices %d/%d outside the policy", pv.PriceInputPer1K, pv.PriceOutputPer1K)
	}
	// The provider published the price in epoch seen or before, for the
	// epoch after its own, and charges it from its first tick that reads
	// the height before epoch seen+1 (where its receipts go to that epoch).
	// That epoch's first block leaves it a block time (150 ms; it ticks
	// every 100 ms) to have done so.
	seen := epochs.Number(in.nw.Params, in.nw.Height(0))
	from, _ := epochs.Bounds(in.nw.Params, seen+1)
	poll.Until(t, 60*time.Second, fmt.Sprintf("the chain a block into epoch %d, where the price applies", seen+1), func() (bool, string) {
		h := in.nw.Height(0)
		return h >= from, fmt.Sprintf("height %d, want %d", h, from)
	})
	for i := 0; i < 4; i++ {
		if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("price %d", i))}, MaxTokens: openai.Int(5)}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	var billed uint64
	lowered := false
	for _, r := range list.Data {
		sr, err := receipt.Decode(r.Encoded)
		if err != nil {
			t.Fatal(err)
		}
		if sr.Receipt.PriceInputPer_1K < 1000 {
			lowered = true
		}
		if r.Provider == addr {
			billed += r.Amount
		}
	}
	if len(list.Data) != 4 || !lowered {
		t.Fatalf("%d receipts, any at a lowered price: %v", len(list.Data), lowered)
	}
	poll.Until(t, time.Until(deadline.Add(30*time.Second)), "the provider to redeem its receipts", func() (bool, string) {
		redeemed := redeemedBy(t, c, addr)
		if redeemed > billed {
			t.Fatalf("redeemed %d for receipts of %d", redeemed, billed)
		}
		return redeemed == billed, fmt.Sprintf("redeemed %d for receipts of %d", redeemed, billed)
	})
}

// TestAPIKeyAccounts: each API key pays from its own account and sees only
// its own receipts; an unknown key is refused.
func TestAPIKeyAccounts(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	a, b := in.nw.Accounts[0], in.nw.Operators[0]
	gw, err := gateway.New(gateway.Config{
		ChainRPC: in.nw.Configs[0].RPC.Laddr, Key: a, Listen: "127.0.0.1:0", DataDir: filepath.Join(in.dir, "gw-accounts"),
		Accounts: map[string]ed25519.PrivateKey{"sk-a": a, "sk-b": b}, Deposit: 1_000_000, ChannelBlocks: 400, Refresh: 200 * time.Millisecond,
	}, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	ask := func(key string, n int) {
		oa := openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
		for i := 0; i < n; i++ {
			if _, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(3)}); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		}
	}
	ask("sk-a", 2)
	ask("sk-b", 3)
	oa := openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey("sk-wrong"), option.WithMaxRetries(0))
	if _, err := oa.Models.List(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("unknown key: %v", err)
	}
	for key, want := range map[string]int{"sk-a": 2, "sk-b": 3} {
		req, _ := http.NewRequest(http.MethodGet, gw.URL()+"/v1/receipts", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Data []gateway.StoredReceipt `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list.Data) != want {
			t.Fatalf("%s sees %d receipts, want %d", key, len(list.Data), want)
		}
	}
	c := in.nw.Client(0)
	for _, k := range []ed25519.PrivateKey{a, b} {
		var chs []api.ChannelView
		if err := c.Query(ctx, "/channels/client/"+testnet.Addr(k).String(), 0, &chs); err != nil || len(chs) == 0 {
			t.Fatalf("account %s has no channel: %v", testnet.Addr(k), err)
		}
	}
}

// TestGatewayStopPaysExactly: stopping the gateway drains its receipt
// verification and pays each provider exactly what it billed (no receipt
// counted twice, the final voucher accepted).
func TestGatewayStopPaysExactly(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}, MaxTokens: openai.Int(3)}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	var billed uint64
	for _, r := range list.Data {
		billed += r.Amount
	}
	// A verification batch has run (some receipt counted as paid), so the
	// drain at stop starts from a used buffer.
	poll.Until(t, 10*time.Second, "a verification batch", func() (bool, string) {
		v := in.gatewayCounter(t, "agora_gateway_billed_uagr_total")
		return v > 0, fmt.Sprintf("%v uagr of receipts verified", v)
	})
	if err := in.gw.Stop(); err != nil {
		t.Fatal(err)
	}
	p := in.providers[0]
	st, err := p.Store().Channels()
	if err != nil {
		t.Fatal(err)
	}
	var best uint64
	for _, c := range st {
		best += c.BestCum
	}
	if best != billed {
		t.Fatalf("provider holds vouchers for %d, receipts bill %d", best, billed)
	}
}

// rawStreamReceiptID streams a chat through the gateway with plain HTTP and
// returns the receipt id it announced, checking that the comment before
// [DONE] and the trailer agree and that the stream ends with [DONE].
func rawStreamReceiptID(t *testing.T, gw, model string) string {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"a receipt for a stream"}],"max_tokens":6,"stream":true}`, model)
	resp, err := http.Post(gw+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d %v\n%s", resp.StatusCode, err, raw)
	}
	text := string(raw)
	i := strings.Index(text, gateway.ReceiptIDComment)
	if i < 0 || !strings.HasSuffix(text, "\ndata: [DONE]\n\n") {
		t.Fatalf("stream without a receipt id comment or [DONE]:\n%s", text)
	}
	id, _, _ := strings.Cut(text[i+len(gateway.ReceiptIDComment):], "\n")
	if len(id) != 64 || resp.Trailer.Get(gateway.ReceiptIDHeader) != id {
		t.Fatalf("receipt id %q in the stream, %q in the trailer", id, resp.Trailer.Get(gateway.ReceiptIDHeader))
	}
	return id
}

// gatewayCounter is the value of the first gateway's unlabelled counter name.
func (in *inferenceNet) gatewayCounter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := in.gwReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
