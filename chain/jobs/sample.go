package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Sampled is one checkpoint validators must audit for an epoch: re-execute
// step Step (from the state after step Step−1, which the provider serves
// with page proofs against the previous checkpoint's chain) and, on a
// mismatch, challenge the checkpoint.
type Sampled struct {
	Provider types.Address
	LeaseID  uint64
	Index    uint64
	From     uint64 // steps at the previous checkpoint (0: the initial state)
	To       uint64 // steps at this checkpoint
	Step     uint64 // the step to re-execute, in (From, To]
}

// SampleCheckpoints returns the checkpoints committed in epoch n that
// validators must audit, once the epoch's seed exists: per provider, the
// jobs service's Sample over its checkpoints of the epoch (ordered by lease
// and index) at the audit rate of its reputation when it committed its
// first checkpoint of the epoch, and in each a step drawn from the seed.
// Everyone computes the same list from state.
func SampleCheckpoints(kv store.KV, p types.Params, n uint64) ([]Sampled, error) {
	e := epochs.Get(kv, n)
	if e == nil || len(e.Seed) == 0 {
		return nil, types.Errorf(types.CodeNotFound, "epoch %d has no sampling seed yet", n)
	}
	type ref struct{ lease, index uint64 }
	type group struct {
		provider []byte
		rep      uint64
		refs     []ref
	}
	var groups []*group
	prefix := codec.Key(prefixByEpoch, codec.U64(n))
	kv.Iterate(prefix, func(k, v []byte) bool {
		rest := k[len(prefix):]
		prov := rest[:len(rest)-16]
		r := ref{codec.ReadU64(rest[len(rest)-16 : len(rest)-8]), codec.ReadU64(rest[len(rest)-8:])}
		if len(groups) == 0 || !bytes.Equal(groups[len(groups)-1].provider, prov) {
			groups = append(groups, &group{provider: bytes.Clone(prov), rep: codec.ReadU64(v)})
		}
		g := groups[len(groups)-1]
		g.refs = append(g.refs, r)
		return true
	})
	svc := services.JobsService()
	var out []Sampled
	for _, g := range groups {
		for _, i := range svc.Sample(p, e.Seed, g.provider, uint64(len(g.refs)), g.rep) {
			r := g.refs[i]
			cp := GetCheckpoint(kv, r.lease, r.index)
			var from uint64
			if r.index > 1 {
				from = GetCheckpoint(kv, r.lease, r.index-1).Steps
			}
			out = append(out, Sampled{Provider: g.provider, LeaseID: r.lease, Index: r.index, From: from, To: cp.Steps,
				Step: from + 1 + drawStep(e.Seed, r.lease, r.index, cp.Steps-from)})
		}
	}
	return out, nil
}

// drawStep is sha256("agora/job-sample/v1" || seed || lease || index) mod
// span (span > 0), the sampled step's offset in its checkpoint's interval.
func drawStep(seed []byte, lease, index, span uint64) uint64 {
	h := sha256.New()
	h.Write([]byte("agora/job-sample/v1"))
	h.Write(seed)
	h.Write(codec.U64(lease))
	h.Write(codec.U64(index))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8]) % span
}
