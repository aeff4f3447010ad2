package types

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
)

// coreMsgs is the message table of the chain's own modules, in the order of
// MsgNames. Each row is the whole stateless declaration of a message; its
// execution is declared by its module in chain/app (modules.go).
var coreMsgs = []MsgSpec{
	// bank
	DeclareMsg("send", func(m *MsgSend) *TxBody_Send { return &TxBody_Send{Send: m} },
		func(w *TxBody_Send) *MsgSend { return w.Send }, validateSend,
		func(m *MsgSend) Description {
			return Description{Fields: [][2]string{{"to", Address(m.GetTo()).String()}, {"amount", u64(m.GetAmount())}}, Touches: []Address{m.GetTo()}}
		}).WithGas(100),
	// stake
	DeclareMsg("bond_validator", func(m *MsgBondValidator) *TxBody_BondValidator { return &TxBody_BondValidator{BondValidator: m} },
		func(w *TxBody_BondValidator) *MsgBondValidator { return w.BondValidator }, validateBondValidator,
		func(m *MsgBondValidator) Description {
			return fields("amount", u64(m.GetAmount()), "cons_pub_key", hex.EncodeToString(m.GetConsPubKey()))
		}).WithGas(500),
	DeclareMsg("unbond_validator", func(m *MsgUnbondValidator) *TxBody_UnbondValidator {
		return &TxBody_UnbondValidator{UnbondValidator: m}
	},
		func(w *TxBody_UnbondValidator) *MsgUnbondValidator { return w.UnbondValidator },
		func(m *MsgUnbondValidator) error {
			if m.GetAmount() == 0 {
				return errors.New("unbond_validator: amount must be positive")
			}
			return nil
		},
		func(m *MsgUnbondValidator) Description { return fields("amount", u64(m.GetAmount())) }).WithGas(500),
	DeclareMsg("unjail_validator", func(m *MsgUnjailValidator) *TxBody_UnjailValidator {
		return &TxBody_UnjailValidator{UnjailValidator: m}
	},
		func(w *TxBody_UnjailValidator) *MsgUnjailValidator { return w.UnjailValidator }, noChecks[*MsgUnjailValidator], nil).WithGas(500),
	DeclareMsg("bond_provider", func(m *MsgBondProvider) *TxBody_BondProvider { return &TxBody_BondProvider{BondProvider: m} },
		func(w *TxBody_BondProvider) *MsgBondProvider { return w.BondProvider },
		func(m *MsgBondProvider) error {
			if m.GetAmount() == 0 {
				return errors.New("bond_provider: amount must be positive")
			}
			return nil
		},
		func(m *MsgBondProvider) Description { return fields("amount", u64(m.GetAmount())) }).WithGas(500),
	DeclareMsg("unbond_provider", func(m *MsgUnbondProvider) *TxBody_UnbondProvider { return &TxBody_UnbondProvider{UnbondProvider: m} },
		func(w *TxBody_UnbondProvider) *MsgUnbondProvider { return w.UnbondProvider },
		func(m *MsgUnbondProvider) error {
			if m.GetAmount() == 0 {
				return errors.New("unbond_provider: amount must be positive")
			}
			return nil
		},
		func(m *MsgUnbondProvider) Description { return fields("amount", u64(m.GetAmount())) }).WithGas(500),
	// registry
	DeclareMsg("register_provider", func(m *MsgRegisterProvider) *TxBody_RegisterProvider {
		return &TxBody_RegisterProvider{RegisterProvider: m}
	},
		func(w *TxBody_RegisterProvider) *MsgRegisterProvider { return w.RegisterProvider },
		func(m *MsgRegisterProvider) error {
			if m == nil {
				return errors.New("register_provider: empty message")
			}
			if err := ValidateProviderInfo(m.Info); err != nil {
				return fmt.Errorf("register_provider: %w", err)
			}
			return nil
		},
		func(m *MsgRegisterProvider) Description { return infoFields(m.GetInfo()) }).WithGas(1000),
	DeclareMsg("update_provider", func(m *MsgUpdateProvider) *TxBody_UpdateProvider { return &TxBody_UpdateProvider{UpdateProvider: m} },
		func(w *TxBody_UpdateProvider) *MsgUpdateProvider { return w.UpdateProvider },
		func(m *MsgUpdateProvider) error {
			if m == nil {
				return errors.New("update_provider: empty message")
			}
			if err := ValidateProviderInfo(m.Info); err != nil {
				return fmt.Errorf("update_provider: %w", err)
			}
			return nil
		},
		func(m *MsgUpdateProvider) Description { return infoFields(m.GetInfo()) }).WithGas(1000),
	DeclareMsg("deregister_provider", func(m *MsgDeregisterProvider) *TxBody_DeregisterProvider {
		return &TxBody_DeregisterProvider{DeregisterProvider: m}
	}, func(w *TxBody_DeregisterProvider) *MsgDeregisterProvider { return w.DeregisterProvider }, noChecks[*MsgDeregisterProvider], nil).WithGas(500),
	// channels
	DeclareMsg("open_channel", func(m *MsgOpenChannel) *TxBody_OpenChannel { return &TxBody_OpenChannel{OpenChannel: m} },
		func(w *TxBody_OpenChannel) *MsgOpenChannel { return w.OpenChannel }, validateOpenChannel,
		func(m *MsgOpenChannel) Description {
			d := fields("provider", Address(m.GetProvider()).String(), "deposit", u64(m.GetDeposit()),
				"expiry_height", strconv.FormatInt(m.GetExpiryHeight(), 10))
			d.Touches = []Address{m.GetProvider()}
			return d
		}).WithGas(300),
	DeclareMsg("top_up_channel", func(m *MsgTopUpChannel) *TxBody_TopUpChannel { return &TxBody_TopUpChannel{TopUpChannel: m} },
		func(w *TxBody_TopUpChannel) *MsgTopUpChannel { return w.TopUpChannel }, validateTopUpChannel,
		func(m *MsgTopUpChannel) Description {
			return fields("channel_id", u64(m.GetChannelId()), "amount", u64(m.GetAmount()))
		}).WithGas(200),
	DeclareMsg("redeem_voucher", func(m *MsgRedeemVoucher) *TxBody_RedeemVoucher { return &TxBody_RedeemVoucher{RedeemVoucher: m} },
		func(w *TxBody_RedeemVoucher) *MsgRedeemVoucher { return w.RedeemVoucher },
		func(m *MsgRedeemVoucher) error {
			if m.GetVoucher() == nil {
				return errors.New("redeem_voucher: missing voucher")
			}
			if m.Voucher.CumulativeAmount == 0 {
				return errors.New("redeem_voucher: cumulative amount must be positive")
			}
			return nil
		},
		func(m *MsgRedeemVoucher) Description {
			v := m.GetVoucher()
			if v == nil {
				return Description{}
			}
			return fields("channel_id", u64(v.ChannelId), "cumulative", u64(v.CumulativeAmount))
		}).WithGas(300),
	DeclareMsg("close_channel", func(m *MsgCloseChannel) *TxBody_CloseChannel { return &TxBody_CloseChannel{CloseChannel: m} },
		func(w *TxBody_CloseChannel) *MsgCloseChannel { return w.CloseChannel },
		func(m *MsgCloseChannel) error {
			if m == nil {
				return errors.New("close_channel: empty message")
			}
			return nil
		},
		func(m *MsgCloseChannel) Description { return fields("channel_id", u64(m.GetChannelId())) }).WithGas(200),
	// epochs
	DeclareMsg("commit_epoch", func(m *MsgCommitEpoch) *TxBody_CommitEpoch { return &TxBody_CommitEpoch{CommitEpoch: m} },
		func(w *TxBody_CommitEpoch) *MsgCommitEpoch { return w.CommitEpoch }, validateCommitEpoch,
		func(m *MsgCommitEpoch) Description {
			return fields("epoch", u64(m.GetEpoch()), "root", hex.EncodeToString(m.GetRoot()), "receipt_count", u64(m.GetRecordCount()),
				"total_billed", u64(m.GetTotalBilled()), "total_tokens", u64(m.GetTotalTokens()))
		}).WithGas(300),
	// audit
	DeclareMsg("report_fault", func(m *MsgReportFault) *TxBody_ReportFault { return &TxBody_ReportFault{ReportFault: m} },
		func(w *TxBody_ReportFault) *MsgReportFault { return w.ReportFault }, validateReportFault,
		func(m *MsgReportFault) Description {
			d := fields("epoch", u64(m.GetEpoch()), "provider", Address(m.GetProvider()).String(), "index", u64(m.GetIndex()),
				"fault", FaultName(m.GetFault()))
			d.Touches = []Address{m.GetProvider()}
			return d
		}).WithGas(500),
	DeclareMsg("report_omission", func(m *MsgReportOmission) *TxBody_ReportOmission { return &TxBody_ReportOmission{ReportOmission: m} },
		func(w *TxBody_ReportOmission) *MsgReportOmission { return w.ReportOmission },
		func(m *MsgReportOmission) error {
			if m == nil || len(m.Receipt) == 0 || len(m.Receipt) > 4096 || !ReceiptSignatureWellFormed(m.ReceiptSignature) {
				return errors.New("report_omission: needs the serialized receipt (at most 4096 bytes) and its signature")
			}
			return nil
		},
		// The provider it touches is read from the receipt on chain and
		// reported in the tx's result; the explorer adds it from there.
		func(m *MsgReportOmission) Description { return fields("receipt", hex.EncodeToString(m.GetReceipt())) }).WithGas(500),
	DeclareMsg("answer_omission", func(m *MsgAnswerOmission) *TxBody_AnswerOmission { return &TxBody_AnswerOmission{AnswerOmission: m} },
		func(w *TxBody_AnswerOmission) *MsgAnswerOmission { return w.AnswerOmission }, validateAnswerOmission,
		func(m *MsgAnswerOmission) Description {
			return fields("epoch", u64(m.GetEpoch()), "index", u64(m.GetIndex()))
		}).WithGas(300),
	// rewards
	DeclareMsg("submit_scores", func(m *MsgSubmitScores) *TxBody_SubmitScores { return &TxBody_SubmitScores{SubmitScores: m} },
		func(w *TxBody_SubmitScores) *MsgSubmitScores { return w.SubmitScores }, validateSubmitScores,
		func(m *MsgSubmitScores) Description {
			return fields("epoch", u64(m.GetEpoch()), "scores", u64(uint64(len(m.GetScores()))))
		}).WithGas(300),
	// audit
	DeclareMsg("dispute_receipt", func(m *MsgDisputeReceipt) *TxBody_DisputeReceipt { return &TxBody_DisputeReceipt{DisputeReceipt: m} },
		func(w *TxBody_DisputeReceipt) *MsgDisputeReceipt { return w.DisputeReceipt },
		func(m *MsgDisputeReceipt) error {
			if m == nil || len(m.Receipt) == 0 || len(m.Receipt) > 4096 || !ReceiptSignatureWellFormed(m.ReceiptSignature) {
				return errors.New("dispute_receipt: needs the serialized receipt (at most 4096 bytes) and its signature")
			}
			return nil
		}, nil).WithGas(500),
}

