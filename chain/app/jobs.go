package app

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// jobsModule is the compute-job market (chain/jobs): its messages travel
// in module_msg, its service ("jobs") declares the faults its disputes and
// liveness sweep apply, its end-block hook runs clearing, sweeps and
// deadlines, and it answers the /job/... queries.
func jobsModule() Module {
	return Module{Name: "jobs", Msgs: jobs.Msgs(), Services: []*services.Service{services.JobsService()},
		EndBlock: func(kv store.KV, b *BlockCtx) ([]abci.Event, error) { return jobs.EndBlock(kv, b.Params, b.Height) },
		Queries:  map[string]QueryHandler{"job": jobsQuery},
		Handlers: map[string]Handler{
			jobs.MsgSubmit: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				id, err := jobs.Submit(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgSubmitJob))
				if err != nil {
					return nil, err
				}
				o := jobs.GetOrder(kv, id)
				return [][2]string{{"order_id", itoa(id)}, {"bid_window_end", itoa(uint64(o.BidWindowEnd))}}, nil
			},
			jobs.MsgBid: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgBidJob)
				return [][2]string{{"order_id", itoa(m.OrderId)}}, jobs.Bid(kv, c.Params, c.Height, d.Signer, m)
			},
			jobs.MsgCommit: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				return jobs.Commit(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgCommitCheckpoint))
			},
			jobs.MsgCancel: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				m := d.Msg.(*types.MsgCancelJob)
				refund, err := jobs.Cancel(kv, c.Params, c.Height, d.Signer, m.OrderId)
				if err != nil {
					return nil, err
				}
				return [][2]string{{"order_id", itoa(m.OrderId)}, {"refund", itoa(refund)}}, nil
			},
			jobs.MsgChallenge: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				dp, err := jobs.Challenge(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgChallengeCheckpoint))
				if err != nil {
					return nil, err
				}
				return disputeAttrs(dp), nil
			},
			jobs.MsgBisectN: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				dp, err := jobs.Bisect(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgBisect))
				if err != nil {
					return nil, err
				}
				return disputeAttrs(dp), nil
			},
			jobs.MsgPick: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				dp, err := jobs.Pick(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgPickInterval))
				if err != nil {
					return nil, err
				}
				return disputeAttrs(dp), nil
			},
			jobs.MsgVote: func(kv store.KV, c Ctx, d *types.DecodedTx) ([][2]string, error) {
				dp, _, err := jobs.Vote(kv, c.Params, c.Height, d.Signer, d.Msg.(*types.MsgVoteStep))
				if err != nil {
					return nil, err
				}
				return disputeAttrs(dp), nil
			},
		}}
}

func disputeAttrs(d *types.JobDispute) [][2]string {
	a := [][2]string{{"dispute_id", itoa(d.Id)}, {"lease_id", itoa(d.LeaseId)}, {"phase", jobs.PhaseName(d.Phase)},
		{"lo", itoa(d.Lo)}, {"hi", itoa(d.Hi)}, {"deadline", itoa(uint64(d.Deadline))}}
	if d.Outcome != "" {
		a = append(a, [2]string{"outcome", d.Outcome}, [2]string{"reason", d.Reason})
	}
	return a
}

