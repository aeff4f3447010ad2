// Package data is the data market: datasets that stay with their host
// provider and are sold two ways. A download grant (buy_access) is paid at
// once to the owner (minus fee_bps to the fee pool) and lets its buyer
// fetch the raw bytes from the host. A compute-to-data run is a job
// (chain/jobs) on the dataset, pinned to its host, whose run price the
// jobs module holds and pays to the owner only when the run succeeds.
// The chain keeps the terms (allowed modules, output cap, buyers,
// auditors); the host enforces them off chain (protocol/data, executor).
package data
