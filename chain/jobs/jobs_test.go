package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

func TestMaxDisputeTxs(t *testing.T) {
	for _, c := range []struct {
		steps uint64
		k     uint32
		want  int
	}{
		{100_000, 8, 14}, {100_000, 4, 20}, {100_000, 16, 12}, {100_000, 2, 36},
		{1, 8, 2}, {2, 2, 4}, {8, 8, 4}, {9, 8, 6}, {1 << 63, 16, 2*16 + 2},
	} {
		if got := MaxDisputeTxs(c.steps, c.k); got != c.want {
			t.Errorf("MaxDisputeTxs(%d, %d) = %d, want %d", c.steps, c.k, got, c.want)
		}
	}
}

// Payments are Cost(new) − Cost(old) at the lease's price, rounded down
// on the cumulative gas, so a chain of checkpoints pays exactly
// Cost(total) whatever its steps, never more than the budget.
func TestCostAndBudget(t *testing.T) {
	const price = 1_234
	var paid, gas uint64
	for _, g := range []uint64{1, 999, 810, 1_000_000, 7, 123_456_789} {
		gas += g
		paid += Cost(gas, price) - Cost(gas-g, price)
	}
	if paid != Cost(gas, price) || paid != gas*price/1_000_000 {
		t.Fatalf("paid %d, cost %d", paid, Cost(gas, price))
	}
	if b, err := Budget(gas, price); err != nil || b != (gas*price+999_999)/1_000_000 || b < paid {
		t.Fatalf("budget %d %v", b, err)
	}
	if _, err := Budget(1<<63, MaxPrice); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Fatalf("overflowing budget: %v", err)
	}
}

// benchMarket writes orders orders of 20 bids each, all closing at height
// end, on an in-memory IAVL tree (the store FinalizeBlock works on).
func benchMarket(tb testing.TB, orders, bidsPer int, end int64) (*store.Tree, types.Params) {
	tb.Helper()
	tree, err := store.OpenMemTree()
	if err != nil {
		tb.Fatal(err)
	}
	p := types.DefaultParams()
	var provs [][]byte
	for i := 0; i < bidsPer; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("prov"), uint64(i)))
		a := h[:20]
		provs = append(provs, a)
		must(tb, bank.Mint(tree, a, 1<<50))
		must(tb, stake.BondProvider(tree, a, p.MinProviderStake))
		must(tb, registry.Register(tree, p, 1, a, &types.ProviderInfo{Endpoint: "http://127.0.0.1:1", Capabilities: []string{Capability}}))
		pv := registry.Get(tree, a)
		pv.ReputationBps = uint64(i * 500)
		registry.Set(tree, pv)
	}
	owner := make([]byte, 20)
	owner[0] = 0xee
	must(tb, bank.Mint(tree, owner, 1<<50))
	mod := sha256.Sum256([]byte("module"))
	for o := 0; o < orders; o++ {
		m := &types.MsgSubmitJob{ModuleHash: mod[:], GasLimit: 1_000_000_000, MemoryPages: 16, MaxPrice: 2_000, Deadline: end + 1000,
			Collateral: 1000, Replication: uint32(1 + o%MaxReplication), BidWindow: end - 1, CheckpointInterval: 1000, Escrow: 4 * 2_000_000}
		id, err := Submit(tree, p, 1, owner, m)
		must(tb, err)
		for i, a := range provs {
			must(tb, Bid(tree, p, 2, a, &types.MsgBidJob{OrderId: id, Price: 1_000 + uint64((o*7+i*13)%1000), Collateral: 1000 + uint64(i)}))
		}
	}
	return tree, p
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestClearingMany: clearing 1,000 orders × 20 bids in one end block
// leases every order to its r best bids, refunds the rest, and leaves the
// jobs account holding exactly the leases' budgets and collateral.
func TestClearingMany(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 20,000 bids")
	}
	tree, p := benchMarket(t, 1000, 20, 10)
	if _, err := EndBlock(tree, p, 10); err != nil {
		t.Fatal(err)
	}
	running := OrdersByStatus(tree, types.JobStatus_JOB_STATUS_RUNNING)
	if len(running) != 1000 {
		t.Fatalf("%d orders running", len(running))
	}
	for _, id := range running {
		o := GetOrder(tree, id)
		if len(o.LeaseIds) != int(o.Replication) || len(Bids(tree, id)) != 0 {
			t.Fatalf("order %d: %d leases, replication %d", id, len(o.LeaseIds), o.Replication)
		}
	}
	held, err := Held(tree)
	if err != nil || held != bank.Balance(tree, Account) {
		t.Fatalf("held %d, account %d, %v", held, bank.Balance(tree, Account), err)
	}
}

