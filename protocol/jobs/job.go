package jobs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// What an order's job observes besides its module and input bytes: every
// replica and every validator re-executing a step must build the same job
// (engine/wasm.Job) from the order alone.
//
//   - Args: none (argv is just "job"); Stdin: empty.
//   - Inputs: the order's input blobs, input i as the file /in/InputName(i).
//   - Seed: Seed(chain id, order id).
//   - Gas: the order's gas_limit; MemoryPages: its memory_pages;
//     CheckpointEvery: its checkpoint_interval.

// Seed is the random stream's key of an order's job:
//
//	sha256("agora/job-seed/v1" || chain id length u16 || chain id || order id u64)
//
// integers big-endian. It depends on nothing a provider picks, so replicas
// agree and a validator derives it from the order.
func Seed(chainID string, order uint64) [32]byte {
	b := make([]byte, 0, 32+len(chainID))
	b = append(b, "agora/job-seed/v1"...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(chainID)))
	b = append(b, chainID...)
	b = binary.BigEndian.AppendUint64(b, order)
	return sha256.Sum256(b)
}

// InputName is the file name, under /in, of an order's input i: its index
// in three digits, so a job listing /in sees the inputs in the order's
// order (an order has at most 64).
func InputName(i int) string { return fmt.Sprintf("%03d", i) }

// FailureOutput names the output a failed job's result list adds: the
// failure's reason (engine/wasm Failure.Error()), besides the stdout and
// stderr written before it.
//
// A job that fails deterministically (traps, runs out of gas, exits
// nonzero, or its module is refused) is committed as finished: its final
// checkpoint is done, at steps = the steps completed + 1 (the failing
// step), gas_used = the gas used when it failed (at most the gas limit),
// state_hash = 32 zero bytes (engine/wasm ReplayStep's post-state after a
// failure), and result_hash = the ID of that result list.
const FailureOutput = "failure"

// FailedState is the state hash a failed job's final checkpoint commits.
var FailedState [32]byte
