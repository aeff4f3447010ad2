package jobs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
)

// Limits of the messages' shapes (stateless).
const (
	MaxInputs       = 64
	MaxArgs         = 64
	MaxArgBytes     = 4096 // all arguments together
	MaxInputName    = 128
	MaxMemoryPages  = 65536 // 4 GiB, WebAssembly's 32-bit limit
	MaxBisectHashes = 15    // k-1 for the largest k
	X25519KeyLen    = 32    // a compute-to-data buyer's key
)

// Message names (type_url of the module_msg carrying each).
const (
	MsgSubmit    = "submit_job"
	MsgBid       = "bid_job"
	MsgCommit    = "commit_checkpoint"
	MsgCancel    = "cancel_job"
	MsgChallenge = "challenge_checkpoint"
	MsgBisectN   = "bisect_dispute"
	MsgPick      = "pick_interval"
	MsgVote      = "vote_step"
)

// Msgs declares the market's messages; they travel in TxBody's generic
// module_msg. Their gas is types.JobsDefaultGas (a chain/app test keeps
// the two equal).
func Msgs() []types.MsgSpec {
	g := types.JobsDefaultGas
	return []types.MsgSpec{
		types.DeclareModuleMsg(MsgSubmit, func() *types.MsgSubmitJob { return &types.MsgSubmitJob{} }, validateSubmit,
			func(m *types.MsgSubmitJob) types.Description {
				d := fields("module_hash", hex.EncodeToString(m.ModuleHash), "gas_limit", u64(m.GasLimit), "max_price", u64(m.MaxPrice),
					"replication", u64(uint64(m.Replication)), "deadline", i64(m.Deadline), "escrow", u64(m.Escrow))
				if m.DatasetId != 0 {
					d.Fields = append(d.Fields, [2]string{"dataset_id", u64(m.DatasetId)})
				}
				return d
			}).WithGas(g[MsgSubmit]),
		types.DeclareModuleMsg(MsgBid, func() *types.MsgBidJob { return &types.MsgBidJob{} }, validateBid,
			func(m *types.MsgBidJob) types.Description {
				return fields("order_id", u64(m.OrderId), "price", u64(m.Price), "collateral", u64(m.Collateral))
			}).WithGas(g[MsgBid]),
		types.DeclareModuleMsg(MsgCommit, func() *types.MsgCommitCheckpoint { return &types.MsgCommitCheckpoint{} }, validateCommit,
			func(m *types.MsgCommitCheckpoint) types.Description {
				return fields("lease_id", u64(m.LeaseId), "index", u64(m.Index), "steps", u64(m.Steps), "gas_used", u64(m.GasUsed),
					"state_hash", hex.EncodeToString(m.StateHash), "done", strconv.FormatBool(m.Done))
			}).WithGas(g[MsgCommit]),
		types.DeclareModuleMsg(MsgCancel, func() *types.MsgCancelJob { return &types.MsgCancelJob{} },
			func(m *types.MsgCancelJob) error {
				if m == nil || m.OrderId == 0 {
					return errors.New("cancel_job: order_id required")
				}
				return nil
			},
			func(m *types.MsgCancelJob) types.Description { return fields("order_id", u64(m.OrderId)) }).WithGas(g[MsgCancel]),
		types.DeclareModuleMsg(MsgChallenge, func() *types.MsgChallengeCheckpoint { return &types.MsgChallengeCheckpoint{} },
			func(m *types.MsgChallengeCheckpoint) error {
				if m == nil || m.LeaseId == 0 || m.Index == 0 {
					return errors.New("challenge_checkpoint: lease_id and index (>= 1) required")
				}
				return nil
			},
			func(m *types.MsgChallengeCheckpoint) types.Description {
				return fields("lease_id", u64(m.LeaseId), "index", u64(m.Index))
			}).WithGas(g[MsgChallenge]),
		types.DeclareModuleMsg(MsgBisectN, func() *types.MsgBisect { return &types.MsgBisect{} },
			func(m *types.MsgBisect) error {
				if m == nil || m.DisputeId == 0 {
					return errors.New("bisect_dispute: dispute_id required")
				}
				if len(m.Hashes) == 0 || len(m.Hashes) > MaxBisectHashes {
					return fmt.Errorf("bisect_dispute: between 1 and %d hashes", MaxBisectHashes)
				}
				for _, h := range m.Hashes {
					if len(h) != types.HashLen {
						return fmt.Errorf("bisect_dispute: hashes must be %d bytes", types.HashLen)
					}
				}
				return nil
			},
			func(m *types.MsgBisect) types.Description {
				return fields("dispute_id", u64(m.DisputeId), "hashes", u64(uint64(len(m.Hashes))))
			}).WithGas(g[MsgBisectN]),
		types.DeclareModuleMsg(MsgPick, func() *types.MsgPickInterval { return &types.MsgPickInterval{} },
			func(m *types.MsgPickInterval) error {
				if m == nil || m.DisputeId == 0 {
					return errors.New("pick_interval: dispute_id required")
				}
				if m.Part > MaxBisectHashes {
					return fmt.Errorf("pick_interval: part %d out of range (at most %d)", m.Part, MaxBisectHashes)
				}
				return nil
			},
			func(m *types.MsgPickInterval) types.Description {
				return fields("dispute_id", u64(m.DisputeId), "part", u64(uint64(m.Part)))
			}).WithGas(g[MsgPick]),
		types.DeclareModuleMsg(MsgVote, func() *types.MsgVoteStep { return &types.MsgVoteStep{} },
			func(m *types.MsgVoteStep) error {
				if m == nil || m.DisputeId == 0 {
					return errors.New("vote_step: dispute_id required")
				}
				if len(m.PostStateHash) != types.HashLen {
					return fmt.Errorf("vote_step: post_state_hash must be %d bytes", types.HashLen)
				}
				return nil
			},
			func(m *types.MsgVoteStep) types.Description {
				return fields("dispute_id", u64(m.DisputeId), "post_state_hash", hex.EncodeToString(m.PostStateHash))
			}).WithGas(g[MsgVote]),
	}
}

