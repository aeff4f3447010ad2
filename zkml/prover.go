package zkml

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"

	"github.com/agoranet/agora/chain/zk"
)

// CircuitFile is the circuit in a zk model's directory (`agora zk
// compile`), beside ProvingKeyFile and VerifyingKeyFile (transcript.go).
const CircuitFile = circuitFile

// Prover is what proving a model's inferences takes: the private model,
// its circuit and the keys of that circuit's setup.
type Prover struct {
	Model      *Model
	Batch      int // inferences per proof, the circuit's
	CS         constraint.ConstraintSystem
	PK         groth16.ProvingKey
	VK         groth16.VerifyingKey
	KeyHash    [32]byte // the verifying key's identity on chain
	Commitment []byte   // the weights' commitment, 32 bytes big-endian
}

// LoadProver reads a model (modelPath) and the circuit and keys of dir,
// and checks they fit: the circuit's public values are a whole number of
// batches of the model's shape, and the verifying key is that circuit's.
func LoadProver(dir, modelPath string) (*Prover, error) {
	m, err := LoadModel(modelPath)
	if err != nil {
		return nil, err
	}
	cs := groth16.NewCS(Curve)
	if err := readFrom(filepath.Join(dir, CircuitFile), cs); err != nil {
		return nil, err
	}
	per := m.InLen() + m.OutLen() + 1
	pub := cs.GetNbPublicVariables() - 2 // the constant one and the commitment
	if pub <= 0 || pub%per != 0 {
		return nil, fmt.Errorf("%s has %d public values: not batches of model %s (%d inputs, %d logits)", filepath.Join(dir, CircuitFile), pub, modelPath, m.InLen(), m.OutLen())
	}
	batch := pub / per
	pk := groth16.NewProvingKey(Curve)
	if err := readFrom(filepath.Join(dir, ProvingKeyFile), pk); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, VerifyingKeyFile))
	if err != nil {
		return nil, err
	}
	vk, err := ReadVerifyingKey(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, VerifyingKeyFile), err)
	}
	if err := CheckKey(vk, batch, m.InLen(), m.OutLen()); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, VerifyingKeyFile), err)
	}
	kh, err := zk.KeyHashOf(vk)
	if err != nil {
		return nil, err
	}
	com, err := m.Commitment()
	if err != nil {
		return nil, err
	}
	return &Prover{Model: m, Batch: batch, CS: cs, PK: pk, VK: vk, KeyHash: kh, Commitment: com.FillBytes(make([]byte, 32))}, nil
}

func readFrom(path string, into io.ReaderFrom) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := into.ReadFrom(bufio.NewReader(f)); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
