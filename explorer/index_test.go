package explorer

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
)

func testKey(t *testing.T, seed byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytesOf(seed, 32))
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func addrOf(k ed25519.PrivateKey) types.Address {
	return types.AddressFromPubKey(k.Public().(ed25519.PublicKey))
}

func signed(t *testing.T, k ed25519.PrivateKey, nonce uint64, msg any) []byte {
	t.Helper()
	body := &types.TxBody{ChainId: "test", Nonce: nonce, Fee: 100}
	if err := types.SetMsg(body, msg); err != nil {
		t.Fatal(err)
	}
	raw, err := types.SignTx(k, body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// okResult is what FinalizeBlock reports for an applied tx.
func okResult(fee string, attrs ...string) TxResult {
	ev := Event{Type: "agora", Attrs: map[string]string{"fee": fee}}
	for i := 0; i+1 < len(attrs); i += 2 {
		ev.Attrs[attrs[i]] = attrs[i+1]
	}
	return TxResult{Events: []Event{ev}}
}

type chainFixture struct {
	client, prov, val, other ed25519.PrivateKey
	blocks                   []*BlockData
}

// fixture builds three blocks (epoch length 2) exercising every aggregate.
func fixture(t *testing.T) *chainFixture {
	f := &chainFixture{client: testKey(t, 1), prov: testKey(t, 2), val: testKey(t, 3), other: testKey(t, 4)}
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	prov := addrOf(f.prov)
	f.blocks = []*BlockData{
		{Height: 1, Hash: bytesOf(0xa1, 32), Time: t0, Proposer: bytesOf(9, 20),
			Txs:     [][]byte{signed(t, f.client, 0, &types.MsgSend{To: addrOf(f.other), Amount: 5})},
			Results: []TxResult{okResult("100", "to", addrOf(f.other).String())}},
		{Height: 2, Hash: bytesOf(0xa2, 32), Time: t0.Add(time.Second), Proposer: bytesOf(9, 20),
			Txs: [][]byte{
				signed(t, f.client, 1, &types.MsgOpenChannel{Provider: prov, Deposit: 1000, ExpiryHeight: 100}),
				[]byte("not a tx"),
				signed(t, f.client, 2, &types.MsgSend{To: addrOf(f.other), Amount: 1 << 60}),
			},
			Results: []TxResult{
				okResult("100", "channel_id", "1", "provider", prov.String()),
				{Code: uint32(types.CodeMalformed), Log: "malformed"},
				{Code: uint32(types.CodeInsufficientFunds), Log: "insufficient funds", Events: okResult("100").Events},
			},
			Events: []Event{{Type: "epoch_end", Attrs: map[string]string{"epoch": "0"}}}},
		{Height: 3, Hash: bytesOf(0xa3, 32), Time: t0.Add(2500 * time.Millisecond), Proposer: bytesOf(9, 20),
			Txs: [][]byte{
				signed(t, f.prov, 0, &types.MsgCommitEpoch{Epoch: 0, Root: bytesOf(7, 32), RecordCount: 7, TotalBilled: 70, TotalTokens: 123}),
				signed(t, f.prov, 1, &types.MsgRedeemVoucher{Voucher: &types.Voucher{ChannelId: 1, CumulativeAmount: 30, Signature: bytesOf(1, 64)}}),
				signed(t, f.val, 0, &types.MsgReportFault{Epoch: 0, Provider: prov, Index: 3, Fault: types.FaultRefused}),
				signed(t, f.val, 1, &types.MsgSubmitScores{Epoch: 0, Scores: []*types.ProviderScore{{Provider: prov, ScoreBps: 7500}}}),
			},
			Results: []TxResult{
				okResult("100", "epoch", "0"),
				okResult("100", "channel_id", "1", "paid", "30"),
				okResult("100", "provider", prov.String(), "votes", "1", "applied", "true", "slashed", "1000", "refund", "400", "reward", "100"),
				okResult("100", "epoch", "0", "scores", "1"),
			},
			Events: []Event{
				{Type: "slash", Attrs: map[string]string{"validator": addrOf(f.other).String(), "reason": "DUPLICATE_VOTE", "amount": "50"}},
				{Type: "epoch_settled", Attrs: map[string]string{"epoch": "0", "emission": "1000", "fees": "300", "provider_rewards": "910", "validator_rewards": "390"}},
				{Type: "reward", Attrs: map[string]string{"epoch": "0", "provider": prov.String(), "amount": "910"}},
				{Type: "reward", Attrs: map[string]string{"epoch": "0", "validator": addrOf(f.val).String(), "amount": "390"}},
			}},
	}
	return f
}

func openIndex(t *testing.T, dir string) *Index {
	t.Helper()
	x, err := OpenIndex(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestIndexAggregates(t *testing.T) {
	dir := t.TempDir()
	x := openIndex(t, dir)
	f := fixture(t)
	for _, b := range f.blocks {
		if err := x.Apply(b); err != nil {
			t.Fatalf("apply %d: %v", b.Height, err)
		}
	}
	tot, err := x.Totals()
	if err != nil {
		t.Fatal(err)
	}
	want := Totals{Blocks: 3, Txs: 8, Failed: 2, Fees: 700, Requests: 7, Tokens: 123, Billed: 70, Paid: 30, Faults: 2, Slashed: 1050, Channels: 1, Emitted: 1000, Rewards: 1300}
	if tot != want {
		t.Fatalf("totals\n got %+v\nwant %+v", tot, want)
	}

	prov := addrOf(f.prov)
	ps, err := x.Provider(prov)
	if err != nil {
		t.Fatal(err)
	}
	wantP := ProviderStats{Address: prov.String(), Commitments: 1, Requests: 7, Tokens: 123, Billed: 70, Earned: 30, LastEpoch: 0, Committed: true, Faults: 1, Slashed: 1000, Refunded: 400, Rewards: 910}
	if ps != wantP {
		t.Fatalf("provider stats\n got %+v\nwant %+v", ps, wantP)
	}
	e0, _ := x.Epoch(0)
	e1, _ := x.Epoch(1)
	// Epoch 0 = heights 1-2 (txs, fees), plus the commitment and fault made for it in block 3.
	if e0.Blocks != 2 || e0.Txs != 4 || e0.Fees != 300 || e0.Requests != 7 || e0.Tokens != 123 || e0.Billed != 70 || e0.Commitments != 1 || e0.Faults != 1 || e0.Slashed != 1000 || e0.Paid != 0 ||
		!e0.Settled || e0.Emission != 1000 || e0.ProviderRewards != 910 || e0.ValidatorRewards != 390 {
		t.Fatalf("epoch 0: %+v", e0)
	}
	if e1.Blocks != 1 || e1.Txs != 4 || e1.Fees != 400 || e1.Paid != 30 || e1.Requests != 0 {
		t.Fatalf("epoch 1: %+v", e1)
	}

	b2, err := x.Block(2)
	if err != nil || b2 == nil {
		t.Fatalf("block 2: %v %v", b2, err)
	}
	if b2.Txs != 3 || b2.Failed != 2 || b2.Fees != 200 || b2.Epoch != 0 || b2.Hash != hex.EncodeToString(bytesOf(0xa2, 32)) || len(b2.Events) != 1 {
		t.Fatalf("block 2: %+v", b2)
	}
	txs, err := x.Txs(b2.TxHashes)
	if err != nil {
		t.Fatal(err)
	}
	if txs[0].Msg != "open_channel" || txs[0].Fields["deposit"] != "1000" || txs[0].Results["channel_id"] != "1" {
		t.Fatalf("open channel tx: %+v", txs[0])
	}
	if txs[1].Msg != "undecodable" || txs[1].Fee != 0 || txs[1].OK() {
		t.Fatalf("undecodable tx: %+v", txs[1])
	}
	if txs[2].Msg != "send" || txs[2].Fee != 100 || txs[2].Code != uint32(types.CodeInsufficientFunds) {
		t.Fatalf("failed send: %+v", txs[2])
	}
	h := sha256.Sum256(f.blocks[0].Txs[0])
	tx, err := x.Tx(hex.EncodeToString(h[:]))
	if err != nil || tx == nil || tx.Height != 1 || tx.Signer != addrOf(f.client).String() || tx.Fields["amount"] != "5" {
		t.Fatalf("tx by hash: %+v %v", tx, err)
	}
	if _, err := x.Tx("zz"); err == nil {
		t.Fatal("a malformed hash was accepted")
	}

	// The client signed 3 txs; the other account received 2 sends.
	ctx, _ := x.AccountTxs(addrOf(f.client), 0)
	if len(ctx) != 3 || ctx[0].Height != 2 || ctx[2].Height != 1 {
		t.Fatalf("client txs (newest first): %+v", ctx)
	}
	otx, _ := x.AccountTxs(addrOf(f.other), 0)
	if len(otx) != 2 {
		t.Fatalf("other's txs: %d", len(otx))
	}
	ptx, _ := x.AccountTxs(prov, 0)
	if len(ptx) != 4 { // channel opened to it, its commit and redeem, the report against it
		t.Fatalf("provider's txs: %d", len(ptx))
	}

	vs, err := x.Verdicts(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Kind != "DUPLICATE_VOTE" || vs[0].Slashed != 50 || vs[1].Kind != "refused_opening" || !vs[1].Applied || vs[1].Refund != 400 || vs[1].Reporter != addrOf(f.val).String() {
		t.Fatalf("verdicts: %+v", vs)
	}
	scs, err := x.EpochScores(0)
	if err != nil || len(scs) != 1 || scs[0].Validator != addrOf(f.val).String() || len(scs[0].Scores) != 1 || scs[0].Scores[0].ScoreBps != 7500 || scs[0].Scores[0].Provider != prov.String() {
		t.Fatalf("epoch scores: %+v %v", scs, err)
	}
	if against, _ := x.VerdictsAgainst(prov, 0); len(against) != 1 || against[0].Kind != "refused_opening" {
		t.Fatalf("verdicts against the provider: %+v", against)
	}
	if against, _ := x.VerdictsAgainst(addrOf(f.other), 0); len(against) != 1 || against[0].Kind != "DUPLICATE_VOTE" {
		t.Fatalf("verdicts against the validator: %+v", against)
	}
	if ev, _ := x.EpochVerdicts(0, 0); len(ev) != 1 || ev[0].Provider != prov.String() {
		t.Fatalf("epoch 0 verdicts: %+v", ev)
	}
	if ev, _ := x.EpochVerdicts(1, 0); len(ev) != 0 {
		t.Fatalf("epoch 1 verdicts: %+v", ev)
	}
	cms, _ := x.ProviderCommitments(prov, 0)
	if len(cms) != 1 || cms[0].Root != hex.EncodeToString(bytesOf(7, 32)) || cms[0].Requests != 7 || cms[0].Tokens != 123 || cms[0].Height != 3 {
		t.Fatalf("commitments: %+v", cms)
	}
	chans, _ := x.Channels(0)
	if len(chans) != 1 || chans[0].ID != 1 || chans[0].Provider != prov.String() || chans[0].Deposit != 1000 {
		t.Fatalf("channels: %+v", chans)
	}
	blocks, _ := x.Blocks(3, 10)
	if len(blocks) != 2 || blocks[0].Height != 2 || blocks[1].Height != 1 {
		t.Fatalf("blocks before 3: %+v", blocks)
	}
	addrs, _ := x.ProviderAddrs()
	if len(addrs) != 1 || addrs[0].String() != prov.String() {
		t.Fatalf("provider addresses: %v", addrs)
	}

	// Out-of-order blocks are refused and change nothing; the index survives a reopen.
	if err := x.Apply(f.blocks[1]); err == nil || !strings.Contains(err.Error(), "want 4") {
		t.Fatalf("re-applying block 2: %v", err)
	}
	bad := &BlockData{Height: 4, Txs: [][]byte{{1}}, Time: time.Now()}
	if err := x.Apply(bad); err == nil {
		t.Fatal("a block with fewer results than txs was accepted")
	}
	x.Close()
	x = openIndex(t, dir)
	defer x.Close()
	if x.Height() != 3 {
		t.Fatalf("height after reopen: %d", x.Height())
	}
	if tot2, _ := x.Totals(); tot2 != want {
		t.Fatalf("totals after reopen: %+v", tot2)
	}
}

func TestOpenIndexRefusesBadEpochLength(t *testing.T) {
	if _, err := OpenIndex(t.TempDir(), 0); err == nil {
		t.Fatal("epoch length 0 accepted")
	}
}

// An index written with another key layout is wiped at open, so it is
// rebuilt from block 1 rather than read half right.
func TestIndexRebuiltOnLayoutChange(t *testing.T) {
	dir := t.TempDir()
	x := openIndex(t, dir)
	if err := x.Apply(fixture(t).blocks[0]); err != nil {
		t.Fatal(err)
	}
	if err := x.db.Set(keyVersion, []byte("0"), nil); err != nil {
		t.Fatal(err)
	}
	x.Close()
	x = openIndex(t, dir)
	defer x.Close()
	if h := x.Height(); h != 0 {
		t.Fatalf("height %d after a layout change, want 0 (rebuild)", h)
	}
	if b, _ := x.Block(1); b != nil {
		t.Fatal("old block survived the reset")
	}
}

// TestIndexBeaconTx: a block's beacon tx is labelled as one, with its epoch
// and how many validators' proofs it carries, not as undecodable.
func TestIndexBeaconTx(t *testing.T) {
	x, err := OpenIndex(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	bt := types.EncodeBeaconTx(&types.BeaconTx{Epoch: 3, Entries: []types.BeaconEntry{
		{Validator: bytesOf(1, 20), Proof: bytesOf(7, types.VRFProofLen)},
		{Validator: bytesOf(2, 20), Proof: bytesOf(8, types.VRFProofLen)},
	}})
	res := TxResult{Events: []Event{{Type: "beacon", Attrs: map[string]string{"epoch": "3", "entries": "2", "recorded": "2"}}}}
	if err := x.Apply(&BlockData{Height: 1, Hash: bytesOf(0xb1, 32), Time: time.Unix(0, 0), Txs: [][]byte{bt}, Results: []TxResult{res}}); err != nil {
		t.Fatal(err)
	}
	b, err := x.Block(1)
	if err != nil {
		t.Fatal(err)
	}
	txs, err := x.Txs(b.TxHashes)
	if err != nil || len(txs) != 1 {
		t.Fatalf("%d txs, %v", len(txs), err)
	}
	if tx := txs[0]; tx.Msg != "beacon" || tx.Fields["epoch"] != "3" || tx.Fields["validators"] != "2" || !tx.OK() {
		t.Fatalf("beacon tx indexed as %+v", tx)
	}
}

// A commitment of another kind of work than inference adds what it billed
// to the sums, but no requests or tokens, and does not replace the
// provider's inference commitment for the epoch.
func TestIndexOtherServiceCommitment(t *testing.T) {
	x := openIndex(t, t.TempDir())
	f := fixture(t)
	for _, b := range f.blocks {
		if err := x.Apply(b); err != nil {
			t.Fatalf("apply %d: %v", b.Height, err)
		}
	}
	prov := addrOf(f.prov)
	before, _ := x.Provider(prov)
	b := &BlockData{Height: 4, Hash: bytesOf(0xa4, 32), Time: f.blocks[2].Time.Add(time.Second), Proposer: bytesOf(9, 20),
		Txs:     [][]byte{signed(t, f.prov, 2, &types.MsgCommitEpoch{Service: "jobs", Epoch: 0, Root: bytesOf(8, 32), RecordCount: 3, TotalBilled: 50})},
		Results: []TxResult{okResult("100", "epoch", "0")}}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	tot, _ := x.Totals()
	if tot.Requests != 7 || tot.Tokens != 123 || tot.Billed != 120 {
		t.Fatalf("totals after a jobs commitment: %+v", tot)
	}
	ps, _ := x.Provider(prov)
	if ps.Requests != before.Requests || ps.Commitments != before.Commitments || ps.Billed != before.Billed+50 {
		t.Fatalf("provider after a jobs commitment: %+v (before %+v)", ps, before)
	}
}
