package app

import (
	"encoding/hex"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
)

// zkModule is the zkML registry (chain/zk): models registered by weights
// commitment and verifying key, proofs verified in the tx, and the /zk/
// queries.
func zkModule() Module {
	return Module{Name: "zk", Msgs: zk.Msgs(),
		Queries:  map[string]QueryHandler{"zk": zkQuery},
		Services: []*services.Service{services.ZKService()},
		Handlers: map[string]Handler{
			zk.MsgRegister: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m, err := zk.Register(kv, c.Height, d.Signer, d.Msg.(*types.MsgRegisterZKModel))
				if err != nil {
					return nil, err
				}
				return [][2]string{{"zk_model_id", itoa(m.Id)}, {"vk_hash", hex.EncodeToString(m.VkHash)}}, nil
			},
			zk.MsgVerify: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgVerifyZKProof)
				sh, err := zk.Verify(kv, c.Height, d.Signer, m)
				if err != nil {
					return nil, err
				}
				return [][2]string{{"zk_model_id", itoa(m.ModelId)}, {"statement", hex.EncodeToString(sh)}}, nil
			},
			zk.MsgReport: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgReportZKFault)
				r, reward, err := zk.ReportFault(kv, c.Params, c.ChainID, c.Height, d.Signer, m)
				if err != nil {
					return nil, err
				}
				// The answer's hash and the reporter's reward let an
				// indexer list the fault without re-deriving either.
				return [][2]string{{"provider", types.Address(m.Provider).String()}, {"zk_model_id", itoa(m.ModelId)},
					{"fault", "bad_proof"}, {"slashed", itoa(r.Slashed)}, {"reward", itoa(reward)}, {"answer", hex.EncodeToString(r.AnswerHash)}}, nil
			},
		}}
}

// zkQuery answers the /zk/... paths chain/api builds.
func zkQuery(kv store.KV, q QueryReq) (any, error) {
	switch {
	case len(q.Args) == 2 && q.Arg(0) == "model":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		m := zk.Get(kv, id)
		if m == nil {
			return nil, notFound("zk model %d does not exist", id)
		}
		return api.ZKModelViewOf(m), nil
	case len(q.Args) == 1 && q.Arg(0) == "models":
		out := []api.ZKModelView{}
		for _, m := range zk.All(kv) {
			out = append(out, api.ZKModelViewOf(m))
		}
		return out, nil
	case len(q.Args) == 3 && q.Arg(0) == "proof":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		sh, err := hex.DecodeString(q.Arg(2))
		if err != nil || len(sh) != types.HashLen {
			return nil, types.Errorf(types.CodeMalformed, "statement hash %q: want 64 hex digits", q.Arg(2))
		}
		r := zk.GetProof(kv, id, sh)
		if r == nil {
			return nil, notFound("statement %x of zk model %d was not verified on chain", sh, id)
		}
		return api.ZKProofViewOf(r), nil
	}
	return nil, ErrUnknownPath
}
