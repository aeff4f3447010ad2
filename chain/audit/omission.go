package audit

import (
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Omission: a receipt the provider signed must be in its commitment for the
// receipt's epoch. A holder of the receipt reports it with a bond; if the
// commitment is missing or shorter than the receipt's index the fault is
// proven at once, otherwise the provider is challenged to show the receipt's
// inclusion proof within opening_window blocks. An answered challenge gives
// the reporter's bond to the provider; an unanswered one is a fault.
var (
	prefixChallenge  = []byte("omit/")     // omit/<epoch>/<provider>/<index> -> Challenge
	prefixChallengeQ = []byte("omitq/")    // omitq/<deadline>/<epoch>/<provider>/<index> -> {}
	prefixOmitDone   = []byte("omitdone/") // omitdone/<epoch>/<provider>: one omission fault per provider and epoch
	// Disputes holds reporters' bonds while challenges are open.
	Disputes = bank.ModuleAddress("disputes")
)

// OmissionResult says what an omission report (or a challenge's expiry) did.
type OmissionResult struct {
	Epoch      uint64
	Provider   []byte
	Index      uint64
	Challenged bool // a challenge opened (the fault is not provable at once)
	Result          // the fault, when applied
}

func challengeKey(epoch uint64, provider []byte, index uint64) []byte {
	return codec.Key(prefixChallenge, codec.U64(epoch), provider, codec.U64(index))
}

func queueKey(c *types.Challenge) []byte {
	return codec.Key(prefixChallengeQ, codec.I64(c.Deadline), codec.U64(c.Epoch), c.Provider, codec.U64(c.Index))
}

// ReportOmission handles MsgReportOmission from signer.
func ReportOmission(kv store.KV, p types.Params, chainID string, height int64, signer []byte, m *types.MsgReportOmission) (OmissionResult, error) {
	var out OmissionResult
	var r types.Receipt
	if err := proto.Unmarshal(m.Receipt, &r); err != nil {
		return out, types.Errorf(types.CodeMalformed, "receipt: %v", err)
	}
	if r.ChainId != chainID {
		return out, types.Errorf(types.CodeInvalid, "the receipt is for chain %q", r.ChainId)
	}
	if err := types.ValidAddress(r.Provider); err != nil {
		return out, types.Errorf(types.CodeMalformed, "receipt provider: %v", err)
	}
	pub := bank.GetAccount(kv, r.Provider).PubKey
	if !types.VerifyReceiptSignature(pub, m.Receipt, m.ReceiptSignature) {
		return out, types.Errorf(types.CodeBadSignature, "the receipt is not signed by provider %s", types.Address(r.Provider))
	}
	out.Epoch, out.Provider, out.Index = r.Epoch, r.Provider, r.Index
	ep := epochs.Get(kv, r.Epoch)
	if ep == nil || height <= ep.CommitDeadline {
		return out, types.Errorf(types.CodeInvalid, "epoch %d's commit deadline has not passed yet", r.Epoch)
	}
	if ep.SettleHeight > 0 && height > ep.SettleHeight {
		return out, types.Errorf(types.CodeInvalid, "omission reports for epoch %d closed at height %d", r.Epoch, ep.SettleHeight)
	}
	if kv.Has(codec.Key(prefixOmitDone, codec.U64(r.Epoch), r.Provider)) {
		return out, types.Errorf(types.CodeInvalid, "provider %s was already faulted for an omission in epoch %d", types.Address(r.Provider), r.Epoch)
	}
	if kv.Has(challengeKey(r.Epoch, r.Provider, r.Index)) {
		return out, types.Errorf(types.CodeInvalid, "receipt %d of %s in epoch %d is already challenged", r.Index, types.Address(r.Provider), r.Epoch)
	}
	if err := bank.Send(kv, signer, Disputes, p.OmissionBond); err != nil {
		return out, err
	}
	c := &types.Challenge{Epoch: r.Epoch, Provider: r.Provider, Index: r.Index, ReceiptId: receiptID(m.Receipt), Reporter: signer,
		Client: r.Client, Amount: r.Amount, Bond: p.OmissionBond, Deadline: height + p.OpeningWindow, OpenedHeight: height}
	cm := epochs.GetCommitment(kv, r.Epoch, services.Inference, r.Provider)
	if cm == nil || r.Index >= cm.RecordCount {
		// Provable now: no commitment, or a shorter one.
		res, err := omissionFault(kv, p, c)
		out.Result = res
		return out, err
	}
	kv.Set(challengeKey(c.Epoch, c.Provider, c.Index), codec.Marshal(c))
	kv.Set(queueKey(c), []byte{1})
	out.Challenged = true
	return out, nil
}

// AnswerOmission handles a provider's MsgAnswerOmission: a valid inclusion
// proof closes the challenge and pays the provider the reporter's bond.
func AnswerOmission(kv store.KV, signer []byte, m *types.MsgAnswerOmission) error {
	k := challengeKey(m.Epoch, signer, m.Index)
	bz := kv.Get(k)
	if bz == nil {
		return types.Errorf(types.CodeNotFound, "no open challenge on receipt %d of %s in epoch %d", m.Index, types.Address(signer), m.Epoch)
	}
	c := &types.Challenge{}
	codec.MustUnmarshal(bz, c)
	cm := epochs.GetCommitment(kv, m.Epoch, services.Inference, signer)
	if cm == nil {
		return types.Errorf(types.CodeNotFound, "no commitment by %s for epoch %d", types.Address(signer), m.Epoch)
	}
	pr := &merkle.Proof{Index: m.Index, Count: cm.RecordCount, Left: m.ProofLeft}
	for _, h := range m.Proof {
		var x [32]byte
		copy(x[:], h)
		pr.Siblings = append(pr.Siblings, x)
	}
	var root, id [32]byte
	copy(root[:], cm.Root)
	copy(id[:], c.ReceiptId)
	if !pr.Verify(root, id) {
		return types.Errorf(types.CodeInvalid, "the proof does not show the challenged receipt at index %d under the committed root", m.Index)
	}
	kv.Delete(k)
	kv.Delete(queueKey(c))
	return bank.Send(kv, Disputes, signer, c.Bond)
}

// ExpireChallenges applies the fault of every challenge whose deadline has
// passed at height (end of block).
func ExpireChallenges(kv store.KV, p types.Params, height int64) ([]OmissionResult, error) {
	var due []*types.Challenge
	var keys [][]byte
	kv.Iterate(prefixChallengeQ, func(k, _ []byte) bool {
		deadline := int64(codec.ReadU64(k[len(prefixChallengeQ) : len(prefixChallengeQ)+8]))
		if deadline >= height {
			return false // keys are in deadline order
		}
		keys = append(keys, append([]byte(nil), k...))
		return true
	})
	for _, qk := range keys {
		rest := qk[len(prefixChallengeQ)+8:]
		ck := append(append([]byte(nil), prefixChallenge...), rest...)
		bz := kv.Get(ck)
		kv.Delete(qk)
		if bz == nil {
			continue
		}
		c := &types.Challenge{}
		codec.MustUnmarshal(bz, c)
		due = append(due, c)
		kv.Delete(ck)
	}
	var out []OmissionResult
	for _, c := range due {
		o := OmissionResult{Epoch: c.Epoch, Provider: c.Provider, Index: c.Index}
		if kv.Has(codec.Key(prefixOmitDone, codec.U64(c.Epoch), c.Provider)) {
			// Already faulted for this epoch: give the bond back, nothing more.
			if err := bank.Send(kv, Disputes, c.Reporter, c.Bond); err != nil {
				return out, err
			}
			out = append(out, o)
			continue
		}
		res, err := omissionFault(kv, p, c)
		if err != nil {
			return out, err
		}
		o.Result = res
		out = append(out, o)
	}
	return out, nil
}

// omissionFault penalizes the provider of c, refunds the receipt's client,
// rewards and repays the reporter, and marks the epoch faulted.
func omissionFault(kv store.KV, p types.Params, c *types.Challenge) (Result, error) {
	kv.Set(codec.Key(prefixOmitDone, codec.U64(c.Epoch), c.Provider), []byte{1})
	kv.Set(codec.Key(prefixApplied, recordKey(c.Epoch, c.Provider, services.Inference, c.Index)), codec.U64(uint64(types.FaultOmitted)))
	inf := services.InferenceService() // omissions are of inference receipts
	res, err := Penalize(kv, p, c.Provider, inf.SlashBps(p, inf.FaultNamed("omitted")), c.Client, c.Amount, [][]byte{c.Reporter})
	if err != nil {
		return res, err
	}
	return res, bank.Send(kv, Disputes, c.Reporter, c.Bond)
}

// Challenges lists the open challenges against provider (all providers
// when nil), in (epoch, provider, index) order.
func Challenges(kv store.KV, provider []byte) []*types.Challenge {
	var out []*types.Challenge
	kv.Iterate(prefixChallenge, func(_, bz []byte) bool {
		c := &types.Challenge{}
		codec.MustUnmarshal(bz, c)
		if provider == nil || string(c.Provider) == string(provider) {
			out = append(out, c)
		}
		return true
	})
	return out
}

func receiptID(bz []byte) []byte {
	h := types.ReceiptID(bz)
	return h[:]
}
