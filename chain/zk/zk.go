// Package zk is the zkML registry: models whose inferences are proven in
// zero knowledge (the circuits are package zkml's: Groth16 on BN254 over
// int8 models; the verification the chain runs is here, groth16.go),
// registered by their weights commitment and the verifying key of their
// circuit, and proofs verified in the transaction that carries them — a
// proof settles one answer for anyone, forever, without the weights.
//
// The chain checks at registration that the key parses and fits the
// declared shape (batch, inputs, logits); at verification it rebuilds the
// statement (the model's commitment, the inputs, logits and classes) and
// runs the pairing check against the stored key. A failed check is the
// transaction's error: nothing is recorded.
package zk

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

var (
	prefixModel = []byte("zkmodel/") // zkmodel/<id>
	prefixProof = []byte("zkproof/") // zkproof/<model>/<statement hash>
	seqModel    = []byte("seq/zk_model")
)

// Get returns model id, or nil.
func Get(kv store.KV, id uint64) *types.ZKModel {
	bz := kv.Get(codec.Key(prefixModel, codec.U64(id)))
	if bz == nil {
		return nil
	}
	m := &types.ZKModel{}
	codec.MustUnmarshal(bz, m)
	return m
}

func put(kv store.KV, m *types.ZKModel) {
	kv.Set(codec.Key(prefixModel, codec.U64(m.Id)), codec.Marshal(m))
}

// All lists every model, oldest first.
func All(kv store.KV) []*types.ZKModel {
	var out []*types.ZKModel
	kv.Iterate(prefixModel, func(_, bz []byte) bool {
		m := &types.ZKModel{}
		codec.MustUnmarshal(bz, m)
		out = append(out, m)
		return true
	})
	return out
}

// GetProof returns the record of a verified statement, or nil.
func GetProof(kv store.KV, model uint64, statement []byte) *types.ZKProofRecord {
	bz := kv.Get(codec.Key(prefixProof, codec.U64(model), statement))
	if bz == nil {
		return nil
	}
	r := &types.ZKProofRecord{}
	codec.MustUnmarshal(bz, r)
	return r
}

// KeyHash is a verifying key's identity: sha256 of its canonical encoding.
func KeyHash(vkBytes []byte) ([32]byte, error) {
	vk, err := ReadVerifyingKey(bytes.NewReader(vkBytes))
	if err != nil {
		return [32]byte{}, err
	}
	var b bytes.Buffer
	if _, err := vk.WriteTo(&b); err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b.Bytes()), nil
}

// Register records a model (its key already checked against its shape by
// ValidateRegister).
func Register(kv store.KV, height int64, signer []byte, m *types.MsgRegisterZKModel) (*types.ZKModel, error) {
	h, err := KeyHash(m.VerifyingKey)
	if err != nil {
		return nil, types.Errorf(types.CodeMalformed, "verifying key: %v", err)
	}
	id := codec.ReadU64(kv.Get(seqModel)) + 1
	kv.Set(seqModel, codec.U64(id))
	z := &types.ZKModel{Id: id, Owner: signer, Name: m.Name, Commitment: m.Commitment, VerifyingKey: m.VerifyingKey, VkHash: h[:],
		Batch: m.Batch, InLen: m.InLen, OutLen: m.OutLen, Price: m.Price, Height: height}
	put(kv, z)
	return z, nil
}

// statement is the statement a verification message claims for a model:
// its inputs, logits and classes by inference.
func statement(z *types.ZKModel, m *types.MsgVerifyZKProof) (inputs [][]int8, logits [][]int64, classes []int, err error) {
	b, in, out := int(z.Batch), int(z.InLen), int(z.OutLen)
	if len(m.Inputs) != b*in || len(m.Logits) != b*out || len(m.Classes) != b {
		return nil, nil, nil, fmt.Errorf("model %d proves batches of %d with %d inputs and %d logits each: got %d inputs, %d logits, %d classes",
			z.Id, b, in, out, len(m.Inputs), len(m.Logits), len(m.Classes))
	}
	for i := range b {
		x := make([]int8, in)
		for j := range x {
			x[j] = int8(m.Inputs[i*in+j])
		}
		inputs = append(inputs, x)
		logits = append(logits, append([]int64(nil), m.Logits[i*out:(i+1)*out]...))
		classes = append(classes, int(m.Classes[i]))
	}
	return inputs, logits, classes, nil
}

// StatementHash identifies a statement of a model: sha256 over the model
// id, the inputs, the logits and the classes, in order.
func StatementHash(model uint64, m *types.MsgVerifyZKProof) []byte {
	h := sha256.New()
	h.Write([]byte("agora/zk-statement/v1"))
	h.Write(codec.U64(model))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m.Inputs))))
	h.Write(m.Inputs)
	for _, l := range m.Logits {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(l)))
	}
	for _, c := range m.Classes {
		h.Write(binary.BigEndian.AppendUint32(nil, c))
	}
	return h.Sum(nil)
}

// Verify checks a proof against a registered model and records its
// statement as proven.
func Verify(kv store.KV, height int64, signer []byte, m *types.MsgVerifyZKProof) ([]byte, error) {
	z := Get(kv, m.ModelId)
	if z == nil {
		return nil, types.Errorf(types.CodeNotFound, "zk model %d does not exist", m.ModelId)
	}
	inputs, logits, classes, err := statement(z, m)
	if err != nil {
		return nil, types.Errorf(types.CodeInvalid, "%v", err)
	}
	vk, err := ReadVerifyingKey(bytes.NewReader(z.VerifyingKey))
	if err != nil {
		return nil, types.Errorf(types.CodeInvalid, "zk model %d's verifying key: %v", z.Id, err)
	}
	proof, err := ReadProof(m.Proof)
	if err != nil {
		return nil, types.Errorf(types.CodeMalformed, "proof: %v", err)
	}
	if err := VerifyStatement(vk, proof, new(big.Int).SetBytes(z.Commitment), inputs, logits, classes, int(z.InLen), int(z.OutLen)); err != nil {
		return nil, types.Errorf(types.CodeInvalid, "zk model %d: %v", z.Id, err)
	}
	sh := StatementHash(z.Id, m)
	if prev := GetProof(kv, z.Id, sh); prev != nil {
		return nil, types.Errorf(types.CodeInvalid, "statement %x of zk model %d was already proven at height %d", sh, z.Id, prev.Height)
	}
	kv.Set(codec.Key(prefixProof, codec.U64(z.Id), sh), codec.Marshal(&types.ZKProofRecord{ModelId: z.Id, StatementHash: sh, Submitter: signer, Height: height}))
	z.Proofs++
	put(kv, z)
	return sh, nil
}
