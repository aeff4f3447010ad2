package gateway

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/testkey"
)

// TestVerifyBatch feeds the verifier receipts of two provider batches (one
// split across two verification batches), a plain one, one whose batched
// signature was moved onto another receipt, and one with a malformed
// signature: exactly the genuine ones are paid, and the provider is marked
// failed once for each bad one.
func TestVerifyBatch(t *testing.T) {
	priv, pub := testkey.Pair("prov")
	st := testStore(t, "")
	g := &Gateway{store: st, log: slog.New(slog.DiscardHandler), metrics: newMetrics(nil)}
	prov := &providerEntry{addr: types.AddressFromPubKey(pub), pub: pub, stats: &stats{halfLife: time.Hour}}
	ch := &channel{provider: prov}

	receipts := func(from, n int) []*types.Receipt {
		rs := make([]*types.Receipt, n)
		for i := range rs {
			rs[i] = &types.Receipt{ChainId: "c", Provider: prov.addr, ChannelId: 1, Index: uint64(from + i), Amount: uint64(1) << (from + i)}
		}
		return rs
	}
	a, err := receipt.SignBatch(priv, receipts(0, 5)) // amounts 1..16
	if err != nil {
		t.Fatal(err)
	}
	b, err := receipt.SignBatch(priv, receipts(5, 3)) // 32, 64, 128
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := receipt.Sign(priv, receipts(8, 1)[0])                                             // 256
	moved := &receipt.Signed{Receipt: b[0].Receipt, Bytes: b[0].Bytes, Signature: b[1].Signature} // 32 again, b[1]'s path
	broken := &receipt.Signed{Receipt: a[0].Receipt, Bytes: a[0].Bytes, Signature: append(bytes.Clone(a[0].Signature), 0)}

	pending := func(srs ...*receipt.Signed) []pendingReceipt {
		var out []pendingReceipt
		for _, sr := range srs {
			rec := StoredReceipt{ID: sr.IDHex(), Amount: sr.Receipt.Amount, Encoded: sr.Encode()}
			if err := st.AddReceipt(&rec); err != nil {
				t.Fatal(err)
			}
			out = append(out, pendingReceipt{ch: ch, provider: prov, sr: sr, seq: rec.Seq})
		}
		return out
	}
	keys, roots := expandedKeys{}, verifiedRoots{}
	g.verifyBatch(pending(a[0], a[1], a[2], b[0], moved, plain, broken), keys, roots)
	if got, want := ch.state.Billed, uint64(1+2+4+32+256); got != want {
		t.Fatalf("billed %d after the first batch, want %d", got, want)
	}
	if len(roots) != 2 {
		t.Fatalf("%d batch roots remembered, want 2", len(roots))
	}
	// The rest of batch a, verified later: its root is already known good.
	g.verifyBatch(pending(a[3], a[4], b[2]), keys, roots)
	if got, want := ch.state.Billed, uint64(1+2+4+8+16+32+128+256); got != want {
		t.Fatalf("billed %d after the second batch, want %d", got, want)
	}
	if f := prov.recentFailures(time.Now()); f < 1.9 || f > 2.1 {
		t.Fatalf("provider failures %.2f, want 2 (the moved and the broken signature)", f)
	}
}
