// Package jobs is the compute-job market on the verification kernel: an
// owner posts an order for a sandboxed WebAssembly job and escrows its
// price; providers with the wasm capability bid; at the end of the bid
// window the chain clears the order to the r cheapest bids weighted by
// reputation; each lease's provider commits a chain of checkpoints (state
// hashes, steps, gas) and is paid per checkpoint for the gas it reports;
// anyone entitled may dispute a checkpoint, and a k-ary bisection between
// the two parties narrows the disagreement to one step, which a
// stake-weighted 2/3 quorum of validators re-executes off chain and votes
// on. The chain never runs WASM: it sees hashes and gas counts only.
//
// Every amount the market holds sits in the jobs module account: orders'
// unallocated escrow, leases' unspent budgets, bids' and leases' locked
// collateral, and dispute bonds (Held; app.CheckInvariants compares it with
// the account's balance after every block).
package jobs

import (
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Account is the jobs module account: no key can sign for it.
var Account = bank.ModuleAddress("jobs")

// Capability is the provider capability (registry ProviderInfo) a bidder
// must declare.
const Capability = "wasm"

// MaxReplication bounds an order's replication factor r.
const MaxReplication = 4

// MaxPrice bounds prices (uagr per million gas) so that weighted scores
// fit in 64 bits.
const MaxPrice = 1_000_000_000_000

var (
	prefixOrder      = []byte("jobo/")   // jobo/<id>
	prefixLease      = []byte("jobl/")   // jobl/<id>
	prefixCheckpoint = []byte("jobc/")   // jobc/<lease>/<index>
	prefixDispute    = []byte("jobd/")   // jobd/<id>
	prefixVote       = []byte("jobv/")   // jobv/<dispute>/<validator> -> post-state hash
	prefixByOwner    = []byte("jobown/") // jobown/<owner>/<order>
	prefixByProvider = []byte("jobpv/")  // jobpv/<provider>/<lease>
	prefixByStatus   = []byte("jobst/")  // jobst/<status(1)>/<order>
	prefixByEpoch    = []byte("jobcpe/") // jobcpe/<epoch>/<provider>/<lease>/<index>
	prefixDisputes   = []byte("jobdl/")  // jobdl/<lease>/<dispute>
	prefixByDataset  = []byte("jobds/")  // jobds/<dataset>/<order>: compute-to-data orders
	// Queues, keyed by the height at whose end the entry is due.
	qClear    = []byte("jobq/clear/") // <height>/<order>: the bid window closes
	qDeadline = []byte("jobq/dead/")  // <height>/<order>: the order's deadline
	qLive     = []byte("jobq/live/")  // <height>/<lease>: liveness deadline
	qRelease  = []byte("jobq/rel/")   // <height>/<lease>: collateral released
	qMove     = []byte("jobq/move/")  // <height>/<dispute>: the move's deadline
	qSweep    = []byte("jobq/sweep/") // <lease>: the lease can pay no more
	seqOrder  = []byte("seq/job_order")
	seqLease  = []byte("seq/job_lease")
	seqDisp   = []byte("seq/job_dispute")
)

func next(kv store.KV, seq []byte) uint64 {
	id := codec.ReadU64(kv.Get(seq)) + 1
	kv.Set(seq, codec.U64(id))
	return id
}

// GetOrder returns order id, or nil.
func GetOrder(kv store.KV, id uint64) *types.JobOrder {
	bz := kv.Get(codec.Key(prefixOrder, codec.U64(id)))
	if bz == nil {
		return nil
	}
	o := &types.JobOrder{}
	codec.MustUnmarshal(bz, o)
	return o
}

// putOrder stores o and moves it in the status index.
func putOrder(kv store.KV, o *types.JobOrder) {
	k := codec.Key(prefixOrder, codec.U64(o.Id))
	if old := kv.Get(k); old != nil {
		prev := &types.JobOrder{}
		codec.MustUnmarshal(old, prev)
		if prev.Status != o.Status {
			kv.Delete(codec.Key(prefixByStatus, []byte{byte(prev.Status)}, codec.U64(o.Id)))
		}
	}
	kv.Set(codec.Key(prefixByStatus, []byte{byte(o.Status)}, codec.U64(o.Id)), []byte{1})
	kv.Set(k, codec.Marshal(o))
}

// GetLease returns lease id, or nil.
func GetLease(kv store.KV, id uint64) *types.JobLease {
	bz := kv.Get(codec.Key(prefixLease, codec.U64(id)))
	if bz == nil {
		return nil
	}
	l := &types.JobLease{}
	codec.MustUnmarshal(bz, l)
	return l
}

func putLease(kv store.KV, l *types.JobLease) {
	kv.Set(codec.Key(prefixLease, codec.U64(l.Id)), codec.Marshal(l))
}

// GetCheckpoint returns checkpoint index of lease, or nil.
func GetCheckpoint(kv store.KV, lease, index uint64) *types.JobCheckpoint {
	bz := kv.Get(codec.Key(prefixCheckpoint, codec.U64(lease), codec.U64(index)))
	if bz == nil {
		return nil
	}
	c := &types.JobCheckpoint{}
	codec.MustUnmarshal(bz, c)
	return c
}

// Checkpoints lists a lease's checkpoints in index order.
func Checkpoints(kv store.KV, lease uint64) []*types.JobCheckpoint {
	var out []*types.JobCheckpoint
	kv.Iterate(codec.Key(prefixCheckpoint, codec.U64(lease)), func(_, bz []byte) bool {
		c := &types.JobCheckpoint{}
		codec.MustUnmarshal(bz, c)
		out = append(out, c)
		return true
	})
	return out
}

// Bids lists an order's open bids in provider-address order (empty once
// the order is cleared: winning bids became leases, the others were
// refunded).
func Bids(kv store.KV, order uint64) []*types.JobBid {
	if o := GetOrder(kv, order); o != nil {
		return o.OpenBids
	}
	return nil
}

// GetDispute returns dispute id, or nil.
func GetDispute(kv store.KV, id uint64) *types.JobDispute {
	bz := kv.Get(codec.Key(prefixDispute, codec.U64(id)))
	if bz == nil {
		return nil
	}
	d := &types.JobDispute{}
	codec.MustUnmarshal(bz, d)
	return d
}

func putDispute(kv store.KV, d *types.JobDispute) {
	kv.Set(codec.Key(prefixDispute, codec.U64(d.Id)), codec.Marshal(d))
}

// LeaseDisputes lists the ids of the disputes over a lease's checkpoints.
func LeaseDisputes(kv store.KV, lease uint64) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixDisputes, codec.U64(lease)))
}

