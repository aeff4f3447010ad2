package explorer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
)

// longChain extends the fixture's three blocks to n blocks with a steady
// mix of sends, channel opens, commitments, redemptions, fault reports,
// scores, settlements and slashes, so every aggregate moves throughout.
func longChain(t *testing.T, f *chainFixture, n int) []*BlockData {
	t.Helper()
	blocks := append([]*BlockData{}, f.blocks...)
	prov := addrOf(f.prov)
	t0 := f.blocks[len(f.blocks)-1].Time
	nonce := map[string]uint64{"client": 3, "prov": 2, "val": 2}
	next := func(who string) uint64 { v := nonce[who]; nonce[who]++; return v }
	channel := uint64(1)
	for h := int64(len(blocks) + 1); h <= int64(n); h++ {
		d := &BlockData{Height: h, Hash: sha(h), Time: t0.Add(time.Duration(h) * time.Second), Proposer: bytesOf(9, 20)}
		add := func(raw []byte, r TxResult) {
			d.Txs = append(d.Txs, raw)
			d.Results = append(d.Results, r)
		}
		add(signed(t, f.client, next("client"), &types.MsgSend{To: addrOf(f.other), Amount: uint64(h)}), okResult("100"))
		epoch := uint64((h - 1) / 2)
		if h%3 == 0 {
			add(signed(t, f.prov, next("prov"), &types.MsgCommitEpoch{Epoch: epoch, Root: sha(h), RecordCount: uint64(h), TotalBilled: 10 * uint64(h), TotalTokens: 7 * uint64(h)}),
				okResult("100", "epoch", u64(epoch)))
		}
		if h%5 == 0 {
			channel++
			add(signed(t, f.client, next("client"), &types.MsgOpenChannel{Provider: prov, Deposit: 1000, ExpiryHeight: 10_000}),
				okResult("100", "channel_id", u64(channel), "provider", prov.String()))
		}
		if h%4 == 0 {
			add(signed(t, f.prov, next("prov"), &types.MsgRedeemVoucher{Voucher: &types.Voucher{ChannelId: 1, CumulativeAmount: uint64(h), Signature: bytesOf(1, 64)}}),
				okResult("100", "channel_id", "1", "paid", strconv.FormatInt(h%7+1, 10)))
		}
		if h%11 == 0 {
			add(signed(t, f.val, next("val"), &types.MsgReportFault{Epoch: epoch, Provider: prov, Index: uint64(h), Fault: types.FaultRefused}),
				okResult("100", "provider", prov.String(), "votes", "1", "applied", "true", "slashed", "10", "refund", "4", "reward", "1"))
			add(signed(t, f.val, next("val"), &types.MsgSubmitScores{Epoch: epoch, Scores: []*types.ProviderScore{{Provider: prov, ScoreBps: uint32(h)}}}),
				okResult("100", "epoch", u64(epoch), "scores", "1"))
		}
		if h%2 == 0 {
			d.Events = append(d.Events, Event{Type: "epoch_end", Attrs: map[string]string{"epoch": u64(epoch)}})
		}
		if h%6 == 0 {
			d.Events = append(d.Events,
				Event{Type: "epoch_settled", Attrs: map[string]string{"epoch": u64(epoch - 1), "emission": "1000", "fees": "300", "provider_rewards": "700", "validator_rewards": "300"}},
				Event{Type: "reward", Attrs: map[string]string{"epoch": u64(epoch - 1), "provider": prov.String(), "amount": "700"}})
		}
		if h%13 == 0 {
			d.Events = append(d.Events, Event{Type: "slash", Attrs: map[string]string{"validator": addrOf(f.other).String(), "reason": "DUPLICATE_VOTE", "amount": "5"}})
		}
		blocks = append(blocks, d)
	}
	return blocks
}

func sha(h int64) []byte {
	s := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(h)))
	return s[:]
}

