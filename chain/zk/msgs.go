package zk

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/consensys/gnark-crypto/ecc"

	"github.com/agoranet/agora/chain/types"
)

// Message names (type_url of the module_msg carrying each).
const (
	MsgRegister = "register_zk_model"
	MsgVerify   = "verify_zk_proof"
	MsgReport   = "report_zk_fault"
)

// Limits of the messages' shapes (stateless).
const (
	MaxName     = 128
	MaxKey      = 448 << 10
	MaxBatch    = 64
	MaxInLen    = 4096
	MaxOutLen   = 1024
	MaxProof    = 1 << 10
	MaxPrice    = 1_000_000_000_000_000
	commitBytes = 32
)

// Msgs declares the registry's messages; they travel in TxBody's generic
// module_msg. Their gas is types.ZKDefaultGas (a chain/app test keeps the
// two equal); a message's bytes are paid by gas_per_byte besides, so a
// larger batch pays for its larger statement.
func Msgs() []types.MsgSpec {
	g := types.ZKDefaultGas
	return []types.MsgSpec{
		types.DeclareModuleMsg(MsgRegister, func() *types.MsgRegisterZKModel { return &types.MsgRegisterZKModel{} }, ValidateRegister,
			func(m *types.MsgRegisterZKModel) types.Description {
				return types.Description{Fields: [][2]string{{"name", m.Name}, {"batch", u32(m.Batch)}, {"in_len", u32(m.InLen)},
					{"out_len", u32(m.OutLen)}, {"price", strconv.FormatUint(m.Price, 10)}}}
			}).WithGas(g[MsgRegister]),
		types.DeclareModuleMsg(MsgVerify, func() *types.MsgVerifyZKProof { return &types.MsgVerifyZKProof{} }, ValidateVerify,
			func(m *types.MsgVerifyZKProof) types.Description {
				return types.Description{Fields: [][2]string{{"model_id", strconv.FormatUint(m.ModelId, 10)}, {"inferences", strconv.Itoa(len(m.Classes))}}}
			}).WithGas(g[MsgVerify]),
		types.DeclareModuleMsg(MsgReport, func() *types.MsgReportZKFault { return &types.MsgReportZKFault{} }, ValidateReport,
			func(m *types.MsgReportZKFault) types.Description {
				d := types.Description{Fields: [][2]string{{"provider", types.Address(m.Provider).String()}, {"model_id", strconv.FormatUint(m.ModelId, 10)}}}
				d.Touches = append(d.Touches, m.Provider)
				return d
			}).WithGas(g[MsgReport]),
	}
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// ValidateRegister checks a registration's shape, and that its verifying
// key parses and takes the public values of the declared shape.
func ValidateRegister(m *types.MsgRegisterZKModel) error {
	switch {
	case m == nil:
		return errors.New("register_zk_model: empty")
	case m.Name == "" || len(m.Name) > MaxName:
		return fmt.Errorf("register_zk_model: name of %d bytes (1..%d)", len(m.Name), MaxName)
	case len(m.Commitment) != commitBytes:
		return fmt.Errorf("register_zk_model: commitment of %d bytes, want %d", len(m.Commitment), commitBytes)
	case new(big.Int).SetBytes(m.Commitment).Cmp(ecc.BN254.ScalarField()) >= 0:
		return errors.New("register_zk_model: commitment is not a BN254 scalar (not below the field's modulus)")
	case m.Batch < 1 || m.Batch > MaxBatch || m.InLen < 1 || m.InLen > MaxInLen || m.OutLen < 1 || m.OutLen > MaxOutLen:
		return fmt.Errorf("register_zk_model: batch %d, in_len %d, out_len %d (1..%d, 1..%d, 1..%d)", m.Batch, m.InLen, m.OutLen, MaxBatch, MaxInLen, MaxOutLen)
	case m.Price > MaxPrice:
		return fmt.Errorf("register_zk_model: price %d above %d", m.Price, uint64(MaxPrice))
	case len(m.VerifyingKey) == 0 || len(m.VerifyingKey) > MaxKey:
		return fmt.Errorf("register_zk_model: verifying key of %d bytes (1..%d)", len(m.VerifyingKey), MaxKey)
	}
	vk, err := ReadVerifyingKey(bytes.NewReader(m.VerifyingKey))
	if err != nil {
		return fmt.Errorf("register_zk_model: verifying key: %w", err)
	}
	if err := CheckKey(vk, int(m.Batch), int(m.InLen), int(m.OutLen)); err != nil {
		return fmt.Errorf("register_zk_model: %w", err)
	}
	return nil
}

// ValidateReport checks a fault report's shape (its proof is not parsed:
// a malformed proof the provider signed is a fault too).
func ValidateReport(m *types.MsgReportZKFault) error {
	switch {
	case m == nil || m.ModelId == 0:
		return errors.New("report_zk_fault: model_id required")
	case len(m.Provider) != types.AddressLen:
		return fmt.Errorf("report_zk_fault: provider of %d bytes, want %d", len(m.Provider), types.AddressLen)
	case len(m.Signature) != 64:
		return fmt.Errorf("report_zk_fault: signature of %d bytes, want 64", len(m.Signature))
	case len(m.Classes) > MaxBatch || len(m.Inputs) > MaxBatch*MaxInLen || len(m.Logits) > MaxBatch*MaxOutLen || len(m.Proof) > MaxProof:
		return errors.New("report_zk_fault: statement or proof too large")
	}
	return nil
}

// ValidateVerify checks a verification's shape and that its proof parses.
func ValidateVerify(m *types.MsgVerifyZKProof) error {
	switch {
	case m == nil || m.ModelId == 0:
		return errors.New("verify_zk_proof: model_id required")
	case len(m.Classes) == 0 || len(m.Classes) > MaxBatch:
		return fmt.Errorf("verify_zk_proof: %d classes (1..%d)", len(m.Classes), MaxBatch)
	case len(m.Inputs) > MaxBatch*MaxInLen || len(m.Logits) > MaxBatch*MaxOutLen:
		return fmt.Errorf("verify_zk_proof: %d inputs and %d logits: too many", len(m.Inputs), len(m.Logits))
	case len(m.Proof) == 0 || len(m.Proof) > MaxProof:
		return fmt.Errorf("verify_zk_proof: proof of %d bytes (1..%d)", len(m.Proof), MaxProof)
	}
	if _, err := ReadProof(m.Proof); err != nil {
		return fmt.Errorf("verify_zk_proof: %w", err)
	}
	return nil
}