// OpenDisputes lists the ids of the unresolved disputes, soonest move
// deadline first (each has exactly one entry in the move queue).
func OpenDisputes(kv store.KV) []uint64 {
	return store.IDsUnder(kv, qMove)
}

// OrdersByOwner lists the ids of owner's orders, oldest first.
func OrdersByOwner(kv store.KV, owner []byte) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByOwner, owner))
}

// OrdersByDataset lists the ids of the compute-to-data orders on a
// dataset, oldest first.
func OrdersByDataset(kv store.KV, dataset uint64) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByDataset, codec.U64(dataset)))
}

// LeasesByProvider lists the ids of provider's leases, oldest first.
func LeasesByProvider(kv store.KV, provider []byte) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByProvider, provider))
}

// OrdersByStatus lists the ids of the orders in status s, oldest first.
func OrdersByStatus(kv store.KV, s types.JobStatus) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByStatus, []byte{byte(s)}))
}

// Held sums what the market holds: orders' unallocated escrow and held
// compute-to-data run prices, open
// leases' unspent budgets, locked collateral (open bids, and leases until
// their release) and open disputes' bonds. The jobs account must hold
// exactly this much.
func Held(kv store.KV) (uint64, error) {
	var sum uint64
	var err error
	add := func(x uint64) bool {
		sum, err = types.AddU64(sum, x)
		return err == nil
	}
	kv.Iterate(prefixOrder, func(_, bz []byte) bool {
		o := &types.JobOrder{}
		codec.MustUnmarshal(bz, o)
		for _, b := range o.OpenBids {
			if !add(b.Collateral) {
				return false
			}
		}
		return add(o.Escrow) && add(o.RunHeld)
	})
	kv.Iterate(prefixLease, func(_, bz []byte) bool {
		l := &types.JobLease{}
		codec.MustUnmarshal(bz, l)
		held := l.Budget - l.Paid - l.Refunded
		if !l.CollateralReleased {
			held += l.Collateral
		}
		return add(held)
	})
	kv.Iterate(prefixDispute, func(_, bz []byte) bool {
		d := &types.JobDispute{}
		codec.MustUnmarshal(bz, d)
		if d.Phase == types.DisputePhase_DISPUTE_PHASE_RESOLVED {
			return true
		}
		return add(d.Bond)
	})
	return sum, err
}
