package storage

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/types"
)

// Message names (type_url of the module_msg carrying each).
const (
	MsgCreate = "create_deal"
	MsgAccept = "accept_deal"
	MsgProve  = "prove_storage"
	MsgCancel = "cancel_deal"
)

// MaxPathLen bounds an audit path: a 1 GiB blob has 2^20 segments.
const MaxPathLen = 20

// Msgs declares the market's messages; they travel in TxBody's generic
// module_msg. Their gas is types.StorageDefaultGas (a chain/app test keeps
// the two equal).
func Msgs() []types.MsgSpec {
	g := types.StorageDefaultGas
	return []types.MsgSpec{
		types.DeclareModuleMsg(MsgCreate, func() *types.MsgCreateDeal { return &types.MsgCreateDeal{} }, validateCreate,
			func(m *types.MsgCreateDeal) types.Description {
				d := fields("blob_id", hex.EncodeToString(m.BlobId), "size", u64(m.Size), "epochs", u64(m.Epochs),
					"price_per_epoch", u64(m.PricePerEpoch), "collateral", u64(m.Collateral), "challenges", u64(uint64(m.Challenges)))
				if len(m.Provider) == types.AddressLen {
					d.Fields = append(d.Fields, [2]string{"provider", types.Address(m.Provider).String()})
					d.Touches = []types.Address{m.Provider}
				}
				return d
			}).WithGas(g[MsgCreate]),
		types.DeclareModuleMsg(MsgAccept, func() *types.MsgAcceptDeal { return &types.MsgAcceptDeal{} },
			func(m *types.MsgAcceptDeal) error {
				switch {
				case m == nil || m.DealId == 0:
					return errors.New("accept_deal: deal_id required")
				case len(m.ReplicaRoot) != types.HashLen:
					return fmt.Errorf("accept_deal: replica_root must be %d bytes", types.HashLen)
				}
				return nil
			},
			func(m *types.MsgAcceptDeal) types.Description {
				return fields("deal_id", u64(m.DealId), "replica_root", hex.EncodeToString(m.ReplicaRoot))
			}).WithGas(g[MsgAccept]),
		types.DeclareModuleMsg(MsgProve, func() *types.MsgProveStorage { return &types.MsgProveStorage{} }, validateProve,
			func(m *types.MsgProveStorage) types.Description {
				return fields("deal_id", u64(m.DealId), "epoch", u64(m.Epoch), "proofs", u64(uint64(len(m.Proofs))))
			}).WithGas(g[MsgProve]),
		types.DeclareModuleMsg(MsgCancel, func() *types.MsgCancelDeal { return &types.MsgCancelDeal{} },
			func(m *types.MsgCancelDeal) error {
				if m == nil || m.DealId == 0 {
					return errors.New("cancel_deal: deal_id required")
				}
				return nil
			},
			func(m *types.MsgCancelDeal) types.Description { return fields("deal_id", u64(m.DealId)) }).WithGas(g[MsgCancel]),
	}
}

func validateCreate(m *types.MsgCreateDeal) error {
	switch {
	case m == nil:
		return errors.New("create_deal: empty message")
	case len(m.BlobId) != types.HashLen:
		return fmt.Errorf("create_deal: blob_id must be %d bytes", types.HashLen)
	case m.Size == 0 || m.Size > MaxSize:
		return fmt.Errorf("create_deal: size %d out of range (1 byte to %d bytes, 1 GiB)", m.Size, MaxSize)
	case m.Epochs == 0 || m.Epochs > MaxEpochs:
		return fmt.Errorf("create_deal: epochs must be between 1 and %d", MaxEpochs)
	case m.PricePerEpoch == 0:
		return errors.New("create_deal: price_per_epoch must be positive")
	case m.Challenges < 1 || m.Challenges > MaxChallenges:
		return fmt.Errorf("create_deal: challenges (k) must be between 1 and %d, got %d", MaxChallenges, m.Challenges)
	case len(m.Provider) != 0 && len(m.Provider) != types.AddressLen:
		return fmt.Errorf("create_deal: provider must be empty or %d bytes", types.AddressLen)
	}
	return nil
}

func validateProve(m *types.MsgProveStorage) error {
	switch {
	case m == nil || m.DealId == 0:
		return errors.New("prove_storage: deal_id required")
	case len(m.Proofs) == 0 || len(m.Proofs) > MaxChallenges:
		return fmt.Errorf("prove_storage: between 1 and %d proofs", MaxChallenges)
	}
	for i, p := range m.Proofs {
		switch {
		case p == nil:
			return fmt.Errorf("prove_storage: proof %d is empty", i)
		case len(p.Segment) == 0 || len(p.Segment) > blobtree.SegmentSize:
			return fmt.Errorf("prove_storage: proof %d: segment must be 1 to %d bytes", i, blobtree.SegmentSize)
		case len(p.PrevLeaf) != types.HashLen:
			return fmt.Errorf("prove_storage: proof %d: prev_leaf must be %d bytes", i, types.HashLen)
		case len(p.ReplicaPath) > MaxPathLen || len(p.PrevPath) > MaxPathLen || len(p.DataPath) > MaxPathLen:
			return fmt.Errorf("prove_storage: proof %d: audit paths are at most %d hashes", i, MaxPathLen)
		}
		for _, path := range [][][]byte{p.ReplicaPath, p.PrevPath, p.DataPath} {
			for _, h := range path {
				if len(h) != types.HashLen {
					return fmt.Errorf("prove_storage: proof %d: path hashes must be %d bytes", i, types.HashLen)
				}
			}
		}
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func fields(kv ...string) types.Description {
	d := types.Description{Fields: make([][2]string, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Fields = append(d.Fields, [2]string{kv[i], kv[i+1]})
	}
	return d
}

// ProofOf is the wire form of a replica proof.
func ProofOf(p *blobtree.ReplicaProof) *types.StorageProof {
	cp := func(in [][32]byte) [][]byte {
		out := make([][]byte, len(in))
		for i := range in {
			out[i] = append([]byte(nil), in[i][:]...)
		}
		return out
	}
	return &types.StorageProof{Index: p.Index, Segment: append([]byte(nil), p.Segment...), PrevLeaf: append([]byte(nil), p.PrevLeaf[:]...),
		ReplicaPath: cp(p.ReplicaPath), PrevPath: cp(p.PrevPath), DataPath: cp(p.DataPath)}
}
