package audit

import (
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Disputes: a client may have any committed receipt it paid for re-executed,
// as if the epoch's seed had sampled it, by escrowing dispute_bond. Fault
// reports on the disputed receipt are accepted until the dispute's deadline
// (opening_window blocks); a fault they apply refunds the client and returns
// the bond, and no fault by the deadline gives the bond to the provider.
var (
	prefixDispute  = []byte("dispute/")  // dispute/<epoch>/<provider>/<index> -> Dispute
	prefixDisputeQ = []byte("disputeq/") // disputeq/<deadline>/<epoch>/<provider>/<index> -> {}
)

func disputeKey(epoch uint64, provider []byte, index uint64) []byte {
	return codec.Key(prefixDispute, codec.U64(epoch), provider, codec.U64(index))
}

// GetDispute returns the open dispute on a receipt, or nil.
func GetDispute(kv store.KV, epoch uint64, provider []byte, index uint64) *types.Dispute {
	bz := kv.Get(disputeKey(epoch, provider, index))
	if bz == nil {
		return nil
	}
	d := &types.Dispute{}
	codec.MustUnmarshal(bz, d)
	return d
}

// DisputeReceipt handles MsgDisputeReceipt from signer, the receipt's client.
func DisputeReceipt(kv store.KV, p types.Params, chainID string, height int64, signer []byte, m *types.MsgDisputeReceipt) (*types.Dispute, error) {
	var r types.Receipt
	if err := proto.Unmarshal(m.Receipt, &r); err != nil {
		return nil, types.Errorf(types.CodeMalformed, "receipt: %v", err)
	}
	if r.ChainId != chainID {
		return nil, types.Errorf(types.CodeInvalid, "the receipt is for chain %q", r.ChainId)
	}
	if string(r.Client) != string(signer) {
		return nil, types.Errorf(types.CodeUnauthorized, "only the receipt's client %s may dispute it", types.Address(r.Client))
	}
	pub := bank.GetAccount(kv, r.Provider).PubKey
	if !types.VerifyReceiptSignature(pub, m.Receipt, m.ReceiptSignature) {
		return nil, types.Errorf(types.CodeBadSignature, "the receipt is not signed by provider %s", types.Address(r.Provider))
	}
	ep := epochs.Get(kv, r.Epoch)
	cm := epochs.GetCommitment(kv, r.Epoch, services.Inference, r.Provider)
	if ep == nil || cm == nil || height <= ep.CommitDeadline {
		return nil, types.Errorf(types.CodeInvalid, "epoch %d is not committed by %s yet (a receipt left out is reported with report_omission)", r.Epoch, types.Address(r.Provider))
	}
	if r.Index >= cm.RecordCount {
		return nil, types.Errorf(types.CodeInvalid, "receipt %d is beyond the %d committed: report it with report_omission", r.Index, cm.RecordCount)
	}
	if ep.SettleHeight > 0 && height > ep.SettleHeight {
		return nil, types.Errorf(types.CodeInvalid, "disputes for epoch %d closed at height %d", r.Epoch, ep.SettleHeight)
	}
	if kv.Has(disputeKey(r.Epoch, r.Provider, r.Index)) {
		return nil, types.Errorf(types.CodeInvalid, "receipt %d of %s in epoch %d is already disputed", r.Index, types.Address(r.Provider), r.Epoch)
	}
	if kv.Has(codec.Key(prefixApplied, recordKey(r.Epoch, r.Provider, services.Inference, r.Index))) {
		return nil, types.Errorf(types.CodeInvalid, "a fault on this receipt was already applied")
	}
	if err := bank.Send(kv, signer, Disputes, p.DisputeBond); err != nil {
		return nil, err
	}
	d := &types.Dispute{Epoch: r.Epoch, Provider: r.Provider, Index: r.Index, ReceiptId: receiptID(m.Receipt), Client: signer,
		Bond: p.DisputeBond, Deadline: height + p.OpeningWindow, OpenedHeight: height}
	kv.Set(disputeKey(d.Epoch, d.Provider, d.Index), codec.Marshal(d))
	kv.Set(codec.Key(prefixDisputeQ, codec.I64(d.Deadline), codec.U64(d.Epoch), d.Provider, codec.U64(d.Index)), []byte{1})
	return d, nil
}

// resolveDispute closes the dispute on a receipt whose fault was applied:
// the client's bond comes back.
func resolveDispute(kv store.KV, epoch uint64, provider []byte, index uint64) error {
	d := GetDispute(kv, epoch, provider, index)
	if d == nil {
		return nil
	}
	kv.Delete(disputeKey(epoch, provider, index))
	kv.Delete(codec.Key(prefixDisputeQ, codec.I64(d.Deadline), codec.U64(d.Epoch), d.Provider, codec.U64(d.Index)))
	return bank.Send(kv, Disputes, d.Client, d.Bond)
}

// ExpireDisputes gives the provider the bond of every dispute whose
// deadline passed without a fault (end of block).
func ExpireDisputes(kv store.KV, height int64) ([]*types.Dispute, error) {
	var keys [][]byte
	kv.Iterate(prefixDisputeQ, func(k, _ []byte) bool {
		if int64(codec.ReadU64(k[len(prefixDisputeQ):len(prefixDisputeQ)+8])) >= height {
			return false
		}
		keys = append(keys, append([]byte(nil), k...))
		return true
	})
	var out []*types.Dispute
	for _, qk := range keys {
		dk := append(append([]byte(nil), prefixDispute...), qk[len(prefixDisputeQ)+8:]...)
		kv.Delete(qk)
		bz := kv.Get(dk)
		if bz == nil {
			continue
		}
		d := &types.Dispute{}
		codec.MustUnmarshal(bz, d)
		kv.Delete(dk)
		if err := bank.Send(kv, Disputes, d.Provider, d.Bond); err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// OpenDisputes lists the open disputes in (epoch, provider, index) order.
func OpenDisputes(kv store.KV) []*types.Dispute {
	var out []*types.Dispute
	kv.Iterate(prefixDispute, func(_, bz []byte) bool {
		d := &types.Dispute{}
		codec.MustUnmarshal(bz, d)
		out = append(out, d)
		return true
	})
	return out
}
