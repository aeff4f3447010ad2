package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/poll"
)

// TestOmittedEpochReported: a provider that serves requests but never
// commits its epoch (its chain loop never runs) is reported by the client's
// gateway once the commit deadline passes; the chain slashes it, refunds the
// client the receipt's amount and rewards the gateway's account, to the base
// unit. The other provider, which committed, is untouched.
func TestOmittedEpochReported(t *testing.T) {
	in := startInferenceWith(t, func(i int, c *provider.Config) {
		if i == 0 {
			c.Tick = time.Hour // never commits (nor redeems)
		}
	}, nil)
	ctx := context.Background()
	c := in.nw.Client(0)
	omitter := in.providers[0]
	var before api.ProviderView
	if err := c.Query(ctx, "/provider/"+omitter.Address().String(), 0, &before); err != nil {
		t.Fatal(err)
	}
	gwBefore, _ := c.Account(ctx, in.gw.Address())
	if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hide this one")}, MaxTokens: openai.Int(6)}); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	if len(list.Data) != 1 || list.Data[0].Provider != omitter.Address().String() {
		t.Fatalf("receipts: %+v", list.Data)
	}
	r := list.Data[0]

	// The gateway reports the omission after the commit deadline; the fault applies at once.
	var after api.ProviderView
	poll.Until(t, 60*time.Second, fmt.Sprintf("the omitted epoch %d to be reported", r.Epoch), func() (bool, string) {
		if err := c.Query(ctx, "/provider/"+omitter.Address().String(), 0, &after); err != nil {
			t.Fatal(err)
		}
		return after.Faults > 0, fmt.Sprintf("omitter %+v", after)
	})
	cut := before.Bonded * in.nw.Params.SlashBps["inference/omitted"] / 10000
	if after.Bonded != before.Bonded-cut || after.Faults != 1 || after.ReputationBps != 0 {
		t.Fatalf("omitter: bond %d (want %d), faults %d, reputation %d", after.Bonded, before.Bonded-cut, after.Faults, after.ReputationBps)
	}
	// The explorer's verdict and the report tx: refund = the receipt's amount.
	var vs []explorer.Verdict
	poll.True(t, 20*time.Second, "the explorer to index the omission verdict", func() bool {
		getJSON(t, "http://"+in.nw.Configs[0].API.Laddr+"/explorer/api/verdicts", &vs)
		return len(vs) > 0
	})
	v := vs[0]
	if v.Kind != "omitted_receipt" || v.Provider != r.Provider || v.Epoch != r.Epoch || v.Index != r.Index || v.Refund != r.Amount || v.Slashed != cut || v.Reporter != in.gw.Address().String() {
		t.Fatalf("verdict %+v for receipt %+v", v, r)
	}
	var tx explorer.Tx
	getJSON(t, fmt.Sprintf("http://%s/explorer/api/tx/%s", in.nw.Configs[0].API.Laddr, v.Tx), &tx)
	// The gateway paid the channel deposit and its txs' fees; the report
	// returned the bond and added the refund and the reward.
	gwAfter, _ := c.Account(ctx, in.gw.Address())
	var chans []api.ChannelView
	if err := c.Query(ctx, "/channels/client/"+in.gw.Address().String(), 0, &chans); err != nil {
		t.Fatal(err)
	}
	var deposits uint64
	for _, ch := range chans {
		deposits += ch.Deposit
	}
	fees := feesPaid(t, c, in.gw.Address())
	if want := gwBefore.Balance - deposits - fees + v.Refund + v.Reward; gwAfter.Balance != want {
		t.Fatalf("gateway balance %d, want %d (before %d, deposits %d, fees %d, refund %d, reward %d; report fee %d)",
			gwAfter.Balance, want, gwBefore.Balance, deposits, fees, v.Refund, v.Reward, tx.Fee)
	}
	var other api.ProviderView
	if err := c.Query(ctx, "/provider/"+in.providers[1].Address().String(), 0, &other); err != nil || other.Faults != 0 {
		t.Fatalf("the other provider: %+v %v", other, err)
	}
}

