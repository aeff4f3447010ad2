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
// and the /models/... queries.
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
	switch {
	case len(q.Args) == 2 && q.Arg(0) == "model":
		h, err := hex.DecodeString(q.Arg(1))
		if err != nil || len(h) != types.HashLen {
			return nil, types.Errorf(types.CodeMalformed, "model hash %q: want 64 hex digits (the file's sha256)", q.Arg(1))
		}
		m := models.Get(kv, h)
		if m == nil {
			return nil, notFound("no model %x is registered", h)
		}
		return view(m), nil
	case len(q.Args) == 1 && q.Arg(0) == "all":
		out := []api.TrainedModelView{}
		for _, m := range models.All(kv) {
			out = append(out, view(m))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "lease":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		out := []api.TrainedModelView{}
		for _, h := range models.ByLease(kv, id) {
			out = append(out, view(models.Get(kv, h)))
		}
		return out, nil
	}
	return nil, ErrUnknownPath
}
