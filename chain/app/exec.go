package app

import (
	"fmt"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channels"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/rewards"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// execCtx is what a message handler may know about its block.
type execCtx struct {
	chainID string
	height  int64
	params  types.Params
	// fees accumulates the fees charged in a block; the fee pool is credited
	// once at the end of the block rather than written by every tx. Nil in
	// CheckTx, where fees only need to be debited.
	fees *uint64
}

// txResult is the outcome of one tx.
type txResult struct {
	code    types.Code
	log     string
	fee     uint64
	gas     uint64
	msg     string
	attrs   [][2]string
	applied bool // ante handler passed: fee charged and nonce used
}

// runTx applies a decoded, signature-checked tx to kv. The ante step (chain
// id, nonce, fee) writes directly to kv; the message runs in a cache that is
// written only when it succeeds, so a failed message costs its fee and its
// nonce and changes nothing else.
func runTx(kv store.KV, ctx execCtx, d *types.DecodedTx) txResult {
	name := types.MsgName(d.Body)
	res := txResult{msg: name}
	fail := func(err error) txResult {
		res.code = types.CodeOf(err)
		res.log = err.Error()
		return res
	}
	if d.Body.ChainId != ctx.chainID {
		return fail(types.Errorf(types.CodeWrongChain, "tx is for chain %q, this is %q", d.Body.ChainId, ctx.chainID))
	}
	acc := bank.GetAccount(kv, d.Signer)
	if d.Body.Nonce != acc.Nonce {
		return fail(types.Errorf(types.CodeBadNonce, "nonce %d: account %s expects nonce %d", d.Body.Nonce, d.Signer, acc.Nonce))
	}
	minFee := ctx.params.MinFee(name, len(d.Raw))
	res.gas = ctx.params.Gas[name] + ctx.params.GasPerByte*uint64(len(d.Raw))
	if d.Body.Fee < minFee {
		return fail(types.Errorf(types.CodeFeeTooLow, "fee %d uagr below the minimum %d for a %d-byte %s tx", d.Body.Fee, minFee, len(d.Raw), name))
	}
	if acc.Balance < d.Body.Fee {
		return fail(types.Errorf(types.CodeInsufficientFunds, "insufficient funds for fee: %s has %d uagr, fee is %d", d.Signer, acc.Balance, d.Body.Fee))
	}
	acc.Nonce++
	acc.Balance -= d.Body.Fee
	if acc.PubKey == nil {
		acc.PubKey = d.Tx.PubKey
	}
	bank.SetAccount(kv, acc)
	if ctx.fees != nil {
		*ctx.fees += d.Body.Fee // cannot overflow: bounded by the supply
	}
	res.applied = true
	res.fee = d.Body.Fee

	cache := store.NewCache(kv)
	attrs, err := runMsg(cache, ctx, d)
	if err != nil {
		return fail(err)
	}
	cache.Write()
	res.attrs = attrs
	return res
}

func runMsg(kv store.KV, ctx execCtx, d *types.DecodedTx) ([][2]string, error) {
	signer := d.Signer
	p := ctx.params
	switch m := d.Body.Msg.(type) {
	case *types.TxBody_Send:
		if err := bank.Send(kv, signer, m.Send.To, m.Send.Amount); err != nil {
			return nil, err
		}
		return [][2]string{{"to", types.Address(m.Send.To).String()}}, nil
	case *types.TxBody_BondValidator:
		return nil, stake.BondValidator(kv, p, signer, m.BondValidator.ConsPubKey, m.BondValidator.Amount)
	case *types.TxBody_UnbondValidator:
		return nil, stake.UnbondValidator(kv, p, ctx.height, signer, m.UnbondValidator.Amount)
	case *types.TxBody_UnjailValidator:
		return nil, stake.Unjail(kv, p, ctx.height, signer)
	case *types.TxBody_BondProvider:
		return nil, stake.BondProvider(kv, signer, m.BondProvider.Amount)
	case *types.TxBody_UnbondProvider:
		var keep uint64
		if registry.IsActive(kv, signer) {
			keep = p.MinProviderStake
		}
		return nil, stake.UnbondProvider(kv, p, ctx.height, signer, m.UnbondProvider.Amount, keep)
	case *types.TxBody_RegisterProvider:
		return nil, registry.Register(kv, p, ctx.height, signer, m.RegisterProvider.Info)
	case *types.TxBody_UpdateProvider:
		return nil, registry.Update(kv, ctx.height, signer, m.UpdateProvider.Info)
	case *types.TxBody_DeregisterProvider:
		return nil, registry.Deregister(kv, ctx.height, signer)
	case *types.TxBody_OpenChannel:
		id, err := channels.Open(kv, ctx.height, signer, d.Tx.PubKey, m.OpenChannel.Provider, m.OpenChannel.Deposit, m.OpenChannel.ExpiryHeight)
		if err != nil {
			return nil, err
		}
		return [][2]string{{"channel_id", itoa(id)}, {"provider", types.Address(m.OpenChannel.Provider).String()}}, nil
	case *types.TxBody_TopUpChannel:
		return [][2]string{{"channel_id", itoa(m.TopUpChannel.ChannelId)}},
			channels.TopUp(kv, ctx.height, signer, m.TopUpChannel.ChannelId, m.TopUpChannel.Amount, m.TopUpChannel.ExpiryHeight)
	case *types.TxBody_RedeemVoucher:
		paid, err := channels.Redeem(kv, ctx.chainID, signer, m.RedeemVoucher.Voucher)
		if err != nil {
			return nil, err
		}
		return [][2]string{{"channel_id", itoa(m.RedeemVoucher.Voucher.ChannelId)}, {"paid", itoa(paid)}}, nil
	case *types.TxBody_CloseChannel:
		refund, err := channels.Close(kv, ctx.height, signer, m.CloseChannel.ChannelId)
		if err != nil {
			return nil, err
		}
		return [][2]string{{"channel_id", itoa(m.CloseChannel.ChannelId)}, {"refund", itoa(refund)}}, nil
	case *types.TxBody_CommitEpoch:
		return [][2]string{{"epoch", itoa(m.CommitEpoch.Epoch)}}, epochs.Commit(kv, ctx.height, signer, m.CommitEpoch)
	case *types.TxBody_ReportOmission:
		o, err := audit.ReportOmission(kv, p, ctx.chainID, ctx.height, signer, m.ReportOmission)
		if err != nil {
			return nil, err
		}
		return [][2]string{{"provider", types.Address(o.Provider).String()}, {"epoch", itoa(o.Epoch)}, {"index", itoa(o.Index)},
			{"challenged", fmt.Sprint(o.Challenged)}, {"applied", fmt.Sprint(o.Applied)}, {"slashed", itoa(o.Slashed)},
			{"refund", itoa(o.Refund)}, {"reward", itoa(o.Reward)}}, nil
	case *types.TxBody_AnswerOmission:
		return [][2]string{{"epoch", itoa(m.AnswerOmission.Epoch)}, {"index", itoa(m.AnswerOmission.Index)}},
			audit.AnswerOmission(kv, signer, m.AnswerOmission)
	case *types.TxBody_DisputeReceipt:
		d, err := audit.DisputeReceipt(kv, p, ctx.chainID, ctx.height, signer, m.DisputeReceipt)
		if err != nil {
			return nil, err
		}
		return [][2]string{{"provider", types.Address(d.Provider).String()}, {"epoch", itoa(d.Epoch)}, {"index", itoa(d.Index)},
			{"deadline", itoa(uint64(d.Deadline))}}, nil
	case *types.TxBody_SubmitScores:
		return [][2]string{{"epoch", itoa(m.SubmitScores.Epoch)}, {"scores", itoa(uint64(len(m.SubmitScores.Scores)))}},
			rewards.SubmitScores(kv, p, ctx.height, signer, m.SubmitScores)
	case *types.TxBody_ReportFault:
		r, err := audit.Report(kv, p, ctx.chainID, ctx.height, signer, m.ReportFault)
		if err != nil {
			return nil, err
		}
		return [][2]string{{"provider", types.Address(m.ReportFault.Provider).String()}, {"votes", itoa(uint64(r.Votes))},
			{"applied", fmt.Sprint(r.Applied)}, {"slashed", itoa(r.Slashed)}, {"refund", itoa(r.Refund)}, {"reward", itoa(r.Reward)}}, nil
	}
	return nil, types.Errorf(types.CodeMalformed, "unknown message")
}
