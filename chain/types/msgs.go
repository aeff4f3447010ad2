package types

import "fmt"

// SetMsg puts a message struct (*MsgSend, *MsgOpenChannel, ...) into the tx
// body's oneof and validates the result.
func SetMsg(body *TxBody, msg any) error {
	switch m := msg.(type) {
	case *MsgSend:
		body.Msg = &TxBody_Send{Send: m}
	case *MsgBondValidator:
		body.Msg = &TxBody_BondValidator{BondValidator: m}
	case *MsgUnbondValidator:
		body.Msg = &TxBody_UnbondValidator{UnbondValidator: m}
	case *MsgUnjailValidator:
		body.Msg = &TxBody_UnjailValidator{UnjailValidator: m}
	case *MsgBondProvider:
		body.Msg = &TxBody_BondProvider{BondProvider: m}
	case *MsgUnbondProvider:
		body.Msg = &TxBody_UnbondProvider{UnbondProvider: m}
	case *MsgRegisterProvider:
		body.Msg = &TxBody_RegisterProvider{RegisterProvider: m}
	case *MsgUpdateProvider:
		body.Msg = &TxBody_UpdateProvider{UpdateProvider: m}
	case *MsgDeregisterProvider:
		body.Msg = &TxBody_DeregisterProvider{DeregisterProvider: m}
	case *MsgOpenChannel:
		body.Msg = &TxBody_OpenChannel{OpenChannel: m}
	case *MsgTopUpChannel:
		body.Msg = &TxBody_TopUpChannel{TopUpChannel: m}
	case *MsgRedeemVoucher:
		body.Msg = &TxBody_RedeemVoucher{RedeemVoucher: m}
	case *MsgCloseChannel:
		body.Msg = &TxBody_CloseChannel{CloseChannel: m}
	case *MsgCommitEpoch:
		body.Msg = &TxBody_CommitEpoch{CommitEpoch: m}
	case *MsgReportFault:
		body.Msg = &TxBody_ReportFault{ReportFault: m}
	case *MsgReportOmission:
		body.Msg = &TxBody_ReportOmission{ReportOmission: m}
	case *MsgAnswerOmission:
		body.Msg = &TxBody_AnswerOmission{AnswerOmission: m}
	case *MsgSubmitScores:
		body.Msg = &TxBody_SubmitScores{SubmitScores: m}
	case *MsgDisputeReceipt:
		body.Msg = &TxBody_DisputeReceipt{DisputeReceipt: m}
	default:
		return fmt.Errorf("unsupported message type %T", msg)
	}
	return ValidateMsg(body)
}
