// Package epochs closes an epoch every EpochLength blocks, accepts each
// provider's commitment, per service (chain/services), to the records it
// served in the epoch (Merkle root, count, total billed) until a deadline, and then fixes the epoch's sampling
// seed from data revealed only after that deadline, so no provider can know
// which receipts will be sampled when it commits.
//
// Epoch n covers heights [n*E+1, (n+1)*E]. It closes at the end of block
// (n+1)*E; commitments are accepted at heights (end, end+CommitWindow]; the
// seed is drawn at the end of block end+CommitWindow+1+BeaconWindow from the
// validators' VRF beacon (beacon.go), or, on a chain without one, it is
// sha256(domain || n || hash of block end+CommitWindow+1); openings are due
// by seed height + OpeningWindow.
package epochs

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixEpoch      = []byte("epoch/")
	prefixCommitment = []byte("commit/")  // commit/<epoch>/<provider>/<service key>
	prefixSeedQueue  = []byte("seedq/")   // seedq/<height> -> epoch
	prefixSettleQ    = []byte("settleq/") // settleq/<height> -> epoch
	keyLatest        = []byte("epochs/latest")
)

// SeedDomain separates block-hash (v1) epoch seeds from every other hash.
const SeedDomain = "agora/epoch-seed/v1"

// Number returns the epoch that contains height (height >= 1).
func Number(p types.Params, height int64) uint64 {
	if height < 1 {
		return 0
	}
	return uint64((height - 1) / p.EpochLength)
}

// Bounds returns the first and last height of epoch n.
func Bounds(p types.Params, n uint64) (start, end int64) {
	start = int64(n)*p.EpochLength + 1
	return start, start + p.EpochLength - 1
}

// Get returns the record of a closed epoch, or nil while it is still open.
func Get(kv store.KV, n uint64) *types.Epoch {
	bz := kv.Get(codec.Key(prefixEpoch, codec.U64(n)))
	if bz == nil {
		return nil
	}
	e := &types.Epoch{}
	codec.MustUnmarshal(bz, e)
	return e
}

func set(kv store.KV, e *types.Epoch) {
	kv.Set(codec.Key(prefixEpoch, codec.U64(e.Number)), codec.Marshal(e))
}

// Seed derives an epoch's sampling seed from a block hash.
func Seed(n uint64, blockHash []byte) []byte {
	h := sha256.New()
	h.Write([]byte(SeedDomain))
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	h.Write(blockHash)
	return h.Sum(nil)
}

// EndBlock closes the epoch ending at height and sets the seed of the epoch
// whose seed block is height, which it returns (nil when no seed was drawn).
// blockHash is the hash of block `height`.
func EndBlock(kv store.KV, p types.Params, height int64, blockHash []byte) *types.Epoch {
	if height%p.EpochLength == 0 {
		n := uint64(height/p.EpochLength) - 1
		start, end := Bounds(p, n)
		e := &types.Epoch{
			Number: n, StartHeight: start, EndHeight: end, Closed: true,
			CommitDeadline: end + p.CommitWindow,
		}
		e.SeedHeight = e.CommitDeadline + 1 + p.BeaconWindow
		e.OpeningDeadline = e.SeedHeight + p.OpeningWindow
		e.SettleHeight = e.OpeningDeadline + p.OpeningWindow
		set(kv, e)
		kv.Set(keyLatest, codec.U64(n))
		kv.Set(codec.Key(prefixSeedQueue, codec.I64(e.SeedHeight)), codec.U64(n))
		kv.Set(codec.Key(prefixSettleQ, codec.I64(e.SettleHeight)), codec.U64(n))
	}
	qk := codec.Key(prefixSeedQueue, codec.I64(height))
	if bz := kv.Get(qk); bz != nil {
		n := codec.ReadU64(bz)
		e := Get(kv, n)
		drawSeed(kv, p, e, blockHash)
		set(kv, e)
		kv.Delete(qk)
		return e
	}
	return nil
}

