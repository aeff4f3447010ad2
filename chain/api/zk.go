package api

import (
	"encoding/hex"

	"github.com/agoranet/agora/chain/types"
)

// The zkML registry's query paths (chain/zk), under /zk/.
func ZKModelPath(id uint64) string { return "/zk/model/" + u(id) } // ZKModelView
func ZKModelsPath() string         { return "/zk/models" }         // []ZKModelView, oldest first

// ZKProofPath is a verified statement's record (ZKProofView; 404 if the
// chain never verified it).
func ZKProofPath(model uint64, statement []byte) string {
	return "/zk/proof/" + u(model) + "/" + hex.EncodeToString(statement)
}

// ZKModelView is a registered zk model (the verifying key in full: anyone
// verifies a proof offline with it).
type ZKModelView struct {
	ID           uint64         `json:"id"`
	Owner        types.Address  `json:"owner"`
	Name         string         `json:"name"`
	Commitment   types.HexBytes `json:"commitment"`
	VerifyingKey types.HexBytes `json:"verifying_key"`
	VKHash       types.HexBytes `json:"vk_hash"`
	Batch        uint32         `json:"batch"`
	InLen        uint32         `json:"in_len"`
	OutLen       uint32         `json:"out_len"`
	Price        uint64         `json:"price"`
	Height       int64          `json:"height"`
	Proofs       uint64         `json:"proofs"`
}

func ZKModelViewOf(m *types.ZKModel) ZKModelView {
	return ZKModelView{ID: m.Id, Owner: m.Owner, Name: m.Name, Commitment: m.Commitment, VerifyingKey: m.VerifyingKey, VKHash: m.VkHash,
		Batch: m.Batch, InLen: m.InLen, OutLen: m.OutLen, Price: m.Price, Height: m.Height, Proofs: m.Proofs}
}

// ZKProofView is a statement the chain verified.
type ZKProofView struct {
	ModelID       uint64         `json:"model_id"`
	StatementHash types.HexBytes `json:"statement_hash"`
	Submitter     types.Address  `json:"submitter"`
	Height        int64          `json:"height"`
}

func ZKProofViewOf(r *types.ZKProofRecord) ZKProofView {
	return ZKProofView{ModelID: r.ModelId, StatementHash: r.StatementHash, Submitter: r.Submitter, Height: r.Height}
}
