package jobs

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