// BenchmarkClearing1000x20 is one end block clearing 1,000 orders of 20
// bids each (issue 18: target <= 20 ms), on the IAVL tree FinalizeBlock
// works on. It also reports the two halves: the clearing itself over a
// write cache (logic-ms) and writing what it changed into the tree
// (iavl-ms, keys-written).
func BenchmarkClearing1000x20(b *testing.B) {
	var logic, flush time.Duration
	var keys int
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		tree, p := benchMarket(b, 1000, 20, 10)
		runtime.GC() // the setup's garbage is not the clearing's
		b.StartTimer()
		t0 := time.Now()
		counted := &countKV{KV: tree}
		outer := store.NewCache(counted)
		if _, err := EndBlock(outer, p, 10); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		outer.Write()
		keys = counted.n
		b.StopTimer()
		logic += t1.Sub(t0)
		flush += time.Since(t1)
	}
	b.ReportMetric(float64(logic.Milliseconds())/float64(b.N), "logic-ms")
	b.ReportMetric(float64(flush.Milliseconds())/float64(b.N), "iavl-ms")
	b.ReportMetric(float64(keys), "keys-written")
}

// countKV counts the writes that reach a store.
type countKV struct {
	store.KV
	n int
}

func (c *countKV) Set(k, v []byte) { c.n++; c.KV.Set(k, v) }
func (c *countKV) Delete(k []byte) { c.n++; c.KV.Delete(k) }

// TestClearingWeightsReputation: a bid's score is price × (30000 −
// reputation): a provider with full reputation at 1,200 beats a newcomer
// at 900 (24M < 27M), the newcomer beats it at 799; equal scores and
// prices go to the lower address; r = 2 takes the two best.
func TestClearingWeightsReputation(t *testing.T) {
	for _, c := range []struct {
		name   string
		prices []uint64 // bids of providers 0 (reputation 0), 1 (10000), 2 (0)
		r      uint32
		want   []int
	}{
		{"reputation wins", []uint64{900, 1200, 0}, 1, []int{1}},
		{"cheaper wins", []uint64{799, 1200, 0}, 1, []int{0}},
		{"tie to the lower address", []uint64{1000, 0, 1000}, 1, []int{0}},
		{"two best", []uint64{950, 1200, 1000}, 2, []int{1, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tree, err := store.OpenMemTree()
			if err != nil {
				t.Fatal(err)
			}
			p := types.DefaultParams()
			var provs [][]byte
			for i, rep := range []uint64{0, 10000, 0} {
				a := make([]byte, 20)
				a[0] = byte(i + 1) // provider 0 < 1 < 2
				provs = append(provs, a)
				must(t, bank.Mint(tree, a, 1<<40))
				must(t, stake.BondProvider(tree, a, p.MinProviderStake))
				must(t, registry.Register(tree, p, 1, a, &types.ProviderInfo{Endpoint: "http://127.0.0.1:1", Capabilities: []string{Capability}}))
				pv := registry.Get(tree, a)
				pv.ReputationBps = rep
				registry.Set(tree, pv)
			}
			owner := make([]byte, 20)
			owner[0] = 0xee
			must(t, bank.Mint(tree, owner, 1<<40))
			mod := sha256.Sum256([]byte("m"))
			id, err := Submit(tree, p, 1, owner, &types.MsgSubmitJob{ModuleHash: mod[:], GasLimit: 1_000_000, MemoryPages: 1, MaxPrice: 2_000,
				Deadline: 100, Collateral: 10, Replication: c.r, BidWindow: 2, CheckpointInterval: 10, Escrow: uint64(c.r) * 2_000})
			must(t, err)
			for i, price := range c.prices {
				if price > 0 {
					must(t, Bid(tree, p, 2, provs[i], &types.MsgBidJob{OrderId: id, Price: price, Collateral: 10}))
				}
			}
			if _, err := EndBlock(tree, p, 3); err != nil {
				t.Fatal(err)
			}
			o := GetOrder(tree, id)
			if len(o.LeaseIds) != len(c.want) {
				t.Fatalf("leases %v", o.LeaseIds)
			}
			for k, lid := range o.LeaseIds {
				if l := GetLease(tree, lid); !bytes.Equal(l.Provider, provs[c.want[k]]) || l.Price != c.prices[c.want[k]] {
					t.Fatalf("lease %d went to %x at %d, want provider %d", k, l.Provider, l.Price, c.want[k])
				}
			}
		})
	}
}
