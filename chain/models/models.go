// Package models is the trained-model registry: a model file that a
// compute job produced (e.g. Agora's trainer as a WASM job), registered by
// the order's owner with its provenance, so that a provider serving the
// file can show where it came from and anyone holding the file can check
// it.
//
// What the chain checks, from nothing but its own state and the message:
// the lease succeeded (done, non-zero final state, no open dispute); the
// result list hashes to the lease's committed result hash; the model's
// output and its digest output (output + ".sha256") are in the list; the
// digest's bytes hash to that output's blob ID. The digest is the file's
// sha256 as the job computed it, so it is covered by the same checkpoint
// chain, audits and disputes as the model itself: a trainer that lies
// about it lies in its final step, which a dispute replays. The record
// keeps both the sha256 (what provider offers and receipts carry) and the
// output's blob ID (a Merkle root over the bytes): a holder of the file
// checks both.
//
// Records are keyed by (sha256, lease): the same bytes registered from
// several leases make several records, none refused for the others. A
// registry that kept one record per hash, first come first served, let
// anyone holding a public model file squat it: a trivial job that copies
// the file to its output with its digest registers it first, with the
// copier's module as provenance, and the real trainer's record is then
// refused. Each record names its module, inputs and checkpoint chain, so a
// reader tells the trainer from a copier; the chain only refuses the same
// lease twice.
package models

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// DigestSuffix names a model output's digest output.
const DigestSuffix = ".sha256"

// MaxDigest bounds a digest output (a sha256sum line).
const MaxDigest = 1024

// Keys: fixed-length parts (32-byte hashes, 8-byte big-endian lease ids),
// so a prefix iteration lists a hash's records in lease order.
var (
	prefixModel   = []byte("tmodel/")  // tmodel/<sha256>/<lease> -> TrainedModel
	prefixByLease = []byte("tmlease/") // tmlease/<lease>/<sha256> -> 1
	prefixByOwner = []byte("tmowner/") // tmowner/<owner>/<sha256>/<lease> -> 1
)

// Get returns the record of the model with sha256 hash registered from
// lease, or nil.
func Get(kv store.KV, hash []byte, lease uint64) *types.TrainedModel {
	bz := kv.Get(codec.Key(prefixModel, hash, codec.U64(lease)))
	if bz == nil {
		return nil
	}
	m := &types.TrainedModel{}
	codec.MustUnmarshal(bz, m)
	return m
}

// Records lists every record of the model with sha256 hash, by lease (the
// oldest lease first). A hash is 32 bytes (Register keeps only those), so
// the prefix holds no other hash's records.
func Records(kv store.KV, hash []byte) []*types.TrainedModel {
	if len(hash) != types.HashLen {
		return nil
	}
	return list(kv, codec.Key(prefixModel, hash))
}

// All lists every record, by hash and then lease.
func All(kv store.KV) []*types.TrainedModel {
	return list(kv, prefixModel)
}

func list(kv store.KV, prefix []byte) []*types.TrainedModel {
	var out []*types.TrainedModel
	kv.Iterate(prefix, func(_, bz []byte) bool {
		m := &types.TrainedModel{}
		codec.MustUnmarshal(bz, m)
		out = append(out, m)
		return true
	})
	return out
}

// ParseDigest reads a digest output: sha256sum's line, "<64 lowercase
// hex>" optionally followed by whitespace and a name.
func ParseDigest(b []byte) ([]byte, error) {
	if len(b) < 64 || len(b) > MaxDigest {
		return nil, fmt.Errorf("digest of %d bytes: want a sha256sum line", len(b))
	}
	h := string(b[:64])
	if strings.ToLower(h) != h {
		return nil, fmt.Errorf("digest %q: want lowercase hex", h)
	}
	sum, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("digest %q: %w", h, err)
	}
	if rest := b[64:]; len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '\n' {
		return nil, fmt.Errorf("digest: %q after the hash, want whitespace", rest[:1])
	}
	return sum, nil
}

