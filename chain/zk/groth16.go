package zk

// The chain's side of zkml's proofs: decoding keys and proofs, checking a
// key's shape, building a statement's public witness and the pairing
// check. Only gnark's backend (no circuit, no frontend) is linked here; the
// circuit (package zkml) calls these too, and a zkml test checks that the
// witness built here is the one its circuit derives.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/witness"
)

// Curve is the proof system's curve: BN254.
const Curve = ecc.BN254

// ReadProof decodes a proof, refusing trailing or missing bytes.
func ReadProof(b []byte) (groth16.Proof, error) {
	p := groth16.NewProof(Curve)
	n, err := p.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("malformed proof: %w", err)
	}
	if n != int64(len(b)) {
		return nil, fmt.Errorf("malformed proof: %d trailing bytes", int64(len(b))-n)
	}
	return p, nil
}

// ReadVerifyingKey decodes a verifying key.
func ReadVerifyingKey(r io.Reader) (groth16.VerifyingKey, error) {
	vk := groth16.NewVerifyingKey(Curve)
	if _, err := vk.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("malformed verifying key: %w", err)
	}
	return vk, nil
}

// CheckKey checks that a verifying key is for a circuit of batch
// inferences of inLen inputs and outLen logits (its public values: the
// commitment, then every inference's inputs, every one's logits, every
// one's class).
func CheckKey(vk groth16.VerifyingKey, batch, inLen, outLen int) error {
	// The key's public count includes one wire per Pedersen commitment
	// (the range checks' log-derivative argument), which the statement
	// does not carry.
	want := vk.NbPublicWitness()
	if k, ok := vk.(*groth16bn254.VerifyingKey); ok {
		want -= len(k.CommitmentKeys)
	}
	if got := batch*(inLen+outLen+1) + 1; want != got {
		return fmt.Errorf("the verifying key takes %d public values, a batch of %d with %d inputs and %d logits has %d: another circuit or batch size", want, batch, inLen, outLen, got)
	}
	return nil
}

// PublicWitness is a statement's public witness in the circuit's order:
// the commitment, every inference's inputs, every one's logits, every
// one's class.
func PublicWitness(commitment *big.Int, inputs [][]int8, logits [][]int64, classes []int, inLen, outLen int) (witness.Witness, error) {
	if commitment == nil {
		return nil, errors.New("statement has no commitment")
	}
	n := len(inputs)
	if n == 0 || len(logits) != n || len(classes) != n {
		return nil, fmt.Errorf("statement has %d inputs, %d logit vectors and %d classes: want the same non-zero count", n, len(logits), len(classes))
	}
	for b := range n {
		if len(inputs[b]) != inLen || len(logits[b]) != outLen {
			return nil, fmt.Errorf("statement item %d has %d inputs and %d logits, want %d and %d", b, len(inputs[b]), len(logits[b]), inLen, outLen)
		}
	}
	w, err := witness.New(Curve.ScalarField())
	if err != nil {
		return nil, err
	}
	total := 1 + n*(inLen+outLen+1)
	vals := make(chan any, total)
	vals <- commitment
	for _, x := range inputs {
		for _, v := range x {
			vals <- int64(v)
		}
	}
	for _, l := range logits {
		for _, v := range l {
			vals <- v
		}
	}
	for _, c := range classes {
		vals <- int64(c)
	}
	close(vals)
	if err := w.Fill(total, 0, vals); err != nil {
		return nil, fmt.Errorf("public witness: %w", err)
	}
	return w, nil
}

// VerifyStatement checks a proof of a statement under a verifying key.
func VerifyStatement(vk groth16.VerifyingKey, proof groth16.Proof, commitment *big.Int, inputs [][]int8, logits [][]int64, classes []int, inLen, outLen int) error {
	w, err := PublicWitness(commitment, inputs, logits, classes, inLen, outLen)
	if err != nil {
		return err
	}
	if err := CheckKey(vk, len(inputs), inLen, outLen); err != nil {
		return err
	}
	if err := groth16.Verify(proof, vk, w); err != nil {
		return fmt.Errorf("proof does not verify: %w", err)
	}
	return nil
}
