package app

import (
	"encoding/hex"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/models"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// modelsModule is the trained-model registry (chain/models): one message,
// and the /models/... queries (records keyed by sha256 and lease).
func modelsModule() Module {
	return Module{Name: "models", Msgs: models.Msgs(),
		Queries: map[string]QueryHandler{"models": modelsQuery},
		Handlers: map[string]Handler{
			models.MsgRegister: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m, err := models.Register(kv, c.Height, d.Signer, d.Msg.(*types.MsgRegisterModel))
				if err != nil {
					return nil, err
				}
				return [][2]string{{"model", hex.EncodeToString(m.Hash)}, {"lease_id", itoa(m.LeaseId)}, {"order_id", itoa(m.OrderId)}}, nil
			},
		}}
}

// modelsQuery answers the /models/... paths chain/api builds.
func modelsQuery(kv store.KV, q QueryReq) (any, error) {
	view := func(m *types.TrainedModel) api.TrainedModelView {
		st := types.JobStatus_JOB_STATUS_UNSPECIFIED
		if l := jobs.GetLease(kv, m.LeaseId); l != nil {
			st = l.Status
		}
		return api.TrainedModelViewOf(m, st)
	}
	views := func(ms []*types.TrainedModel) []api.TrainedModelView {
		out := make([]api.TrainedModelView, 0, len(ms))
		for _, m := range ms {
			out = append(out, view(m))
		}
		return out
	}
	switch {
	case (len(q.Args) == 2 || len(q.Args) == 3) && q.Arg(0) == "model":
		h, err := hex.DecodeString(q.Arg(1))
		if err != nil || len(h) != types.HashLen {
			return nil, types.Errorf(types.CodeMalformed, "model hash %q: want 64 hex digits (the file's sha256)", q.Arg(1))
		}
		if len(q.Args) == 3 {
			lease, err := q.Num(2)
			if err != nil {
				return nil, err
			}
			m := models.Get(kv, h, lease)
			if m == nil {
				return nil, notFound("no model %x is registered from lease %d", h, lease)
			}
			return view(m), nil
		}
		ms := models.Records(kv, h)
		if len(ms) == 0 {
			return nil, notFound("no model %x is registered", h)
		}
		return views(ms), nil
	case len(q.Args) == 1 && q.Arg(0) == "all":
		return views(models.All(kv)), nil
	case len(q.Args) == 2 && q.Arg(0) == "lease":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		return views(models.ByLease(kv, id)), nil
	}
	return nil, ErrUnknownPath
}
