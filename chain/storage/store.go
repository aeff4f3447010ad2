// Package storage is the storage-deal market: a client pays a provider to
// keep a blob for a number of epochs, and the chain checks every epoch
// that the provider still holds it. The client escrows epochs ×
// price_per_epoch; a registered provider with the "storage" capability
// accepts the deal by posting the root of its own sealed replica of the
// blob (chain/blobtree: a provider-specific encoding, so one copy cannot
// answer for two providers) and locking the deal's collateral. For every
// chain epoch after acceptance, once the epochs module has drawn that
// epoch's seed, blobtree.Challenges picks k segments of the blob; the
// provider answers with a blobtree.ReplicaProof for each within
// proof_window blocks. A proved epoch pays price_per_epoch (fee_bps to the
// fee pool); a missed one refunds the epoch's price to the client, lowers
// the deal's score and slashes miss_slash_bps of the remaining collateral
// to the client; max_misses consecutive misses drop the provider (the rest
// of its collateral to the client) and reopen the deal for another
// provider, which posts its own replica root. After its epochs the deal is
// done and what is left of the collateral returns to the provider.
//
// Every amount the market holds sits in the storage module account: the
// deals' escrow and their providers' locked collateral (Held;
// app.CheckInvariants compares it with the account's balance after every
// block).
package storage

import (
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Account is the storage module account: no key can sign for it.
var Account = bank.ModuleAddress("storage")

// Capability is the provider capability (registry ProviderInfo) an
// accepting provider must declare.
const Capability = "storage"

// Limits of a deal: one epoch's proof (≈ 3 KiB per challenge on a 1 GiB
// blob) must fit a tx.
const (
	MaxSize       = 1 << 30 // bytes
	MaxChallenges = 16
	// MaxEpochs bounds a deal's length (and the per-epoch records it
	// leaves) to about 200 years of 20-block epochs at one block a second.
	MaxEpochs = 1 << 28
	// FullScore is a deal's score (basis points) before any miss.
	FullScore = 10000
)

var (
	prefixDeal       = []byte("stod/")    // stod/<id>
	prefixEpoch      = []byte("stoe/")    // stoe/<deal>/<epoch>: the outcome of a challenged epoch
	prefixFault      = []byte("stof/")    // stof/<id>
	prefixDealFaults = []byte("stofd/")   // stofd/<deal>/<fault>
	prefixByClient   = []byte("stocl/")   // stocl/<client>/<deal>
	prefixByProvider = []byte("stopv/")   // stopv/<provider>/<deal>: every deal the provider ever accepted
	prefixByStatus   = []byte("stost/")   // stost/<status(1)>/<deal>
	prefixReplica    = []byte("storep/")  // storep/<replica root> -> deal: roots in use
	qDeadline        = []byte("stoq/dl/") // stoq/dl/<height>/<deal>: the open challenge's deadline
	seqDeal          = []byte("seq/storage_deal")
	seqFault         = []byte("seq/storage_fault")
)

func next(kv store.KV, seq []byte) uint64 {
	id := codec.ReadU64(kv.Get(seq)) + 1
	kv.Set(seq, codec.U64(id))
	return id
}

// GetDeal returns deal id, or nil.
func GetDeal(kv store.KV, id uint64) *types.StorageDeal {
	bz := kv.Get(codec.Key(prefixDeal, codec.U64(id)))
	if bz == nil {
		return nil
	}
	d := &types.StorageDeal{}
	codec.MustUnmarshal(bz, d)
	return d
}

// putDeal stores d and moves it in the status index.
func putDeal(kv store.KV, d *types.StorageDeal) {
	k := codec.Key(prefixDeal, codec.U64(d.Id))
	if old := kv.Get(k); old != nil {
		prev := &types.StorageDeal{}
		codec.MustUnmarshal(old, prev)
		if prev.Status != d.Status {
			kv.Delete(codec.Key(prefixByStatus, []byte{byte(prev.Status)}, codec.U64(d.Id)))
		}
	}
	kv.Set(codec.Key(prefixByStatus, []byte{byte(d.Status)}, codec.U64(d.Id)), []byte{1})
	kv.Set(k, codec.Marshal(d))
}

// GetEpoch returns the outcome of a deal's challenged epoch, or nil while
// it is open (or was never challenged).
func GetEpoch(kv store.KV, deal, epoch uint64) *types.StorageEpoch {
	bz := kv.Get(codec.Key(prefixEpoch, codec.U64(deal), codec.U64(epoch)))
	if bz == nil {
		return nil
	}
	e := &types.StorageEpoch{}
	codec.MustUnmarshal(bz, e)
	return e
}

// Epochs lists a deal's settled epochs in epoch order.
func Epochs(kv store.KV, deal uint64) []*types.StorageEpoch {
	var out []*types.StorageEpoch
	kv.Iterate(codec.Key(prefixEpoch, codec.U64(deal)), func(_, bz []byte) bool {
		e := &types.StorageEpoch{}
		codec.MustUnmarshal(bz, e)
		out = append(out, e)
		return true
	})
	return out
}

// GetFault returns fault id, or nil.
func GetFault(kv store.KV, id uint64) *types.StorageFault {
	bz := kv.Get(codec.Key(prefixFault, codec.U64(id)))
	if bz == nil {
		return nil
	}
	f := &types.StorageFault{}
	codec.MustUnmarshal(bz, f)
	return f
}

// DealFaults lists a deal's faults, oldest first.
func DealFaults(kv store.KV, deal uint64) []*types.StorageFault {
	var out []*types.StorageFault
	for _, id := range store.IDsUnder(kv, codec.Key(prefixDealFaults, codec.U64(deal))) {
		out = append(out, GetFault(kv, id))
	}
	return out
}

// RecentFaults lists up to limit faults, newest first.
func RecentFaults(kv store.KV, limit int) []*types.StorageFault {
	var out []*types.StorageFault
	for id := codec.ReadU64(kv.Get(seqFault)); id > 0 && len(out) < limit; id-- {
		out = append(out, GetFault(kv, id))
	}
	return out
}

// DealCount is the number of deals ever created (the last id).
func DealCount(kv store.KV) uint64 { return codec.ReadU64(kv.Get(seqDeal)) }

// DealsByClient lists the ids of client's deals, oldest first.
func DealsByClient(kv store.KV, client []byte) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByClient, client))
}

// DealsByProvider lists the ids of the deals provider ever accepted,
// oldest first.
func DealsByProvider(kv store.KV, provider []byte) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByProvider, provider))
}

// DealsByStatus lists the ids of the deals in status s, oldest first.
func DealsByStatus(kv store.KV, s types.DealStatus) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByStatus, []byte{byte(s)}))
}

// Held sums what the market holds: every deal's remaining escrow and its
// provider's locked collateral. The storage account must hold exactly
// this much.
func Held(kv store.KV) (uint64, error) {
	var sum uint64
	var err error
	kv.Iterate(prefixDeal, func(_, bz []byte) bool {
		d := &types.StorageDeal{}
		codec.MustUnmarshal(bz, d)
		if sum, err = types.AddU64(sum, d.Escrow); err != nil {
			return false
		}
		sum, err = types.AddU64(sum, d.Locked)
		return err == nil
	})
	return sum, err
}
