package client

import (
	"fmt"

	"github.com/agoranet/agora/chain/types"
)

// isMsg is any of the message structs a tx can carry.
type isMsg interface{}

// setMsg wraps a message struct in the tx body's oneof.
func setMsg(body *types.TxBody, msg isMsg) error {
	switch m := msg.(type) {
	case *types.MsgSend:
		body.Msg = &types.TxBody_Send{Send: m}
	case *types.MsgBondValidator:
		body.Msg = &types.TxBody_BondValidator{BondValidator: m}
	case *types.MsgUnbondValidator:
		body.Msg = &types.TxBody_UnbondValidator{UnbondValidator: m}
	case *types.MsgUnjailValidator:
		body.Msg = &types.TxBody_UnjailValidator{UnjailValidator: m}
	case *types.MsgBondProvider:
		body.Msg = &types.TxBody_BondProvider{BondProvider: m}
	case *types.MsgUnbondProvider:
		body.Msg = &types.TxBody_UnbondProvider{UnbondProvider: m}
	case *types.MsgRegisterProvider:
		body.Msg = &types.TxBody_RegisterProvider{RegisterProvider: m}
	case *types.MsgUpdateProvider:
		body.Msg = &types.TxBody_UpdateProvider{UpdateProvider: m}
	case *types.MsgDeregisterProvider:
		body.Msg = &types.TxBody_DeregisterProvider{DeregisterProvider: m}
	case *types.MsgOpenChannel:
		body.Msg = &types.TxBody_OpenChannel{OpenChannel: m}
	case *types.MsgTopUpChannel:
		body.Msg = &types.TxBody_TopUpChannel{TopUpChannel: m}
	case *types.MsgRedeemVoucher:
		body.Msg = &types.TxBody_RedeemVoucher{RedeemVoucher: m}
	case *types.MsgCloseChannel:
		body.Msg = &types.TxBody_CloseChannel{CloseChannel: m}
	case *types.MsgCommitEpoch:
		body.Msg = &types.TxBody_CommitEpoch{CommitEpoch: m}
	default:
		return fmt.Errorf("unsupported message type %T", msg)
	}
	return types.ValidateMsg(body)
}
