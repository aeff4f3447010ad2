package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"github.com/agoranet/agora/chain/api"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/testnet"
)

func balance(t *testing.T, c *client.Client, a types.Address) uint64 {
	t.Helper()
	acc, err := c.Account(context.Background(), a)
	if err != nil {
		t.Fatalf("account %s: %v", a, err)
	}
	return acc.Balance
}

func mustSend(t *testing.T, s *client.Signer, msg any) *client.TxResult {
	t.Helper()
	res, err := s.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("%T: %v", msg, err)
	}
	return res
}

func wantCode(t *testing.T, err error, code types.Code) {
	t.Helper()
	var te *client.TxError
	if !errors.As(err, &te) {
		t.Fatalf("want tx error code %s, got %v", code, err)
	}
	if te.Code != code {
		t.Fatalf("want code %s, got %s: %s", code, te.Code, te.Log)
	}
}

func providerInfo(endpoint string) *types.ProviderInfo {
	h := sha256.Sum256([]byte("model-file"))
	return &types.ProviderInfo{
		Endpoint:          endpoint,
		Models:            []*types.ModelOffer{{Hash: h[:], Name: "tiny-llama", ContextLength: 2048}},
		PriceInputPer_1K:  10,
		PriceOutputPer_1K: 20,
		Hardware:          &types.Hardware{Cpu: "test-cpu", MemoryBytes: 1 << 30},
		Capabilities:      []string{"chat"},
	}
}

