package explorer

import (
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
)

// BenchmarkApply indexes blocks of 100 transfers each: the explorer's
// catch-up speed.
func BenchmarkApply(b *testing.B) {
	t := &testing.T{}
	x, err := OpenIndex(b.TempDir(), 20)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	from, to := testKey(t, 1), addrOf(testKey(t, 2))
	const perBlock = 100
	var results []TxResult
	for i := 0; i < perBlock; i++ {
		results = append(results, okResult("100", "to", to.String()))
	}
	t0 := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Distinct txs per block (the tx hash is the key): vary the nonce.
		blockTxs := make([][]byte, perBlock)
		b.StopTimer()
		for j := range blockTxs {
			blockTxs[j] = signed(t, from, uint64(i*perBlock+j), &types.MsgSend{To: to, Amount: 1})
		}
		b.StartTimer()
		d := &BlockData{Height: int64(i + 1), Hash: make([]byte, 32), Time: t0.Add(time.Duration(i) * time.Second), Proposer: make([]byte, 20), Txs: blockTxs, Results: results}
		if err := x.Apply(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perBlock)/b.Elapsed().Seconds(), "txs/s")
}