// Register records the model a succeeded lease produced (see the package
// doc for what is checked).
func Register(kv store.KV, height int64, signer []byte, m *types.MsgRegisterModel) (*types.TrainedModel, error) {
	l := jobs.GetLease(kv, m.LeaseId)
	if l == nil {
		return nil, types.Errorf(types.CodeNotFound, "lease %d does not exist", m.LeaseId)
	}
	o := jobs.GetOrder(kv, l.OrderId)
	if o == nil {
		return nil, types.Errorf(types.CodeNotFound, "order %d of lease %d does not exist", l.OrderId, l.Id)
	}
	if !bytes.Equal(signer, o.Owner) {
		return nil, types.Errorf(types.CodeUnauthorized, "only order %d's owner %s may register its models", o.Id, types.Address(o.Owner))
	}
	if !jobs.Succeeded(l) {
		return nil, types.Errorf(types.CodeInvalid, "lease %d did not succeed (status %s): only a finished, unfailed run's model can be registered", l.Id, jobs.StatusName(l.Status))
	}
	if l.OpenDispute != 0 {
		return nil, types.Errorf(types.CodeInvalid, "lease %d is under dispute %d: register once it is settled", l.Id, l.OpenDispute)
	}
	if id := blobtree.IDOf(m.Results); !bytes.Equal(id[:], l.ResultHash) {
		return nil, types.Errorf(types.CodeInvalid, "the result list's ID %x is not lease %d's committed result hash %x", id, l.Id, l.ResultHash)
	}
	outs, err := jobs.DecodeResultList(m.Results)
	if err != nil {
		return nil, types.Errorf(types.CodeInvalid, "lease %d: %v", l.Id, err)
	}
	model, digest := find(outs, m.Output), find(outs, m.Output+DigestSuffix)
	if model == nil {
		return nil, types.Errorf(types.CodeNotFound, "lease %d has no output %q", l.Id, m.Output)
	}
	if digest == nil {
		return nil, types.Errorf(types.CodeNotFound, "lease %d has no digest output %q: the job must write the model's sha256 beside it", l.Id, m.Output+DigestSuffix)
	}
	if id := blobtree.IDOf(m.Digest); id != digest.ID {
		return nil, types.Errorf(types.CodeInvalid, "the digest's bytes (ID %x) are not lease %d's output %q (%x)", id, l.Id, digest.Name, digest.ID)
	}
	sum, err := ParseDigest(m.Digest)
	if err != nil {
		return nil, types.Errorf(types.CodeInvalid, "lease %d's %s: %v", l.Id, digest.Name, err)
	}
	// Another lease's record of the same bytes does not stand in the way
	// (see the package doc); this lease's own does.
	if prev := Get(kv, sum, l.Id); prev != nil {
		return nil, types.Errorf(types.CodeInvalid, "model %x is already registered from lease %d (at height %d)", sum, prev.LeaseId, prev.Height)
	}
	t := &types.TrainedModel{
		Hash: sum, BlobId: model.ID[:], Size: model.Size, Name: m.Name, Owner: o.Owner,
		OrderId: o.Id, LeaseId: l.Id, Trainer: l.Provider, ModuleHash: o.ModuleHash, Args: o.Args,
		InputHashes: o.InputHashes, InputNames: o.InputNames, DatasetId: o.DatasetId,
		Checkpoints: l.Checkpoints, Steps: l.Steps, StateHash: l.StateHash, ResultHash: l.ResultHash,
		Output: m.Output, Height: height,
	}
	if o.DatasetId != 0 {
		if ds := data.Get(kv, o.DatasetId); ds != nil {
			t.DatasetRoot = ds.Root
		}
	}
	kv.Set(codec.Key(prefixModel, sum, codec.U64(l.Id)), codec.Marshal(t))
	kv.Set(codec.Key(prefixByLease, codec.U64(l.Id), sum), []byte{1})
	kv.Set(codec.Key(prefixByOwner, o.Owner, sum, codec.U64(l.Id)), []byte{1})
	return t, nil
}

// ByLease lists the records registered from a lease, by hash.
func ByLease(kv store.KV, lease uint64) []*types.TrainedModel {
	var hashes [][]byte // read after the iteration, not inside it
	kv.Iterate(codec.Key(prefixByLease, codec.U64(lease)), func(k, _ []byte) bool {
		hashes = append(hashes, append([]byte(nil), k[len(k)-types.HashLen:]...))
		return true
	})
	out := make([]*types.TrainedModel, 0, len(hashes))
	for _, h := range hashes {
		out = append(out, Get(kv, h, lease))
	}
	return out
}

// Ref names a record: the model's sha256 and the lease it was registered
// from.
type Ref struct {
	Hash  []byte
	Lease uint64
}

// ByOwner lists the records owner registered, by hash and then lease.
func ByOwner(kv store.KV, owner []byte) []Ref {
	var out []Ref
	kv.Iterate(codec.Key(prefixByOwner, owner), func(k, _ []byte) bool {
		ref := k[len(k)-types.HashLen-8:]
		out = append(out, Ref{Hash: append([]byte(nil), ref[:types.HashLen]...), Lease: codec.ReadU64(ref[types.HashLen:])})
		return true
	})
	return out
}

func find(outs []jobs.ResultEntry, name string) *jobs.ResultEntry {
	for i := range outs {
		if outs[i].Name == name {
			return &outs[i]
		}
	}
	return nil
}
