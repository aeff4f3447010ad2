package app

import (
	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// dataModule is the data market (chain/data): datasets and download
// grants. Its messages travel in module_msg; it holds no funds (grants are
// paid at once, run prices are held by the jobs module); it answers the
// /data/... queries.
func dataModule() Module {
	return Module{Name: "data", Msgs: data.Msgs(),
		Queries: map[string]QueryHandler{"data": dataQuery},
		Handlers: map[string]Handler{
			data.MsgPublish: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgPublishDataset)
				id, err := data.Publish(kv, c.Params, c.Height, d.Signer, m)
				if err != nil {
					return nil, err
				}
				return [][2]string{{"dataset_id", itoa(id)}, {"host", types.Address(m.Host).String()}}, nil
			},
			data.MsgUpdate: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgUpdateDataset)
				return [][2]string{{"dataset_id", itoa(m.Id)}}, data.Update(kv, c.Params, c.Height, d.Signer, m)
			},
			data.MsgRetire: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgRetireDataset)
				return [][2]string{{"dataset_id", itoa(m.Id)}}, data.Retire(kv, c.Params, c.Height, d.Signer, m.Id)
			},
			data.MsgBuy: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				g, fee, err := data.BuyAccess(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgBuyAccess))
				if err != nil {
					return nil, err
				}
				return [][2]string{{"dataset_id", itoa(g.DatasetId)}, {"grant_id", itoa(g.Id)}, {"price", itoa(g.Price)},
					{"pool_fee", itoa(fee)}}, nil
			},
		}}
}

// dataQuery answers the /data/... paths chain/api builds.
func dataQuery(kv store.KV, q QueryReq) (any, error) {
	grants := func(ids []uint64) []api.DataGrantView {
		out := []api.DataGrantView{}
		for _, id := range ids {
			out = append(out, api.DataGrantViewOf(data.GetGrant(kv, id)))
		}
		return out
	}
	switch {
	case len(q.Args) == 2 && q.Arg(0) == "dataset":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		d := data.Get(kv, id)
		if d == nil {
			return nil, notFound("dataset %d does not exist", id)
		}
		return api.DatasetViewOf(d), nil
	case len(q.Args) == 1 && q.Arg(0) == "datasets":
		out := []api.DatasetView{}
		for _, d := range data.All(kv) {
			out = append(out, api.DatasetViewOf(d))
		}
		return out, nil
	case len(q.Args) == 3 && q.Arg(0) == "datasets" && q.Arg(1) == "owner":
		ad, err := q.Addr(2)
		if err != nil {
			return nil, err
		}
		out := []api.DatasetView{}
		for _, id := range data.ByOwner(kv, ad) {
			out = append(out, api.DatasetViewOf(data.Get(kv, id)))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "grant":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		g := data.GetGrant(kv, id)
		if g == nil {
			return nil, notFound("grant %d does not exist", id)
		}
		return api.DataGrantViewOf(g), nil
	case len(q.Args) == 3 && q.Arg(0) == "grants" && q.Arg(1) == "buyer":
		ad, err := q.Addr(2)
		if err != nil {
			return nil, err
		}
		return grants(data.GrantsByBuyer(kv, ad)), nil
	case (len(q.Args) == 2 || len(q.Args) == 3) && q.Arg(0) == "grants":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		var buyer types.Address
		if len(q.Args) == 3 {
			if buyer, err = q.Addr(2); err != nil {
				return nil, err
			}
		}
		return grants(data.Grants(kv, id, buyer)), nil
	}
	return nil, ErrUnknownPath
}
