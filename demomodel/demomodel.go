// Package demomodel is the model `agora up` serves by default: a 3.5 M
// parameter llama model that the project's own trainer (package train,
// preset demo) trained on the Brown Corpus, so a newcomer's first chat
// answer is English-like text rather than random tokens. It is embedded
// in the binary (Q8_0, about 4 MB) with the log of the run that made it:
// the checkpoint hash chain, the data root and the held-out and bigram
// perplexities. scripts/demo-model.sh rebuilds both files bit for bit;
// the cli package's TestDemoModelRetrain re-trains the first checkpoints
// and checks them against the log.
package demomodel

import (
	"encoding/json"
	"fmt"

	_ "embed"
)

// Name is the model's name on the network: `agora up` writes GGUF as
// Name + ".gguf", and the provider serves a file under its base name.
const Name = "agora-demo"

// GGUF is the model file.
//
//go:embed agora-demo.gguf
var GGUF []byte

// LogJSON is `agora train`'s JSON log of the run that wrote GGUF.
//
//go:embed agora-demo.json
var LogJSON []byte

// Checkpoint is one entry of the run's hash chain: the sha256 of the
// whole training state (weights, AdamW moments, step, data cursor, RNG)
// after Step steps.
type Checkpoint struct {
	Step int    `json:"step"`
	Hash string `json:"hash"`
}

// Log is the part of the run's log that identifies the model and its
// provenance (the full record, loss curve included, is LogJSON).
type Log struct {
	Preset      string       `json:"preset"`
	Params      int          `json:"params"`
	DataRoot    string       `json:"data_root"`
	TrainTokens int          `json:"train_tokens"`
	Checkpoints []Checkpoint `json:"checkpoints"`
	HeldOutPPL  float64      `json:"heldout_ppl"`
	BigramPPL   float64      `json:"bigram_ppl"`
	EvalTokens  int          `json:"eval_tokens"`
	ModelSHA256 string       `json:"model_sha256"`
	FinalState  string       `json:"final_state_hash"`
	Hyper       struct {
		Steps int    `json:"steps"`
		Seed  uint64 `json:"seed"`
	} `json:"hyper"` // the run's schedule length and seed
}

// ReadLog parses LogJSON.
func ReadLog() (*Log, error) {
	var l Log
	if err := json.Unmarshal(LogJSON, &l); err != nil {
		return nil, fmt.Errorf("demomodel: the embedded training log: %w", err)
	}
	return &l, nil
}