// TestPruneKeepsAggregates: an explorer keeping the last 10 of 120 blocks
// loses exactly the older blocks' detail (block rows, tx rows, account
// entries) and answers "pruned" for them, while its totals, epoch and
// provider sums, commitments, verdicts, scores and channels are the exact
// values of an unpruned index over the same blocks.
func TestPruneKeepsAggregates(t *testing.T) {
	const n, keep = 120, 10
	f := fixture(t)
	blocks := longChain(t, f, n)
	full, pruned := openIndex(t, t.TempDir()), openIndex(t, t.TempDir())
	defer full.Close()
	defer pruned.Close()
	pruned.SetKeepBlocks(keep)
	for _, b := range blocks {
		if err := full.Apply(b); err != nil {
			t.Fatal(err)
		}
		if err := pruned.Apply(b); err != nil {
			t.Fatal(err)
		}
		if _, err := pruned.Prune(); err != nil {
			t.Fatal(err)
		}
		if _, err := full.Prune(); err != nil { // retention off: a no-op
			t.Fatal(err)
		}
	}
	if p := pruned.Pruned(); p != n-keep {
		t.Fatalf("pruned up to %d, want %d", p, n-keep)
	}
	if p := full.Pruned(); p != 0 {
		t.Fatalf("an index keeping all pruned up to %d", p)
	}

	same := func(what string, get func(x *Index) (any, error)) {
		t.Helper()
		a, err := get(full)
		if err != nil {
			t.Fatal(err)
		}
		b, err := get(pruned)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s differs after pruning\nfull:   %+v\npruned: %+v", what, a, b)
		}
	}
	prov := addrOf(f.prov)
	tot, _ := full.Totals()
	if tot.Txs < 200 || tot.Faults < 10 || tot.Channels < 20 || tot.Requests == 0 || tot.Paid == 0 || tot.Emitted == 0 {
		t.Fatalf("the chain does not exercise the aggregates: %+v", tot)
	}
	same("totals", func(x *Index) (any, error) { return x.Totals() })
	same("epochs", func(x *Index) (any, error) { return x.Epochs(0) })
	for e := uint64(0); e <= n/2; e++ {
		same(fmt.Sprintf("epoch %d", e), func(x *Index) (any, error) { return x.Epoch(e) })
		same(fmt.Sprintf("epoch %d scores", e), func(x *Index) (any, error) { return x.EpochScores(e) })
		same(fmt.Sprintf("epoch %d verdicts", e), func(x *Index) (any, error) { return x.EpochVerdicts(e, 0) })
	}
	same("provider", func(x *Index) (any, error) { return x.Provider(prov) })
	same("provider addresses", func(x *Index) (any, error) { return x.ProviderAddrs() })
	same("commitments", func(x *Index) (any, error) { return x.ProviderCommitments(prov, 0) })
	same("verdicts", func(x *Index) (any, error) { return x.Verdicts(0) })
	same("verdicts against the provider", func(x *Index) (any, error) { return x.VerdictsAgainst(prov, 0) })
	same("verdicts against the validator", func(x *Index) (any, error) { return x.VerdictsAgainst(addrOf(f.other), 0) })
	same("channels", func(x *Index) (any, error) { return x.Channels(0) })
	if ps, _ := pruned.Provider(prov); ps.Commitments != n/3 || ps.Faults != 1+n/11 {
		t.Fatalf("provider stats: %+v", ps)
	}

	// Detail: the last `keep` blocks are intact, older ones are gone.
	for _, b := range blocks {
		hashes := make([]string, len(b.Txs))
		for i, raw := range b.Txs {
			h := sha256.Sum256(raw)
			hashes[i] = hex.EncodeToString(h[:])
		}
		got, err := pruned.Block(b.Height)
		if err != nil {
			t.Fatal(err)
		}
		if b.Height <= n-keep {
			if got != nil {
				t.Fatalf("block %d survived pruning", b.Height)
			}
			for _, h := range hashes {
				if tx, _ := pruned.Tx(h); tx != nil {
					t.Fatalf("tx %s of block %d survived pruning", h, b.Height)
				}
			}
			continue
		}
		want, _ := full.Block(b.Height)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("kept block %d differs: %+v, want %+v", b.Height, got, want)
		}
		gotTxs, _ := pruned.Txs(hashes)
		wantTxs, _ := full.Txs(hashes)
		if len(gotTxs) != len(b.Txs) || !reflect.DeepEqual(gotTxs, wantTxs) {
			t.Fatalf("kept block %d's txs: %d, want %d", b.Height, len(gotTxs), len(b.Txs))
		}
	}
	if bs, _ := pruned.Blocks(0, 0); len(bs) != keep || bs[0].Height != n || bs[keep-1].Height != n-keep+1 {
		t.Fatalf("block list: %d blocks", len(bs))
	}
	// Account index: only entries of kept blocks remain, and they are the
	// full index's newest ones.
	for _, k := range [][]byte{addrOf(f.client), addrOf(f.other), prov, addrOf(f.val)} {
		all, _ := full.AccountTxs(k, 0)
		kept, _ := pruned.AccountTxs(k, 0)
		var want []Tx
		for _, tx := range all {
			if tx.Height > n-keep {
				want = append(want, tx)
			}
		}
		if len(kept) == 0 && len(want) > 0 || !reflect.DeepEqual(kept, append([]Tx{}, want...)) {
			t.Fatalf("account %x: %d txs kept, want %d", k, len(kept), len(want))
		}
		var left int
		pruned.scan(key("a/", k), nil, false, 0, func(kk, _ []byte) bool {
			if h := int64(binary.BigEndian.Uint64(kk[2+len(k):])); h <= n-keep {
				t.Errorf("account entry at pruned height %d survived", h)
			}
			left++
			return true
		})
		if left != len(want) {
			t.Fatalf("account %x: %d index entries, want %d", k, left, len(want))
		}
	}

	// The API says "pruned" for detail beyond retention, "not found" otherwise.
	srv := httptest.NewServer(NewServer(pruned, fakeState{"/supply": api.SupplyView{ChainID: "test"}, "/validators": []api.ValidatorView{}, "/providers": []api.ProviderView{}}).Handler())
	defer srv.Close()
	oldTx := sha256.Sum256(blocks[0].Txs[0])
	newTx := sha256.Sum256(blocks[n-1].Txs[0])
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/block/1", 404, "pruned: this node keeps the last 10 blocks (block 1 is older than the oldest kept, 111)"},
		{"/explorer/api/block/110", 404, "pruned: this node keeps the last 10 blocks"},
		{"/explorer/api/block/111", 200, `"height":111`},
		{"/explorer/api/block/121", 404, "block 121 is not on chain yet"},
		{"/explorer/api/tx/" + hex.EncodeToString(oldTx[:]), 404, "pruned: this node keeps the last 10 blocks; no transaction"},
		{"/explorer/api/tx/" + hex.EncodeToString(newTx[:]), 200, `"height":120`},
		{"/explorer/api/overview", 200, `"keep_blocks":10,"oldest_block":111`},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s: %d %s, want %d with %q", c.path, resp.StatusCode, body, c.status, c.want)
		}
	}
}

