package models

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
)

// MsgRegister is the registry's message name (type_url of its module_msg).
const MsgRegister = "register_model"

// Limits of the message's shape (stateless).
const (
	MaxName   = 128
	MaxOutput = 256
	// MaxResults bounds the carried result list: its outputs' names and
	// IDs, far below the list's own cap of jobs.MaxOutputs entries.
	MaxResults = 64 << 10
)

// Msgs declares the registry's message; it travels in TxBody's generic
// module_msg. Its gas is types.ModelsDefaultGas (a chain/app test keeps
// the two equal); its bytes are paid by gas_per_byte besides.
func Msgs() []types.MsgSpec {
	return []types.MsgSpec{
		types.DeclareModuleMsg(MsgRegister, func() *types.MsgRegisterModel { return &types.MsgRegisterModel{} }, ValidateRegister,
			func(m *types.MsgRegisterModel) types.Description {
				d := types.Description{Fields: [][2]string{{"lease_id", strconv.FormatUint(m.LeaseId, 10)}, {"output", m.Output}, {"name", m.Name}}}
				if sum, err := ParseDigest(m.Digest); err == nil {
					d.Fields = append(d.Fields, [2]string{"model", fmt.Sprintf("%x", sum)})
				}
				return d
			}).WithGas(types.ModelsDefaultGas[MsgRegister]),
	}
}

// ValidateRegister checks a registration's shape.
func ValidateRegister(m *types.MsgRegisterModel) error {
	switch {
	case m == nil || m.LeaseId == 0:
		return errors.New("register_model: lease_id required")
	case m.Output == "" || len(m.Output) > MaxOutput:
		return fmt.Errorf("register_model: output name of %d bytes (1..%d)", len(m.Output), MaxOutput)
	case len(m.Name) > MaxName:
		return fmt.Errorf("register_model: name of %d bytes (at most %d)", len(m.Name), MaxName)
	case len(m.Results) == 0 || len(m.Results) > MaxResults:
		return fmt.Errorf("register_model: result list of %d bytes (1..%d)", len(m.Results), MaxResults)
	}
	if _, err := jobs.DecodeResultList(m.Results); err != nil {
		return fmt.Errorf("register_model: %w", err)
	}
	if _, err := ParseDigest(m.Digest); err != nil {
		return fmt.Errorf("register_model: %w", err)
	}
	return nil
}