// TestSingleValidatorLifecycle walks the money through every module on one
// real in-process validator and checks each balance to the base unit.
func TestSingleValidatorLifecycle(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength = 10
	params.CommitWindow = 3
	// No epoch settles during this test, so no reward lands in the balances
	// it checks to the base unit (settlement is tested in chain/app and in
	// the explorer e2e).
	params.OpeningWindow = 1000
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 3, Params: &params})
	ctx := context.Background()
	c := nw.Client(0)
	if err := nw.WaitHeight(0, 2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	clientKey, provKey, otherKey := nw.Accounts[0], nw.Accounts[1], nw.Accounts[2]
	cli, prov := c.NewSigner(clientKey), c.NewSigner(provKey)
	other := testnet.Addr(otherKey)
	start := balance(t, c, cli.Address())
	var fees uint64
	send := func(s *client.Signer, msg any) *client.TxResult {
		r := mustSend(t, s, msg)
		fees += r.Fee
		return r
	}

	var supply0 api.SupplyView
	if err := c.Query(ctx, "/supply", 0, &supply0); err != nil {
		t.Fatal(err)
	}

	// bank: send
	res := send(cli, &types.MsgSend{To: other, Amount: 1234})
	if res.Fee == 0 {
		t.Fatal("send paid no fee")
	}
	cliSpent := 1234 + res.Fee
	if got := balance(t, c, cli.Address()); got != start-cliSpent {
		t.Fatalf("client balance %d, want %d", got, start-cliSpent)
	}
	if got := balance(t, c, other); got != start+1234 {
		t.Fatalf("recipient balance %d, want %d", got, start+1234)
	}

	// stake + registry: bond and register the provider
	provSpent := uint64(0)
	res = send(prov, &types.MsgBondProvider{Amount: params.MinProviderStake})
	provSpent += params.MinProviderStake + res.Fee
	res = send(prov, &types.MsgRegisterProvider{Info: providerInfo("http://127.0.0.1:9999")})
	provSpent += res.Fee
	var pv api.ProviderView
	if err := c.Query(ctx, "/provider/"+prov.Address().String(), 0, &pv); err != nil {
		t.Fatal(err)
	}
	if !pv.Registered || pv.Bonded != params.MinProviderStake || pv.PriceOutputPer1K != 20 || pv.Models[0].Name != "tiny-llama" {
		t.Fatalf("provider view %+v", pv)
	}

	// channels: open, redeem two increasing vouchers, close after expiry
	h := nw.Height(0)
	const deposit = 1_000_000
	res = send(cli, &types.MsgOpenChannel{Provider: prov.Address(), Deposit: deposit, ExpiryHeight: h + 12})
	cliSpent += deposit + res.Fee
	chID := uint64(1)
	if res.Events["channel_id"] != "1" {
		t.Fatalf("channel id event %q", res.Events["channel_id"])
	}
	provBefore := balance(t, c, prov.Address())
	if provBefore != start-provSpent {
		t.Fatalf("provider balance %d, want %d", provBefore, start-provSpent)
	}
	v1 := types.SignVoucher(clientKey, nw.ChainID, chID, 100_000)
	res = send(prov, &types.MsgRedeemVoucher{Voucher: v1})
	provSpent += res.Fee
	if res.Events["paid"] != "100000" {
		t.Fatalf("paid %q", res.Events["paid"])
	}
	v2 := types.SignVoucher(clientKey, nw.ChainID, chID, 250_000)
	res = send(prov, &types.MsgRedeemVoucher{Voucher: v2})
	provSpent += res.Fee
	if got, want := balance(t, c, prov.Address()), start-provSpent+250_000; got != want {
		t.Fatalf("provider balance after vouchers %d, want %d", got, want)
	}
	// the old voucher is refused
	_, err := prov.Send(ctx, &types.MsgRedeemVoucher{Voucher: v1})
	wantCode(t, err, types.CodeVoucher)
	// closing before expiry is refused
	_, err = cli.Send(ctx, &types.MsgCloseChannel{ChannelId: chID})
	wantCode(t, err, types.CodeInvalid)
	if err := nw.WaitHeight(0, h+14, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	res = send(cli, &types.MsgCloseChannel{ChannelId: chID})
	cliSpent += res.Fee
	if res.Events["refund"] != "750000" {
		t.Fatalf("refund %q", res.Events["refund"])
	}
	cliSpent -= deposit - 250_000
	if got := balance(t, c, cli.Address()); got != start-cliSpent {
		t.Fatalf("client balance after close %d, want %d", got, start-cliSpent)
	}
	var ch api.ChannelView
	if err := c.Query(ctx, "/channel/1", 0, &ch); err != nil {
		t.Fatal(err)
	}
	if !ch.Closed || ch.Redeemed != 250_000 || ch.Refunded != 750_000 || ch.Remaining != 0 {
		t.Fatalf("channel %+v", ch)
	}
	// redeeming after close is refused
	v3 := types.SignVoucher(clientKey, nw.ChainID, chID, 300_000)
	_, err = prov.Send(ctx, &types.MsgRedeemVoucher{Voucher: v3})
	wantCode(t, err, types.CodeChannelClosed)

	// epochs: commit a receipt root for a closed epoch; the seed appears after the deadline
	var ep api.EpochView
	if err := c.Query(ctx, "/epoch/latest", 0, &ep); err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256([]byte("receipts"))
	if nw.Height(0) < ep.CommitDeadline {
		res = send(prov, &types.MsgCommitEpoch{Epoch: ep.Number, Root: root[:], RecordCount: 2, TotalBilled: 250_000})
		provSpent += res.Fee
	} else {
		// too late for that one: wait for the next epoch to close
		next := ep.Number + 1
		_, end := int64(next)*params.EpochLength+1, int64(next+1)*params.EpochLength
		if err := nw.WaitHeight(0, end+1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		ep.Number = next
		res = send(prov, &types.MsgCommitEpoch{Epoch: next, Root: root[:], RecordCount: 2, TotalBilled: 250_000})
		provSpent += res.Fee
		if err := c.Query(ctx, "/epoch/"+itoa(next), 0, &ep); err != nil {
			t.Fatal(err)
		}
	}
	_, err = prov.Send(ctx, &types.MsgCommitEpoch{Epoch: ep.Number, Root: root[:], RecordCount: 2, TotalBilled: 1})
	wantCode(t, err, types.CodeInvalid) // only once per epoch
	if err := nw.WaitHeight(0, ep.SeedHeight+1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Query(ctx, "/epoch/"+itoa(ep.Number), 0, &ep); err != nil {
		t.Fatal(err)
	}
	if len(ep.Seed) != 32 || ep.Commitments != 1 {
		t.Fatalf("epoch after seed height: %+v", ep)
	}
	// The seed is the validator's VRF beacon output, not a block hash.
	if beacon := beaconSeeds(t, nw.ChainID, ep.Number, consKeys(t, nw), 1); ep.SeedSource != "vrf" || ep.SeedContributors != 1 || beacon[string(ep.Seed)] != 1 {
		t.Fatalf("seed %x from %q with %d contributors, want the beacon of the validator's key", ep.Seed, ep.SeedSource, ep.SeedContributors)
	}
	var cm api.CommitmentView
	if err := c.Query(ctx, "/commitment/"+itoa(ep.Number)+"/"+prov.Address().String(), 0, &cm); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cm.Root, root[:]) || cm.RecordCount != 2 || cm.TotalBilled != 250_000 {
		t.Fatalf("commitment %+v", cm)
	}

	// final balances and the supply invariant
	if got, want := balance(t, c, prov.Address()), start-provSpent+250_000; got != want {
		t.Fatalf("provider final balance %d, want %d", got, want)
	}
	var supply api.SupplyView
	if err := c.Query(ctx, "/supply", 0, &supply); err != nil {
		t.Fatal(err)
	}
	if supply.Total != supply0.Total {
		t.Fatalf("supply changed from %d to %d", supply0.Total, supply.Total)
	}
	snap, err := nw.Nodes[0].App().Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.CheckInvariants(snap); err != nil {
		t.Fatal(err)
	}
	if pool := bank.Balance(snap, bank.FeePool); pool != fees {
		t.Fatalf("fee pool holds %d, txs paid %d", pool, fees)
	}

	// stake: a bond changes CometBFT's validator set two blocks later
	consKey := testnet.Key("new-validator-cons")
	bondRes := send(c.NewSigner(otherKey), &types.MsgBondValidator{ConsPubKey: consKey.Public().(ed25519.PublicKey), Amount: params.MinValidatorStake})
	valHeight := bondRes.Height + 2
	if err := nw.WaitHeight(0, valHeight, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	vals, err := c.RPC().Validators(ctx, &valHeight, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range vals.Validators {
		if bytes.Equal(v.PubKey.Bytes(), consKey.Public().(ed25519.PublicKey)) {
			found = v.VotingPower == int64(params.MinValidatorStake/params.PowerReduction)
		}
	}
	if vals.Total != 2 || !found {
		t.Fatalf("validator set at %d: %d validators, new one with the bonded power: %v", valHeight, vals.Total, found)
	}

	// proofs: the client's account, verified against the app hash in the next header
	val, height, err := c.VerifiedStore(ctx, append([]byte("acc/"), cli.Address()...), 0)
	if err != nil {
		t.Fatal(err)
	}
	if height == 0 || len(val) == 0 {
		t.Fatalf("empty proof answer at height %d", height)
	}
	// a tampered value must not verify
	resp, err := c.QueryStore(ctx, append([]byte("acc/"), cli.Address()...), height, true)
	if err != nil {
		t.Fatal(err)
	}
	next := height + 1
	cmt, err := c.RPC().Commit(ctx, &next)
	if err != nil {
		t.Fatal(err)
	}
	resp.Value = append([]byte(nil), resp.Value...)
	resp.Value[len(resp.Value)-1] ^= 1
	if err := app.VerifyStoreProof(cmt.Header.AppHash, resp); err == nil {
		t.Fatal("tampered value verified")
	}
	// absence proof for an account that never existed
	resp, err = c.QueryStore(ctx, append([]byte("acc/"), make([]byte, 20)...), height, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.VerifyStoreProof(cmt.Header.AppHash, resp); err != nil {
		t.Fatalf("absence proof: %v", err)
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
