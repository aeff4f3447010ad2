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

	"github.com/consensys/gnark/backend/groth16"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
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

// KeyHash is a verifying key's identity: sha256 of its canonical encoding
// (the bytes gnark's WriteTo gives, as a ceremony's verifying.key holds
// them: `sha256sum verifying.key`).
func KeyHash(vkBytes []byte) ([32]byte, error) {
	vk, err := ReadVerifyingKey(bytes.NewReader(vkBytes))
	if err != nil {
		return [32]byte{}, err
	}
	return KeyHashOf(vk)
}

// KeyHashOf is KeyHash of a decoded key.
func KeyHashOf(vk groth16.VerifyingKey) ([32]byte, error) {
	var b bytes.Buffer
	if _, err := vk.WriteTo(&b); err != nil {
		return [32]byte{}, fmt.Errorf("encode verifying key: %w", err)
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

// Check verifies a proof of a statement (flat inputs, logits and classes,
// as messages carry them) against a registered model: the chain's own
// check, run off chain by whoever pays for an answer before paying.
func Check(z *types.ZKModel, inputs []byte, logits []int64, classes []uint32, proof []byte) error {
	return check(z, inputs, logits, classes, proof)
}

// StatementHashOf is StatementHash of a flat statement.
func StatementHashOf(model uint64, inputs []byte, logits []int64, classes []uint32) []byte {
	return statementHash(model, inputs, logits, classes)
}

// check verifies a proof of a statement (flat inputs, logits and classes,
// as messages carry them) against a registered model; the error says why
// it fails (its code: malformed proof, or invalid statement or proof).
func check(z *types.ZKModel, in []byte, lg []int64, cl []uint32, proofBytes []byte) error {
	b, n, o := int(z.Batch), int(z.InLen), int(z.OutLen)
	if len(in) != b*n || len(lg) != b*o || len(cl) != b {
		return types.Errorf(types.CodeInvalid, "model %d proves batches of %d with %d inputs and %d logits each: got %d inputs, %d logits, %d classes",
			z.Id, b, n, o, len(in), len(lg), len(cl))
	}
	var inputs [][]int8
	var logits [][]int64
	var classes []int
	for i := range b {
		x := make([]int8, n)
		for j := range x {
			x[j] = int8(in[i*n+j])
		}
		inputs = append(inputs, x)
		logits = append(logits, append([]int64(nil), lg[i*o:(i+1)*o]...))
		classes = append(classes, int(cl[i]))
	}
	vk, err := ReadVerifyingKey(bytes.NewReader(z.VerifyingKey))
	if err != nil {
		return types.Errorf(types.CodeInvalid, "zk model %d's verifying key: %v", z.Id, err)
	}
	proof, err := ReadProof(proofBytes)
	if err != nil {
		return types.Errorf(types.CodeMalformed, "proof: %v", err)
	}
	if err := VerifyStatement(vk, proof, new(big.Int).SetBytes(z.Commitment), inputs, logits, classes, n, o); err != nil {
		return types.Errorf(types.CodeInvalid, "zk model %d: %v", z.Id, err)
	}
	return nil
}

// StatementHash identifies a statement of a model: sha256 over the model
// id, the inputs, the logits and the classes, in order.
func StatementHash(model uint64, m *types.MsgVerifyZKProof) []byte {
	return statementHash(model, m.Inputs, m.Logits, m.Classes)
}

func statementHash(model uint64, inputs []byte, logits []int64, classes []uint32) []byte {
	h := sha256.New()
	h.Write([]byte("agora/zk-statement/v1"))
	h.Write(codec.U64(model))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(inputs))))
	h.Write(inputs)
	for _, l := range logits {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(l)))
	}
	for _, c := range classes {
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
	if err := check(z, m.Inputs, m.Logits, m.Classes, m.Proof); err != nil {
		return nil, err
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

// AnswerDomain separates zk answer signatures from every other signature.
const AnswerDomain = "agora/zk-answer/v1\n"

// AnswerBytes is what a provider signs, with its account key, for a zk
// answer: the domain, the chain id, the model, the statement's hash
// (StatementHash) and the proof's sha256.
func AnswerBytes(chainID string, model uint64, statement, proof []byte) []byte {
	ph := sha256.Sum256(proof)
	b := append([]byte(AnswerDomain), chainID...)
	b = append(b, 0)
	b = append(b, codec.U64(model)...)
	b = append(b, statement...)
	return append(b, ph[:]...)
}

var prefixFault = []byte("zkfault/") // zkfault/<provider>/<answer hash>

// GetFault returns the record of a slashed answer, or nil.
func GetFault(kv store.KV, provider, answer []byte) *types.ZKFaultRecord {
	bz := kv.Get(codec.Key(prefixFault, provider, answer))
	if bz == nil {
		return nil
	}
	r := &types.ZKFaultRecord{}
	codec.MustUnmarshal(bz, r)
	return r
}

// ReportFault slashes a provider for a signed answer whose proof does not
// verify (any reason: a malformed proof, a statement of the wrong shape, a
// failed pairing check), through the kernel's path (audit.Penalize: the
// reporter gets its share, the rest is burned, the provider's reputation
// resets). The answer is checked by the chain itself: a verifying proof,
// a signature that is not the provider's, or an answer already slashed is
// refused. It returns the fault's record and the reporter's reward.
func ReportFault(kv store.KV, p types.Params, chainID string, height int64, reporter []byte, m *types.MsgReportZKFault) (*types.ZKFaultRecord, uint64, error) {
	z := Get(kv, m.ModelId)
	if z == nil {
		return nil, 0, types.Errorf(types.CodeNotFound, "zk model %d does not exist", m.ModelId)
	}
	pv := registry.Get(kv, m.Provider)
	if pv == nil {
		return nil, 0, types.Errorf(types.CodeNotFound, "%s is not a provider", types.Address(m.Provider))
	}
	acc := bank.GetAccount(kv, m.Provider)
	if acc == nil || len(acc.PubKey) == 0 {
		return nil, 0, types.Errorf(types.CodeNotFound, "provider %s has no account key on chain", types.Address(m.Provider))
	}
	answer := AnswerBytes(chainID, z.Id, statementHash(z.Id, m.Inputs, m.Logits, m.Classes), m.Proof)
	if !types.VerifyEd25519(acc.PubKey, answer, m.Signature) {
		return nil, 0, types.Errorf(types.CodeUnauthorized, "the signature is not provider %s's over this answer", types.Address(m.Provider))
	}
	ah := sha256.Sum256(answer)
	if prev := GetFault(kv, m.Provider, ah[:]); prev != nil {
		return nil, 0, types.Errorf(types.CodeInvalid, "this answer of provider %s was already slashed at height %d", types.Address(m.Provider), prev.Height)
	}
	if err := check(z, m.Inputs, m.Logits, m.Classes, m.Proof); err == nil {
		return nil, 0, types.Errorf(types.CodeInvalid, "the answer's proof verifies: no fault")
	}
	svc := services.ZKService()
	res, err := audit.Penalize(kv, p, m.Provider, svc.SlashBps(p, svc.FaultNamed("bad_proof")), nil, 0, [][]byte{reporter})
	if err != nil {
		return nil, 0, err
	}
	r := &types.ZKFaultRecord{Provider: m.Provider, ModelId: z.Id, AnswerHash: ah[:], Reporter: reporter, Slashed: res.Slashed, Height: height}
	kv.Set(codec.Key(prefixFault, m.Provider, ah[:]), codec.Marshal(r))
	return r, res.Reward, nil
}