// jobsQuery answers the /job/... paths chain/api builds.
func jobsQuery(kv store.KV, q QueryReq) (any, error) {
	num := func(i int) (uint64, error) { return q.Num(i) }
	switch {
	case len(q.Args) == 2 && q.Arg(0) == "order":
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		o := jobs.GetOrder(kv, id)
		if o == nil {
			return nil, notFound("order %d does not exist", id)
		}
		return api.JobOrderViewOf(o), nil
	case len(q.Args) == 2 && q.Arg(0) == "bids":
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		out := []api.JobBidView{}
		for _, b := range jobs.Bids(kv, id) {
			out = append(out, api.JobBidViewOf(b))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "lease":
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		l := jobs.GetLease(kv, id)
		if l == nil {
			return nil, notFound("lease %d does not exist", id)
		}
		return api.JobLeaseViewOf(l), nil
	case len(q.Args) == 2 && q.Arg(0) == "checkpoints":
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		out := []api.JobCheckpointView{}
		for _, c := range jobs.Checkpoints(kv, id) {
			out = append(out, api.JobCheckpointViewOf(c))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "dispute":
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		d := jobs.GetDispute(kv, id)
		if d == nil {
			return nil, notFound("dispute %d does not exist", id)
		}
		return api.JobDisputeViewOf(d), nil
	case len(q.Args) == 1 && q.Arg(0) == "open-disputes":
		out := []api.JobDisputeView{}
		for _, did := range jobs.OpenDisputes(kv) {
			out = append(out, api.JobDisputeViewOf(jobs.GetDispute(kv, did)))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "disputes":
		id, err := num(1)
		if err != nil {
			return nil, err
		}
		out := []api.JobDisputeView{}
		for _, did := range jobs.LeaseDisputes(kv, id) {
			out = append(out, api.JobDisputeViewOf(jobs.GetDispute(kv, did)))
		}
		return out, nil
	case len(q.Args) == 3 && q.Arg(0) == "orders" && q.Arg(1) == "owner":
		ad, err := q.Addr(2)
		if err != nil {
			return nil, err
		}
		return orderViews(kv, jobs.OrdersByOwner(kv, ad)), nil
	case len(q.Args) == 3 && q.Arg(0) == "orders" && q.Arg(1) == "status":
		s, ok := api.ParseJobStatus(q.Arg(2))
		if !ok {
			return nil, types.Errorf(types.CodeMalformed, "unknown job status %q", q.Arg(2))
		}
		return orderViews(kv, jobs.OrdersByStatus(kv, s)), nil
	case len(q.Args) == 3 && q.Arg(0) == "orders" && q.Arg(1) == "dataset":
		n, err := num(2)
		if err != nil {
			return nil, err
		}
		return orderViews(kv, jobs.OrdersByDataset(kv, n)), nil
	case len(q.Args) == 3 && q.Arg(0) == "leases" && q.Arg(1) == "provider":
		ad, err := q.Addr(2)
		if err != nil {
			return nil, err
		}
		out := []api.JobLeaseView{}
		for _, id := range jobs.LeasesByProvider(kv, ad) {
			out = append(out, api.JobLeaseViewOf(jobs.GetLease(kv, id)))
		}
		return out, nil
	case len(q.Args) == 2 && q.Arg(0) == "sample":
		n, err := num(1)
		if err != nil {
			return nil, err
		}
		s, err := jobs.SampleCheckpoints(kv, q.Params, n)
		if err != nil {
			return nil, err
		}
		out := []api.JobSampleView{}
		for _, x := range s {
			ds := jobs.GetOrder(kv, jobs.GetLease(kv, x.LeaseID).OrderId).DatasetId
			out = append(out, api.JobSampleView{Provider: x.Provider, LeaseID: x.LeaseID, Index: x.Index, From: x.From, To: x.To, Step: x.Step, DatasetID: ds})
		}
		return out, nil
	}
	return nil, ErrUnknownPath
}

func orderViews(kv store.KV, ids []uint64) []api.JobOrderView {
	out := []api.JobOrderView{}
	for _, id := range ids {
		out = append(out, api.JobOrderViewOf(jobs.GetOrder(kv, id)))
	}
	return out
}

// checkJobsInvariant: the jobs account holds exactly what the market holds
// (orders' escrow, leases' unspent budgets, locked collateral, bonds).
func checkJobsInvariant(kv store.KV) error {
	held, err := jobs.Held(kv)
	if err != nil {
		return err
	}
	if bal := bank.Balance(kv, jobs.Account); bal != held {
		return fmt.Errorf("jobs escrow invariant broken: the jobs account holds %d, escrows, collateral and bonds total %d", bal, held)
	}
	return nil
}
