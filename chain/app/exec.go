package app

import (
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/services"
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
	// handlers executes each message, by name (the app's msgTable).
	handlers map[string]Handler
	services services.Registry
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
	name := d.Name
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

// runMsg dispatches the tx's message to the handler its module declared.
func runMsg(kv store.KV, ctx execCtx, d *types.DecodedTx) ([][2]string, error) {
	h := ctx.handlers[d.Name]
	if h == nil {
		// Unreachable for a tx decoded by the same table: buildMsgTable
		// gives every declared message a handler.
		return nil, types.Errorf(types.CodeMalformed, "unknown message %q", d.Name)
	}
	return h(kv, Ctx{ChainID: ctx.chainID, Height: ctx.height, Params: ctx.params, Services: ctx.services}, d)
}
