package api

import (
	"encoding/hex"

	"github.com/agoranet/agora/chain/types"
)

// The trained-model registry's query paths (chain/models), under /models/.
// A model's records are keyed by (sha256, lease): the same bytes may be
// registered from several leases, each record with its own provenance.

// TrainedModelRecordsPath lists every record of the model with sha256
// hash, by lease, the oldest first ([]TrainedModelView; not found when
// there is none).
func TrainedModelRecordsPath(hash []byte) string { return "/models/model/" + hex.EncodeToString(hash) }

// TrainedModelRecordPath is the record of the model with sha256 hash
// registered from lease (TrainedModelView).
func TrainedModelRecordPath(hash []byte, lease uint64) string {
	return TrainedModelRecordsPath(hash) + "/" + u(lease)
}

// TrainedModelsPath lists every record ([]TrainedModelView, by hash and
// then lease).
func TrainedModelsPath() string { return "/models/all" }

// TrainedModelsByLeasePath lists the models registered from a lease
// ([]TrainedModelView).
func TrainedModelsByLeasePath(lease uint64) string { return "/models/lease/" + u(lease) }

// TrainedModelView is a registered model with its provenance. LeaseStatus
// is the lease's status now: a lease slashed after the registration (a
// dispute opened later and lost) shows here.
type TrainedModelView struct {
	Hash        types.HexBytes   `json:"hash"`
	BlobID      types.HexBytes   `json:"blob_id"`
	Size        uint64           `json:"size"`
	Name        string           `json:"name,omitempty"`
	Owner       types.Address    `json:"owner"`
	OrderID     uint64           `json:"order_id"`
	LeaseID     uint64           `json:"lease_id"`
	LeaseStatus string           `json:"lease_status"`
	Trainer     types.Address    `json:"trainer"`
	ModuleHash  types.HexBytes   `json:"module_hash"`
	Args        []string         `json:"args"`
	InputHashes []types.HexBytes `json:"input_hashes"`
	InputNames  []string         `json:"input_names,omitempty"`
	DatasetID   uint64           `json:"dataset_id,omitempty"`
	DatasetRoot types.HexBytes   `json:"dataset_root,omitempty"`
	Checkpoints uint64           `json:"checkpoints"`
	Steps       uint64           `json:"steps"`
	StateHash   types.HexBytes   `json:"state_hash"`
	ResultHash  types.HexBytes   `json:"result_hash"`
	Output      string           `json:"output"`
	Height      int64            `json:"height"`
}

// TrainedModelViewOf is m's view; leaseStatus is its lease's status now.
func TrainedModelViewOf(m *types.TrainedModel, leaseStatus types.JobStatus) TrainedModelView {
	ins := make([]types.HexBytes, len(m.InputHashes))
	for i, h := range m.InputHashes {
		ins[i] = h
	}
	return TrainedModelView{
		Hash: m.Hash, BlobID: m.BlobId, Size: m.Size, Name: m.Name, Owner: m.Owner, OrderID: m.OrderId,
		LeaseID: m.LeaseId, LeaseStatus: JobStatusName(leaseStatus), Trainer: m.Trainer, ModuleHash: m.ModuleHash,
		Args: append([]string{}, m.Args...), InputHashes: ins, InputNames: m.InputNames, DatasetID: m.DatasetId,
		DatasetRoot: m.DatasetRoot, Checkpoints: m.Checkpoints, Steps: m.Steps, StateHash: m.StateHash,
		ResultHash: m.ResultHash, Output: m.Output, Height: m.Height,
	}
}
