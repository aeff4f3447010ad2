package e2e

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/reqauth"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// authHeaders are the headers of a request straight to a provider (its
// key provKey) on a channel: the voucher and the request's authentication
// by the channel's client key, as the gateway sends them.
func authHeaders(t *testing.T, chainID string, client, provKey ed25519.PrivateKey, channel uint64, path, body, voucher string) map[string]string {
	t.Helper()
	k, err := reqauth.ClientKey(client, provKey.Public().(ed25519.PublicKey), chainID, channel)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{payment.VoucherHeader: voucher,
		reqauth.Header: reqauth.Sign(&k, channel, time.Now(), http.MethodPost, path, []byte(body), voucher)}
}

// counterValue is a counter's value in reg by one label (0 if absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestVoucherReplayRefused (issue 15): a voucher is public once redeemed
// on chain. Taken from the redeem tx and replayed straight to the
// provider, with no request authentication or one made with another key,
// it buys nothing: every replay is a 401, nothing is billed, reserved or
// credited on the channel, and the channel's owner is served as before.
// (Before request authentication the provider served such replays on the
// channel's credit, until the owner's own requests were refused with 402.)
func TestVoucherReplayRefused(t *testing.T) {
	// a small credit, as in the report: replays that were served would
	// soon use it up and have the owner refused
	in := startInferenceWith(t, func(i int, c *provider.Config) { c.Credit = 300 }, nil)
	ctx := context.Background()
	c := in.nw.Client(0)
	p, provKey := in.providers[0], in.nw.Accounts[1]
	for i := 0; i < 3; i++ {
		if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("question %d", i))}, MaxTokens: openai.Int(4)}); err != nil {
			t.Fatal(err)
		}
	}
	// the gateway pays once idle; the provider redeems on chain
	var chID uint64
	poll.Until(t, 90*time.Second, "a voucher redeemed on chain", func() (bool, string) {
		var chans []api.ChannelView
		if err := c.Query(ctx, "/channels/provider/"+p.Address().String(), 0, &chans); err != nil {
			t.Fatal(err)
		}
		for _, ch := range chans {
			if ch.Redeemed > 0 {
				chID = ch.ID
			}
		}
		return chID != 0, fmt.Sprintf("channels %+v", chans)
	})

	// what anyone can read over RPC: the redeem tx and its voucher
	res, err := c.RPC().TxSearch(ctx, fmt.Sprintf("agora.signer='%s'", p.Address()), false, nil, nil, "asc")
	if err != nil {
		t.Fatal(err)
	}
	var published *types.Voucher
	for _, tx := range res.Txs {
		d, err := types.DecodeTx(tx.Tx)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := d.Body.Msg.(*types.TxBody_RedeemVoucher); ok && m.RedeemVoucher.Voucher.ChannelId == chID {
			published = m.RedeemVoucher.Voucher
		}
	}
	if published == nil {
		t.Fatalf("no redeem tx for channel %d among the provider's %d txs", chID, len(res.Txs))
	}
	voucher := payment.FormatVoucher(published)

	billed, inflight := p.Billed(chID), p.InFlight(chID)
	reg := in.provRegs[0]
	const refused = "agora_provider_auth_refused_total"
	chat := `{"model":"tiny","messages":[{"role":"user","content":"free answers, please"}],"max_tokens":4}`
	stream := `{"model":"tiny","stream":true,"messages":[{"role":"user","content":"free answers, please"}],"max_tokens":4}`
	text := `{"model":"tiny","prompt":"free answers, please","max_tokens":4}`
	// a key of one's own does not help: the key is the channel client's and the provider's
	forged := authHeaders(t, in.nw.ChainID, testnet.Key("stranger"), provKey, chID, "/v1/chat/completions", chat, voucher)
	cases := []struct {
		name, path, body string
		header           map[string]string
		msg              string
	}{
		{"chat, voucher alone", "/v1/chat/completions", chat, map[string]string{payment.VoucherHeader: voucher}, "missing X-Agora-Auth"},
		{"stream, voucher alone", "/v1/chat/completions", stream, map[string]string{payment.VoucherHeader: voucher}, "missing X-Agora-Auth"},
		{"completions, voucher alone", "/v1/completions", text, map[string]string{payment.VoucherHeader: voucher}, "missing X-Agora-Auth"},
		{"voucher posted alone", "/v1/vouchers", "", map[string]string{payment.VoucherHeader: voucher}, "missing X-Agora-Auth"},
		{"chat, authenticated with another key", "/v1/chat/completions", chat, forged, "does not verify"},
	}
	// the attacker sent many: as many as the credit would have served
	for i := 0; i < 20; i++ {
		cases = append(cases, cases[0])
	}
	for _, rc := range cases {
		r := post(t, p.URL()+rc.path, rc.body, rc.header)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.errMsg, rc.msg) {
			t.Fatalf("%s: replayed voucher answered %d %q, want 401 containing %q", rc.name, r.status, r.body, rc.msg)
		}
	}
	if b, f := p.Billed(chID), p.InFlight(chID); b != billed || f != inflight {
		t.Fatalf("replays changed channel %d: billed %d → %d, in flight %d → %d", chID, billed, b, inflight, f)
	}
	if got := counterValue(t, reg, refused, "reason", "missing"); got != float64(len(cases)-1) {
		t.Fatalf("%v refusals for a missing header, want %d", got, len(cases)-1)
	}
	if got := counterValue(t, reg, refused, "reason", "mac"); got != 1 {
		t.Fatalf("%v refusals for a bad MAC, want 1", got)
	}

	// the owner is served by the same provider, billed exactly its receipt
	resp, err := http.Post(in.gw.URL()+"/v1/chat/completions", "application/json", strings.NewReader(chat))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(gateway.ProviderHeader) != p.Address().String() {
		t.Fatalf("the owner's request after the replays: %d from %q, want 200 from %s", resp.StatusCode, resp.Header.Get(gateway.ProviderHeader), p.Address())
	}
	var rec gateway.StoredReceipt
	getJSON(t, in.gw.URL()+"/v1/receipts/"+resp.Header.Get(gateway.ReceiptIDHeader), &rec)
	if rec.Channel != chID || rec.Amount == 0 {
		t.Fatalf("the owner's receipt: %+v (channel %d)", rec, chID)
	}
	if b := p.Billed(chID); b != billed+rec.Amount {
		t.Fatalf("channel %d billed %d after the owner's request, want %d + %d", chID, b, billed, rec.Amount)
	}
}