// feesPaid sums the fees of every tx addr signed.
func feesPaid(t *testing.T, c *client.Client, addr types.Address) uint64 {
	t.Helper()
	res, err := c.RPC().TxSearch(context.Background(), fmt.Sprintf("agora.signer='%s'", addr), false, nil, nil, "asc")
	if err != nil {
		t.Fatal(err)
	}
	var fees uint64
	for _, tx := range res.Txs {
		for _, ev := range tx.TxResult.Events {
			for _, a := range ev.Attributes {
				if a.Key == "fee" {
					f, _ := strconv.ParseUint(a.Value, 10, 64)
					fees += f
				}
			}
		}
	}
	return fees
}

// TestOmissionWatchRetriesUnreachable: a provider whose proof endpoint is
// briefly unreachable (503) when the gateway spot-checks its committed
// receipts is asked again at later ticks, not reported — no challenge opens,
// so the gateway's bond is never put at stake on a blip — and once it
// answers, the check passes and nothing is reported.
func TestOmissionWatchRetriesUnreachable(t *testing.T) {
	var down atomic.Bool
	var refused, served atomic.Int64
	down.Store(true)
	port := twoFreePorts(t)
	target, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/proof") {
			if down.Load() {
				refused.Add(1)
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			served.Add(1)
		}
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	// Provider 0 (the cheaper, so the one the gateway picks) is reached
	// through the proxy: that is the endpoint it registers.
	var refresh time.Duration // the gateway's directory refresh: it checks omissions every third
	in := startInferenceWith(t, func(i int, c *provider.Config) {
		if i == 0 {
			c.Listen, c.Endpoint = fmt.Sprintf("127.0.0.1:%d", port), proxy.URL
		}
	}, func(c *gateway.Config) { refresh = c.Refresh })
	ctx := context.Background()
	c := in.nw.Client(0)
	prov := in.providers[0].Address().String()
	for i := 0; i < 3; i++ {
		if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("check me %d", i))}, MaxTokens: openai.Int(4)}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	if len(list.Data) == 0 || list.Data[0].Provider != prov {
		t.Fatalf("receipts: %+v", list.Data)
	}
	challenges := func() []json.RawMessage {
		t.Helper()
		var chs []json.RawMessage
		if err := c.Query(ctx, "/challenges", 0, &chs); err != nil {
			t.Fatal(err)
		}
		return chs
	}
	poll.Until(t, 60*time.Second, "the gateway to ask twice while the provider is unreachable", func() (bool, string) {
		if chs := challenges(); len(chs) != 0 {
			t.Fatalf("an omission challenge was opened: %s", chs[0])
		}
		return refused.Load() >= 2, fmt.Sprintf("asked %d times", refused.Load())
	})
	down.Store(false)
	poll.True(t, 60*time.Second, "the gateway to check the proof once the provider answers", func() bool { return served.Load() >= 1 })
	// Nothing to wait for: no challenge must open. Watched for two more
	// omission checks (every third directory refresh) and the blocks a
	// challenge tx would take to commit, a challenge would show.
	window := 2*3*refresh + 2*in.nw.Configs[0].Consensus.TimeoutCommit
	var opened []json.RawMessage
	if poll.Wait(window, func() (bool, string) { opened = challenges(); return len(opened) != 0, "" }) == nil {
		t.Fatalf("an omission challenge was opened: %s", opened[0])
	}
	var pv api.ProviderView
	if err := c.Query(ctx, "/provider/"+prov, 0, &pv); err != nil {
		t.Fatal(err)
	}
	var vs []explorer.Verdict
	getJSON(t, "http://"+in.nw.Configs[0].API.Laddr+"/explorer/api/verdicts", &vs)
	if pv.Faults != 0 || len(vs) != 0 {
		t.Fatalf("provider faults %d, verdicts %+v", pv.Faults, vs)
	}
}