// TestPruneTurnedOnLater: retention switched on over an index that kept
// everything deletes the backlog in chunks (each its own batch), survives a
// reopen, and switching it off keeps saying "pruned" for what is gone.
func TestPruneTurnedOnLater(t *testing.T) {
	dir := t.TempDir()
	x := openIndex(t, dir)
	blocks := longChain(t, fixture(t), 40)
	for _, b := range blocks {
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	x.SetKeepBlocks(15)
	if n, err := x.Prune(); err != nil || n != 25 {
		t.Fatalf("pruned %d blocks (%v), want 25", n, err)
	}
	if n, err := x.Prune(); err != nil || n != 0 {
		t.Fatalf("a second prune pruned %d blocks (%v)", n, err)
	}
	x.Close()
	x = openIndex(t, dir)
	defer x.Close()
	if x.Pruned() != 25 || x.KeepBlocks() != 0 {
		t.Fatalf("after reopen: pruned %d, keep %d", x.Pruned(), x.KeepBlocks())
	}
	if b, _ := x.Block(25); b != nil {
		t.Fatal("block 25 is back")
	}
	if err := x.prunedBlock(3); err == nil || !IsPruned(err) || !strings.Contains(err.Error(), "no longer has the blocks up to 25") {
		t.Fatalf("block 3 with retention off: %v", err)
	}
	if err := x.prunedBlock(26); err != nil {
		t.Fatalf("block 26 is kept, yet: %v", err)
	}
}
