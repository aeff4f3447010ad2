package zkml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/agoranet/agora/chain/zk"
)

// Curve is the proof system's curve: BN254, which Ethereum-style verifiers
// and gnark's fastest Groth16 prover use.
const Curve = zk.Curve

// Compile builds the R1CS of batch inferences of the model's architecture.
func Compile(m *Model, batch int) (constraint.ConstraintSystem, error) {
	c, err := NewCircuit(m, batch)
	if err != nil {
		return nil, err
	}
	cs, err := frontend.Compile(Curve.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return nil, fmt.Errorf("compile circuit: %w", err)
	}
	return cs, nil
}

// SetupSingleParty runs gnark's single-party Groth16 setup: whoever runs it
// knows the toxic waste and can forge proofs for this circuit. It is for
// local use and tests only; a network key comes from the multi-party
// ceremony.
func SetupSingleParty(cs constraint.ConstraintSystem) (groth16.ProvingKey, groth16.VerifyingKey, error) {
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		return nil, nil, fmt.Errorf("groth16 setup: %w", err)
	}
	return pk, vk, nil
}

// Statement is the public part of a proof: what it claims.
type Statement struct {
	Commitment *big.Int  `json:"commitment"`
	Inputs     [][]int8  `json:"inputs"`
	Logits     [][]int64 `json:"logits"`
	Classes    []int     `json:"classes"`
}

// Proof is a proof with its statement.
type Proof struct {
	Statement Statement
	Proof     groth16.Proof
}

// ProofBytes is the proof's compressed encoding (its size on the wire).
func (p *Proof) ProofBytes() ([]byte, error) {
	var b bytes.Buffer
	if _, err := p.Proof.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("encode proof: %w", err)
	}
	return b.Bytes(), nil
}

// Prove runs the reference model on the inputs and proves the batch.
func Prove(cs constraint.ConstraintSystem, pk groth16.ProvingKey, m *Model, inputs [][]int8) (*Proof, error) {
	c, traces, err := Assign(m, inputs)
	if err != nil {
		return nil, err
	}
	w, err := frontend.NewWitness(c, Curve.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	if cs.GetNbPublicVariables() != publicCount(m, len(inputs)) {
		return nil, fmt.Errorf("the circuit has %d public values, a batch of %d needs %d: compiled for another batch size or model", cs.GetNbPublicVariables(), len(inputs), publicCount(m, len(inputs)))
	}
	proof, err := groth16.Prove(cs, pk, w)
	if err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	st := Statement{Commitment: c.Commitment.(*big.Int), Inputs: inputs, Classes: make([]int, len(traces))}
	for i, tr := range traces {
		st.Logits = append(st.Logits, tr.Logits)
		st.Classes[i] = tr.Class
	}
	return &Proof{Statement: st, Proof: proof}, nil
}

// publicCount is the number of public variables of a batch, counting
// R1CS's constant one.
func publicCount(m *Model, batch int) int {
	return 1 + 1 + batch*(m.InLen()+m.OutLen()+1)
}

// PublicWitness encodes a statement as the circuit's public witness.
func (st *Statement) PublicWitness(inLen, outLen int) (witness.Witness, error) {
	if st.Commitment == nil {
		return nil, errors.New("statement has no commitment")
	}
	n := len(st.Inputs)
	if n == 0 || len(st.Logits) != n || len(st.Classes) != n {
		return nil, fmt.Errorf("statement has %d inputs, %d logit vectors and %d classes: want the same non-zero count", n, len(st.Logits), len(st.Classes))
	}
	c := &Circuit{Commitment: st.Commitment}
	for b := range n {
		if len(st.Inputs[b]) != inLen || len(st.Logits[b]) != outLen {
			return nil, fmt.Errorf("statement item %d has %d inputs and %d logits, want %d and %d", b, len(st.Inputs[b]), len(st.Logits[b]), inLen, outLen)
		}
		in := make([]frontend.Variable, inLen)
		for i, v := range st.Inputs[b] {
			in[i] = int64(v)
		}
		lg := make([]frontend.Variable, outLen)
		for i, v := range st.Logits[b] {
			lg[i] = v
		}
		c.Inputs = append(c.Inputs, in)
		c.Logits = append(c.Logits, lg)
		c.Classes = append(c.Classes, st.Classes[b])
	}
	w, err := frontend.NewWitness(c, Curve.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return nil, fmt.Errorf("public witness: %w", err)
	}
	return w, nil
}

// Verify checks a proof of a statement under a verifying key. inLen and
// outLen are the model's input and output lengths. It is the chain's own
// check (chain/zk), so a proof that verifies here verifies on chain.
func Verify(vk groth16.VerifyingKey, proof groth16.Proof, st *Statement, inLen, outLen int) error {
	return zk.VerifyStatement(vk, proof, st.Commitment, st.Inputs, st.Logits, st.Classes, inLen, outLen)
}

// CheckKey checks that a verifying key is for a circuit of batch
// inferences of inLen inputs and outLen logits (chain/zk.CheckKey).
func CheckKey(vk groth16.VerifyingKey, batch, inLen, outLen int) error {
	return zk.CheckKey(vk, batch, inLen, outLen)
}

// ReadProof decodes a proof, refusing trailing or missing bytes
// (chain/zk.ReadProof).
func ReadProof(b []byte) (groth16.Proof, error) { return zk.ReadProof(b) }

// ReadVerifyingKey decodes a verifying key (chain/zk.ReadVerifyingKey).
func ReadVerifyingKey(r io.Reader) (groth16.VerifyingKey, error) { return zk.ReadVerifyingKey(r) }

// statementJSON is Statement on the wire: the commitment, a BN254 field
// element, as 0x-prefixed hex (a JSON number would not survive clients
// that read numbers as doubles).
type statementJSON struct {
	Commitment string    `json:"commitment"`
	Inputs     [][]int8  `json:"inputs"`
	Logits     [][]int64 `json:"logits"`
	Classes    []int     `json:"classes"`
}

// MarshalJSON writes the commitment as hex.
func (s Statement) MarshalJSON() ([]byte, error) {
	c := ""
	if s.Commitment != nil {
		c = "0x" + s.Commitment.Text(16)
	}
	return json.Marshal(statementJSON{Commitment: c, Inputs: s.Inputs, Logits: s.Logits, Classes: s.Classes})
}

// UnmarshalJSON reads a statement whose commitment is 0x-prefixed hex.
func (s *Statement) UnmarshalJSON(b []byte) error {
	var w statementJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("statement: %w", err)
	}
	h, ok := strings.CutPrefix(w.Commitment, "0x")
	c, okNum := new(big.Int).SetString(h, 16)
	if !ok || !okNum || c.Sign() < 0 {
		return fmt.Errorf("statement: commitment %q: want 0x-prefixed hex", w.Commitment)
	}
	*s = Statement{Commitment: c, Inputs: w.Inputs, Logits: w.Logits, Classes: w.Classes}
	return nil
}