func validateSubmit(m *types.MsgSubmitJob) error {
	switch {
	case m == nil:
		return errors.New("submit_job: empty message")
	case len(m.ModuleHash) != types.HashLen:
		return fmt.Errorf("submit_job: module_hash must be %d bytes", types.HashLen)
	case len(m.InputHashes) > MaxInputs:
		return fmt.Errorf("submit_job: at most %d inputs", MaxInputs)
	case m.GasLimit == 0:
		return errors.New("submit_job: gas_limit must be positive")
	case m.MemoryPages == 0 || m.MemoryPages > MaxMemoryPages:
		return fmt.Errorf("submit_job: memory_pages must be between 1 and %d", MaxMemoryPages)
	case m.MaxPrice == 0 || m.MaxPrice > MaxPrice:
		return fmt.Errorf("submit_job: max_price must be between 1 and %d uagr per million gas", uint64(MaxPrice))
	case m.Replication < 1 || m.Replication > MaxReplication:
		return fmt.Errorf("submit_job: replication must be between 1 and %d", MaxReplication)
	case m.BidWindow < 1:
		return errors.New("submit_job: bid_window must be at least 1 block")
	case m.CheckpointInterval == 0:
		return errors.New("submit_job: checkpoint_interval must be at least 1 step")
	case m.Deadline <= m.BidWindow:
		return errors.New("submit_job: deadline must be a height after the bid window")
	case m.LivenessBlocks < 0:
		return errors.New("submit_job: liveness_blocks must not be negative (0: the chain's default)")
	}
	for _, h := range m.InputHashes {
		if len(h) != types.HashLen {
			return fmt.Errorf("submit_job: input hashes must be %d bytes", types.HashLen)
		}
	}
	switch {
	case m.DatasetId == 0 && (len(m.BuyerKey) != 0 || m.MaxRunPrice != 0):
		return errors.New("submit_job: buyer_key and max_run_price only with a dataset_id")
	case m.DatasetId != 0 && len(m.BuyerKey) != X25519KeyLen:
		return fmt.Errorf("submit_job: a compute-to-data order needs a %d-byte X25519 buyer_key", X25519KeyLen)
	case m.DatasetId != 0 && m.Replication != 1:
		return errors.New("submit_job: a compute-to-data order runs on the dataset's host only: replication must be 1")
	}
	if len(m.Args) > MaxArgs {
		return fmt.Errorf("submit_job: at most %d args", MaxArgs)
	}
	total := 0
	for _, a := range m.Args {
		total += len(a)
		if strings.IndexByte(a, 0) >= 0 {
			return errors.New("submit_job: an argument holds a NUL byte")
		}
	}
	if total > MaxArgBytes {
		return fmt.Errorf("submit_job: args are %d bytes (at most %d)", total, MaxArgBytes)
	}
	if len(m.InputNames) != 0 && len(m.InputNames) != len(m.InputHashes) {
		return fmt.Errorf("submit_job: %d input names for %d inputs", len(m.InputNames), len(m.InputHashes))
	}
	seen := map[string]bool{}
	for _, n := range m.InputNames {
		if err := validInputName(n); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("submit_job: input name %q given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// validInputName accepts a plain file name: what a job opens as /in/NAME.
func validInputName(n string) error {
	switch {
	case n == "" || len(n) > MaxInputName:
		return fmt.Errorf("submit_job: input names must be 1 to %d bytes", MaxInputName)
	case n == "." || n == ".." || strings.ContainsAny(n, "/\x00"):
		return fmt.Errorf("submit_job: input name %q is not a plain file name", n)
	}
	return nil
}

func validateBid(m *types.MsgBidJob) error {
	switch {
	case m == nil || m.OrderId == 0:
		return errors.New("bid_job: order_id required")
	case m.Price > MaxPrice:
		return fmt.Errorf("bid_job: price above %d", uint64(MaxPrice))
	}
	return nil
}

func validateCommit(m *types.MsgCommitCheckpoint) error {
	switch {
	case m == nil || m.LeaseId == 0:
		return errors.New("commit_checkpoint: lease_id required")
	case m.Index == 0:
		return errors.New("commit_checkpoint: index starts at 1 (0 is the initial state)")
	case m.Steps == 0:
		return errors.New("commit_checkpoint: steps must be positive")
	case len(m.StateHash) != types.HashLen:
		return fmt.Errorf("commit_checkpoint: state_hash must be %d bytes", types.HashLen)
	case m.Done && len(m.ResultHash) != types.HashLen:
		return fmt.Errorf("commit_checkpoint: a final checkpoint needs a %d-byte result_hash", types.HashLen)
	case !m.Done && len(m.ResultHash) != 0:
		return errors.New("commit_checkpoint: result_hash only with done")
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }

func fields(kv ...string) types.Description {
	d := types.Description{Fields: make([][2]string, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Fields = append(d.Fields, [2]string{kv[i], kv[i+1]})
	}
	return d
}
