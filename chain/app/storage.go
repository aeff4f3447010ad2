package app

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/storage"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// storageModule is the storage-deal market (chain/storage): its messages
// travel in module_msg, its end-block hook turns unproved epochs whose
// deadline passed into faults, and it answers the /storage/... queries.
func storageModule() Module {
	return Module{Name: "storage", Msgs: storage.Msgs(),
		EndBlock: func(kv store.KV, b *BlockCtx) ([]abci.Event, error) { return storage.EndBlock(kv, b.Params, b.Height) },
		Queries:  map[string]QueryHandler{"storage": storageQuery},
		Handlers: map[string]Handler{
			storage.MsgCreate: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				id, err := storage.Create(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgCreateDeal))
				if err != nil {
					return nil, err
				}
				return [][2]string{{"deal_id", itoa(id)}}, nil
			},
			storage.MsgAccept: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgAcceptDeal)
				if err := storage.Accept(kv, c.Params, c.Height, d.Signer, m); err != nil {
					return nil, err
				}
				dl := storage.GetDeal(kv, m.DealId)
				return [][2]string{{"deal_id", itoa(m.DealId)}, {"provider", types.Address(d.Signer).String()},
					{"first_epoch", itoa(dl.NextEpoch)}}, nil
			},
			storage.MsgProve: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgProveStorage)
				paid, err := storage.Prove(kv, c.Params, c.Height, d.Signer, m)
				if err != nil {
					return nil, err
				}
				return [][2]string{{"deal_id", itoa(m.DealId)}, {"epoch", itoa(m.Epoch)}, {"paid", itoa(paid)}}, nil
			},
			storage.MsgCancel: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgCancelDeal)
				refund, err := storage.Cancel(kv, c.Params, c.Height, d.Signer, m.DealId)
				if err != nil {
					return nil, err
				}
				return [][2]string{{"deal_id", itoa(m.DealId)}, {"refund", itoa(refund)}}, nil
			},
		}}
}

// storageQuery answers the /storage/... paths chain/api builds.
func storageQuery(kv store.KV, q QueryReq) (any, error) {
	deals := func(ids []uint64) []api.StorageDealView {
		out := []api.StorageDealView{}
		for _, id := range ids {
			out = append(out, api.StorageDealViewOf(storage.GetDeal(kv, id)))
		}
		return out
	}
	switch {
	case len(q.Args) == 2 && q.Arg(0) == "deal":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		d := storage.GetDeal(kv, id)
		if d == nil {
			return nil, notFound("deal %d does not exist", id)
		}
		return api.StorageDealViewOf(d), nil
	case len(q.Args) == 1 && q.Arg(0) == "deals":
		var ids []uint64
		for id := storage.DealCount(kv); id > 0 && len(ids) < api.MaxStorageDeals; id-- {
			ids = append(ids, id)
		}
		return deals(ids), nil
	case len(q.Args) == 3 && q.Arg(0) == "deals" && q.Arg(1) == "client":
		ad, err := q.Addr(2)
		if err != nil {
			return nil, err
		}
		return deals(storage.DealsByClient(kv, ad)), nil
	case len(q.Args) == 3 && q.Arg(0) == "deals" && q.Arg(1) == "provider":
		ad, err := q.Addr(2)
		if err != nil {
			return nil, err
		}
		return deals(storage.DealsByProvider(kv, ad)), nil
	case len(q.Args) == 3 && q.Arg(0) == "deals" && q.Arg(1) == "status":
		s, ok := api.ParseDealStatus(q.Arg(2))
		if !ok {
			return nil, types.Errorf(types.CodeMalformed, "unknown deal status %q (open, active, done, cancelled)", q.Arg(2))
		}
		return deals(storage.DealsByStatus(kv, s)), nil
	case len(q.Args) == 2 && q.Arg(0) == "epochs":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		out := []api.StorageEpochView{}
		for _, e := range storage.Epochs(kv, id) {
			out = append(out, api.StorageEpochViewOf(e))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "faults":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		out := []api.StorageFaultView{}
		for _, f := range storage.DealFaults(kv, id) {
			out = append(out, api.StorageFaultViewOf(f))
		}
		return out, nil
	case len(q.Args) == 1 && q.Arg(0) == "faults":
		out := []api.StorageFaultView{}
		for _, f := range storage.RecentFaults(kv, api.MaxStorageDeals) {
			out = append(out, api.StorageFaultViewOf(f))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "challenge":
		id, err := q.Num(1)
		if err != nil {
			return nil, err
		}
		c, err := storage.CurrentChallenge(kv, q.Params, id)
		if err != nil {
			return nil, err
		}
		idx := append([]uint64{}, c.Indices...)
		return api.StorageChallengeView{DealID: c.DealID, Epoch: c.Epoch, SeedHeight: c.Drawn, Deadline: c.Deadline, Seed: c.Seed, Indices: idx}, nil
	}
	return nil, ErrUnknownPath
}

// checkStorageInvariant: the storage account holds exactly the deals'
// escrow and their providers' locked collateral.
func checkStorageInvariant(kv store.KV) error {
	held, err := storage.Held(kv)
	if err != nil {
		return err
	}
	if bal := bank.Balance(kv, storage.Account); bal != held {
		return fmt.Errorf("storage escrow invariant broken: the storage account holds %d, escrows and collateral total %d", bal, held)
	}
	return nil
}