// defaultMsgs is the registry of coreMsgs; it is never modified (a
// registry is immutable), so sharing it is safe.
var defaultMsgs = mustRegistry(coreMsgs)

func mustRegistry(specs []MsgSpec) *MsgRegistry {
	r, err := NewMsgRegistry(specs...)
	if err != nil {
		panic(err) // a programming error in the table above
	}
	return r
}

// Msgs is the registry of the chain's own messages.
func Msgs() *MsgRegistry { return defaultMsgs }

// SetMsg puts a message struct (*MsgSend, *MsgOpenChannel, ...) into the tx
// body's oneof and validates the result.
func SetMsg(body *TxBody, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("unsupported message type %T", msg)
	}
	return defaultMsgs.Set(body, m)
}

// MsgName returns a short name for the tx's message, used in events, gas and metrics.
func MsgName(body *TxBody) string { return defaultMsgs.Name(body) }

// ValidateMsg performs the checks on a tx body that need no state.
func ValidateMsg(body *TxBody) error { return defaultMsgs.Validate(body) }

// FaultName names a MsgReportFault fault code.
func FaultName(code uint32) string {
	switch code {
	case FaultFabricated:
		return "fabricated_output"
	case FaultRefused:
		return "refused_opening"
	case FaultOmitted:
		return "omitted_receipt"
	case FaultWrongStep:
		return "wrong_step"
	case FaultAbandoned:
		return "abandoned"
	case FaultBadProof:
		return "bad_proof"
	}
	return "fault_" + strconv.FormatUint(uint64(code), 10)
}

func noChecks[M any](M) error { return nil }

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// fields builds a Description from alternating keys and values.
func fields(kv ...string) Description {
	d := Description{Fields: make([][2]string, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Fields = append(d.Fields, [2]string{kv[i], kv[i+1]})
	}
	return d
}

func infoFields(info *ProviderInfo) Description {
	if info == nil {
		return Description{}
	}
	names := make([]string, len(info.Models))
	for i, m := range info.Models {
		names[i] = m.GetName()
	}
	return fields("endpoint", info.Endpoint, "price_input_per_1k", u64(info.PriceInputPer_1K),
		"price_output_per_1k", u64(info.PriceOutputPer_1K), "models", strings.Join(names, ", "))
}