// DueForSettlement removes and returns the epoch whose settlement height is
// height (at most one: settlement heights are distinct).
func DueForSettlement(kv store.KV, height int64) (uint64, bool) {
	qk := codec.Key(prefixSettleQ, codec.I64(height))
	bz := kv.Get(qk)
	if bz == nil {
		return 0, false
	}
	kv.Delete(qk)
	return codec.ReadU64(bz), true
}

// Set stores an epoch record (settlement fills in its totals).
func Set(kv store.KV, e *types.Epoch) { set(kv, e) }

// commitmentKey orders commitments by epoch, then provider, then service,
// so an epoch's commitments list in provider-address order (settlement pays
// in that order) and a provider's services sit together.
func commitmentKey(n uint64, provider []byte, service string) []byte {
	return codec.Key(prefixCommitment, codec.U64(n), provider, services.Key(service))
}

// SetCommitment stores a commitment (settlement marks it and its reward).
func SetCommitment(kv store.KV, c *types.Commitment) {
	kv.Set(commitmentKey(c.Epoch, c.Provider, c.Service), codec.Marshal(c))
}

// Commit records a provider's commitment to its records of one service
// (an empty service is inference) for a closed epoch.
func Commit(kv store.KV, svcs services.Registry, height int64, provider []byte, m *types.MsgCommitEpoch) error {
	svc, err := svcs.Get(m.Service)
	if err != nil {
		return err
	}
	if svc.OnChain {
		return types.Errorf(types.CodeInvalid, "service %s keeps its records on chain: it has no epoch commitments", svc.Name)
	}
	p := registry.Get(kv, provider)
	if p == nil || !p.Registered {
		return types.Errorf(types.CodeUnauthorized, "%s is not a registered provider", types.Address(provider))
	}
	e := Get(kv, m.Epoch)
	if e == nil {
		return types.Errorf(types.CodeInvalid, "epoch %d has not ended yet", m.Epoch)
	}
	if height > e.CommitDeadline {
		return types.Errorf(types.CodeInvalid, "commitment deadline for epoch %d was height %d", m.Epoch, e.CommitDeadline)
	}
	key := commitmentKey(m.Epoch, provider, svc.Name)
	if kv.Has(key) {
		return types.Errorf(types.CodeInvalid, "provider %s already committed for epoch %d (%s)", types.Address(provider), m.Epoch, svc.Name)
	}
	kv.Set(key, codec.Marshal(&types.Commitment{
		Epoch: m.Epoch, Provider: provider, Service: svc.Name, Root: m.Root,
		RecordCount: m.RecordCount, TotalBilled: m.TotalBilled, TotalTokens: m.TotalTokens, Height: height,
		ReputationBps: p.ReputationBps,
	}))
	e.Commitments++
	set(kv, e)
	return nil
}

// GetCommitment returns a provider's commitment to its records of service
// (empty: inference) for epoch n, or nil.
func GetCommitment(kv store.KV, n uint64, service string, provider []byte) *types.Commitment {
	bz := kv.Get(commitmentKey(n, provider, service))
	if bz == nil {
		return nil
	}
	c := &types.Commitment{}
	codec.MustUnmarshal(bz, c)
	return c
}

// Commitments lists epoch n's commitments of every service in
// provider-address order, then service order.
func Commitments(kv store.KV, n uint64) []*types.Commitment {
	var out []*types.Commitment
	kv.Iterate(codec.Key(prefixCommitment, codec.U64(n)), func(_, bz []byte) bool {
		c := &types.Commitment{}
		codec.MustUnmarshal(bz, c)
		out = append(out, c)
		return true
	})
	return out
}

// Latest returns the most recently closed epoch, or nil before the first closes.
func Latest(kv store.KV) *types.Epoch {
	bz := kv.Get(keyLatest)
	if bz == nil {
		return nil
	}
	return Get(kv, codec.ReadU64(bz))
}
