package executor

import (
	"testing"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
)

// TestOutOfLimits: the executor bids only on orders within its limits,
// and says which one an order exceeds.
func TestOutOfLimits(t *testing.T) {
	self, other := types.Address("provider-address-20b"), types.Address("owner-address-20byte")
	cfg := Config{Price: 1000, MaxCollateral: 5_000_000, MaxGas: 1e9, MaxPages: 256, MinBlocks: 20}
	fits := api.JobOrderView{Owner: other, GasLimit: 1e9, MemoryPages: 256, MaxPrice: 1000, Collateral: 5_000_000, BidWindowEnd: 100, Deadline: 120}
	for _, tc := range []struct {
		name   string
		change func(o *api.JobOrderView)
		want   string
	}{
		{"at every limit", func(*api.JobOrderView) {}, ""},
		{"own order", func(o *api.JobOrderView) { o.Owner = self }, "own order"},
		{"gas", func(o *api.JobOrderView) { o.GasLimit++ }, "gas limit 1000000001 above 1000000000"},
		{"memory", func(o *api.JobOrderView) { o.MemoryPages = 257 }, "memory 257 pages above 256"},
		{"price", func(o *api.JobOrderView) { o.MaxPrice = 999 }, "max price 999 below ours 1000"},
		{"collateral", func(o *api.JobOrderView) { o.Collateral = 5_000_001 }, "collateral 5000001 above our cap 5000000"},
		{"deadline", func(o *api.JobOrderView) { o.Deadline = 119 }, "deadline 119 leaves fewer than 20 blocks after bidding"},
	} {
		o := fits
		tc.change(&o)
		if got := outOfLimits(cfg, self, o); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
