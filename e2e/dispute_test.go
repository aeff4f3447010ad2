package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/testnet"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/validator"
)

// TestClientDisputes: with sampling off (audit rates 0), only disputes can
// catch a provider. The client disputes a fabricated receipt: both
// validators' workers fetch its opening, re-execute it and report; the
// provider is slashed, the client refunded the receipt and its bond. A
// dispute of an honest receipt finds nothing and its bond goes to the
// honest provider at the deadline.
func TestClientDisputes(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.OpeningWindow = 10, 4, 40
	params.AuditFloorBps, params.AuditCeilingBps = 0, 0
	nw := testnet.New(t, testnet.Options{Validators: 2, Accounts: 3, Params: &params, BlockTime: 150 * time.Millisecond})
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
		t.Cleanup(func() { p.Stop() })
		return p
	}
	honest := start(0, honestB)
	faker := start(1, &claimBackend{name: "tiny-fake", honestName: claim.Name, cheapName: "cheap", claim: claim, honest: open(real), cheap: open(cheap), fake: func(int64) bool { return true }})
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
	for i := range nw.Operators {
		c := nw.Client(i)
		aud, err := validator.NewAuditor(c, []string{real})
		if err != nil {
			t.Fatal(err)
		}
		defer aud.Close()
		go validator.NewWorker(c, aud, c.NewSigner(nw.Operators[i]), nil, quietLog()).Run(ctx)
	}
	for _, model := range []string{"tiny", "tiny-fake"} {
		if _, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("is this answer real?")}, MaxTokens: openai.Int(6)}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, gw.URL()+"/v1/receipts", &list)
	byProv := map[string]gateway.StoredReceipt{}
	for _, r := range list.Data {
		byProv[r.Provider] = r
	}
	c := nw.Client(0)
	signer := c.NewSigner(nw.Accounts[0])
	waitCommitted := func(r gateway.StoredReceipt) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var ep app.EpochView
			var cm app.CommitmentView
			if c.Query(ctx, fmt.Sprintf("/epoch/%d", r.Epoch), 0, &ep) == nil && c.Query(ctx, fmt.Sprintf("/commitment/%d/%s", r.Epoch, r.Provider), 0, &cm) == nil {
				st, _ := c.Status(ctx)
				if st != nil && st.SyncInfo.LatestBlockHeight > ep.CommitDeadline {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("receipt %s never committed", r.ID)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The fabricated receipt is disputed with the CLI through the gateway;
	// the honest one with a raw MsgDisputeReceipt from the client's key.
	disputeCLI := func(id string) (string, error) {
		out, err := exec.Command(agoraBin, "receipt", "dispute", id, "--gateway", gw.URL()).CombinedOutput()
		return string(out), err
	}
	dispute := func(r gateway.StoredReceipt, viaCLI bool) {
		waitCommitted(r)
		if viaCLI {
			out, err := disputeCLI(r.ID)
			if err != nil || !strings.Contains(out, "disputed") {
				t.Fatalf("agora receipt dispute: %v\n%s", err, out)
			}
			return
		}
		sr, err := receipt.Decode(r.Encoded)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.Send(ctx, &types.MsgDisputeReceipt{Receipt: sr.Bytes, ReceiptSignature: sr.Signature}); err != nil {
			t.Fatalf("dispute %s: %v", r.ID, err)
		}
	}
	fake, real2 := byProv[faker.Address().String()], byProv[honest.Address().String()]
	if fake.ID == "" || real2.ID == "" {
		t.Fatalf("receipts: %+v", list.Data)
	}
	prov := func(p *provider.Provider) app.ProviderView {
		var v app.ProviderView
		if err := c.Query(ctx, "/provider/"+p.Address().String(), 0, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	bondFake, bondHonest := prov(faker).Bonded, prov(honest).Bonded
	redeemed := func(p *provider.Provider) uint64 {
		var chans []app.ChannelView
		if err := c.Query(ctx, "/channels/provider/"+p.Address().String(), 0, &chans); err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, ch := range chans {
			sum += ch.Redeemed
		}
		return sum
	}
	dispute(fake, true)
	dispute(real2, false)
	// Disputing it again is refused: still open, or already confirmed by the validators.
	if out, err := disputeCLI(fake.ID); err == nil || !(strings.Contains(out, "already disputed") || strings.Contains(out, "already applied")) {
		t.Fatalf("a second dispute: %v\n%q", err, out)
	}
	if out, err := disputeCLI(strings.Repeat("ab", 32)); err == nil || !strings.Contains(out, "no receipt") {
		t.Fatalf("an unknown receipt: %v\n%s", err, out)
	}
	// From here the client sends nothing: its balance moves only by the disputes' outcomes.
	cli1, _ := c.Account(ctx, testnet.Addr(nw.Accounts[0]))
	hon1, _ := c.Account(ctx, honest.Address())
	fees1, red1 := feesPaid(t, c, honest.Address()), redeemed(honest)

	deadline := time.Now().Add(60 * time.Second)
	for prov(faker).Faults == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the disputed fabricated receipt was never confirmed")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, want := prov(faker).Bonded, bondFake-bondFake*params.SlashProviderFraudBps/10000; got != want {
		t.Fatalf("faker bond %d, want %d", got, want)
	}
	// The honest receipt's dispute expires: the honest provider takes the bond.
	deadline = time.Now().Add(60 * time.Second)
	for {
		var ds []app.DisputeView
		if err := c.Query(ctx, "/disputes", 0, &ds); err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disputes still open: %+v", ds)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v := prov(honest); v.Faults != 0 || v.Bonded != bondHonest {
		t.Fatalf("honest provider after a dispute: %+v", v)
	}
	cli2, _ := c.Account(ctx, testnet.Addr(nw.Accounts[0]))
	if want := cli1.Balance + fake.Amount + params.DisputeBond; cli2.Balance != want {
		t.Fatalf("client balance %d, want %d (refund %d and one bond back)", cli2.Balance, want, fake.Amount)
	}
	hon2, _ := c.Account(ctx, honest.Address())
	fees2, red2 := feesPaid(t, c, honest.Address()), redeemed(honest)
	if want := hon1.Balance + params.DisputeBond - (fees2 - fees1) + (red2 - red1); hon2.Balance != want {
		t.Fatalf("honest provider balance %d, want %d (the dispute bond)", hon2.Balance, want)
	}
}
