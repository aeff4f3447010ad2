package market

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/jobsim"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/validator"
)

// TestJobReplicaCaught: an order replicated on two providers, one of which
// alters step 150 of 300. No checkpoint is sampled (audit rate 0): the
// chain records the replicas' first disagreement (checkpoint 2), the
// validators' workers re-execute it in both leases, challenge the wrong
// one, bisect against its defender down to step 150, vote, and the
// provider is slashed; the honest replica runs on untouched.
func TestJobReplicaCaught(t *testing.T) {
	p := types.DefaultParams()
	p.EpochLength, p.CommitWindow, p.BeaconWindow = 10, 2, 2
	p.AuditFloorBps, p.AuditCeilingBps = 0, 0
	jp := *p.Jobs
	jp.MoveWindow, jp.VoteWindow, jp.ChallengeWindow, jp.LivenessEpochs = 30, 40, 1000, 100
	p.Jobs = &jp
	nw := testnet.New(t, testnet.Options{Validators: 3, Accounts: 3, Balance: 10_000_000_000, Params: &p, BlockTime: 100 * time.Millisecond, LogLevel: slog.LevelError})
	if err := nw.WaitHeight(0, 2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := nw.Client(0)
	var stopped []chan struct{}
	var defenders []*jobsim.Defender
	defer func() {
		cancel()
		for _, ch := range stopped {
			<-ch
		}
		for _, d := range defenders {
			d.Wait()
		}
	}()
	for i, op := range nw.Operators {
		vc := nw.Client(i)
		signer := vc.NewSigner(op)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("validator", i)
		jv, err := validator.NewJobVerifier(ctx, vc, signer, validator.JobOptions{}, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		a, err := validator.NewAuditor(vc, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan struct{})
		stopped = append(stopped, ch)
		go func() {
			defer close(ch)
			defer jv.Close(context.Background())
			validator.NewWorker(vc, a, signer, nil, log).WithJobs(jv).WithInterval(100 * time.Millisecond).Run(ctx)
		}()
	}
	send := func(s *client.Signer, m any) *client.TxResult {
		t.Helper()
		res, err := s.Send(ctx, m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		return res
	}
	owner := c.NewSigner(nw.Accounts[0])
	mod, input := jobsim.CounterModule(300), []byte("input 0")
	provs := map[string]*client.Signer{}
	sims := map[string]*jobsim.Provider{}
	for _, i := range []int{1, 2} {
		s := c.NewSigner(nw.Accounts[i])
		sim := jobsim.NewProvider(t)
		for _, b := range [][]byte{mod, input} {
			if _, err := sim.Store.PutBytes(b); err != nil {
				t.Fatal(err)
			}
		}
		send(s, &types.MsgBondProvider{Amount: p.MinProviderStake})
		send(s, &types.MsgRegisterProvider{Info: &types.ProviderInfo{Endpoint: sim.Srv.URL, Capabilities: []string{"wasm"}}})
		provs[s.Address().String()], sims[s.Address().String()] = s, sim
	}
	mid, iid := blob.Of(mod), blob.Of(input)
	const gas, price, coll = 1 << 20, 1_000_000, 5_000_000
	res := send(owner, &types.MsgSubmitJob{ModuleHash: mid[:], InputHashes: [][]byte{iid[:]}, GasLimit: gas, MemoryPages: 4, MaxPrice: price,
		Deadline: nw.Height(0) + 2000, Collateral: coll, Replication: 2, BidWindow: 3, CheckpointInterval: 100, Escrow: 2 * gas})
	var id uint64
	fmt.Sscan(res.Events["order_id"], &id)
	for _, s := range provs {
		send(s, &types.MsgBidJob{OrderId: id, Price: price, Collateral: coll})
	}
	var o api.JobOrderView
	poll.Until(t, 30*time.Second, "the order cleared on two providers", func() (bool, string) {
		var err error
		o, err = c.JobOrder(ctx, id)
		return err == nil && o.Status == "running" && len(o.LeaseIDs) == 2, fmt.Sprint(o.Status, o.Reason, err)
	})
	spec, err := jobs.SpecOf(nw.ChainID, o)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	m, err := eng.Compile(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	job := wasm.Job{Inputs: []wasm.Blob{{Name: spec.Inputs[0].Name, Data: input}}, Seed: spec.Seed, Gas: spec.Gas, MemoryPages: spec.MemoryPages, CheckpointEvery: spec.CheckpointEvery}
	var liarLease, honestLease uint64
	var liar *client.Signer
	for i, lid := range o.LeaseIDs {
		l, err := c.JobLease(ctx, lid)
		if err != nil {
			t.Fatal(err)
		}
		s, tamper := provs[l.Provider.String()], uint64(0)
		if i == 1 { // the second lease's provider alters step 150
			tamper, liarLease, liar = 150, lid, s
		} else {
			honestLease = lid
		}
		run := jobsim.NewRun(t, m, job, tamper, 100)
		sims[l.Provider.String()].Serve(lid, run)
		d := jobsim.Defend(ctx, t, c, s, jp.BisectionK, map[uint64]*jobsim.Run{lid: run})
		defenders = append(defenders, d)
		for i := uint64(1); i <= 2; i++ {
			send(s, run.Checkpoint(lid, i))
		}
	}
	if o, err = c.JobOrder(ctx, id); err != nil || o.MismatchIndex != 2 {
		t.Fatalf("order after both replicas' checkpoint 2: mismatch index %d (%v)", o.MismatchIndex, err)
	}
	bond0, err := c.Provider(ctx, liar.Address())
	if err != nil {
		t.Fatal(err)
	}
	var d api.JobDisputeView
	poll.Until(t, 45*time.Second, "the wrong replica's dispute resolved", func() (bool, string) {
		ds, err := c.JobLeaseDisputes(ctx, liarLease)
		if err != nil || len(ds) == 0 {
			return false, fmt.Sprint(ds, err)
		}
		d = ds[0]
		return d.Outcome != "", fmt.Sprintf("phase %s %d..%d moves %d", d.Phase, d.Lo, d.Hi, d.Moves)
	})
	if d.Outcome != "challenger" || d.Index != 2 || d.Lo != 149 || d.Hi != 150 {
		t.Fatalf("dispute: %+v", d)
	}
	cps, err := c.JobCheckpoints(ctx, liarLease)
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoints %v %v", cps, err)
	}
	cut := bond0.Bonded * p.SlashBps["jobs/wrong_step"] / 10000
	refund := min(uint64(coll), cps[1].Paid)
	if d.Refund != refund || d.Reward != (coll-refund)*jp.RewardBps/10000 || d.Slashed != coll+cut {
		t.Fatalf("dispute settlement: refund %d reward %d slashed %d; want %d, %d, %d", d.Refund, d.Reward, d.Slashed, refund, (coll-refund)*jp.RewardBps/10000, coll+cut)
	}
	if pv, err := c.Provider(ctx, liar.Address()); err != nil || pv.Bonded != bond0.Bonded-cut {
		t.Fatalf("wrong replica's bond %d, want %d (%v)", pv.Bonded, bond0.Bonded-cut, err)
	}
	for lid, want := range map[uint64]string{liarLease: "slashed", honestLease: "running"} {
		if l, err := c.JobLease(ctx, lid); err != nil || l.Status != want || (want == "running" && l.OpenDispute != 0) {
			t.Fatalf("lease %d: %+v (%v), want %s", lid, l, err, want)
		}
	}
	if ds, err := c.JobLeaseDisputes(ctx, honestLease); err != nil || len(ds) != 0 {
		t.Fatalf("the honest replica was disputed: %+v %v", ds, err)
	}
}
