package market

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/jobsim"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/validator"
)

// TestJobTamperingExecutorCaught runs a replicated order of 10^5 steps on two
// real executors, one of which alters the job's memory after step 50,000 (its
// checkpoints every 10^4 steps are wrong from then on), with three real
// validator workers: the replicas' mismatch is audited, challenged, bisected
// down to steps 49,999..50,000 by the executor defending itself, refereed by the
// validators' votes, and the tampering lease is slashed while the honest
// one finishes.
func TestJobTamperingExecutorCaught(t *testing.T) {
	const steps, tamperStep = 100_000, 50_000
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
	var stopped []chan struct{}
	defer func() {
		cancel()
		for _, ch := range stopped {
			<-ch
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
	c := nw.Client(0)
	rpc := nw.Configs[0].RPC.Laddr
	var exs []*executor.Executor
	for i, k := range nw.Accounts[1:] {
		cfg := executor.Config{ChainRPC: rpc, Key: k, DataDir: t.TempDir(), Price: 1000, MaxCollateral: 10_000_000, Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond}
		if i == 1 {
			cfg.Tamper = func(lease, step uint64) bool { return step == tamperStep }
		}
		ex, err := executor.New(cfg, e2eutil.QuietLog(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if err := ex.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer ex.Stop()
		exs = append(exs, ex)
	}
	owner := c.NewSigner(nw.Accounts[0])
	mod, input := jobsim.CounterModule(steps), []byte("input 0")
	mid, iid := blob.Of(mod), blob.Of(input)
	const gas, price, coll = 1 << 30, 1_000, 5_000_000
	per, _ := jobs.Budget(gas, price)
	res, err := owner.Send(ctx, &types.MsgSubmitJob{ModuleHash: mid[:], InputHashes: [][]byte{iid[:]}, GasLimit: gas, MemoryPages: 4, MaxPrice: price,
		Deadline: nw.Height(0) + 2000, Collateral: coll, Replication: 2, BidWindow: 3, CheckpointInterval: steps / 10, Escrow: 2 * per})
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	fmt.Sscan(res.Events["order_id"], &id)
	_, leases, err := jobowner.WaitLeases(ctx, c, id, 100*time.Millisecond)
	if err != nil || len(leases) != 2 {
		t.Fatal(err, leases)
	}
	if err := jobowner.Upload(ctx, c, nw.Accounts[0], id, leases, map[blob.ID][]byte{mid: mod, iid: input}, nil); err != nil {
		t.Fatal(err)
	}
	var liarLease, honestLease uint64
	for _, l := range leases {
		if l.Provider.String() == exs[1].Address().String() {
			liarLease = l.ID
		} else {
			honestLease = l.ID
		}
	}
	var d api.JobDisputeView
	poll.Until(t, 180*time.Second, "the tampering executor's dispute resolved", func() (bool, string) {
		ds, err := c.JobLeaseDisputes(ctx, liarLease)
		if err != nil || len(ds) == 0 {
			return false, fmt.Sprint(ds, err)
		}
		d = ds[0]
		return d.Outcome != "", fmt.Sprintf("phase %s %d..%d moves %d", d.Phase, d.Lo, d.Hi, d.Moves)
	})
	t.Logf("dispute %+v", d)
	if d.Outcome != "challenger" || d.Lo != tamperStep-1 || d.Hi != tamperStep {
		t.Fatalf("dispute: %+v", d)
	}
	// The disputed interval is one checkpoint's 10^4 steps: at k = 8, at
	// most ceil(log8(10^4)) = 5 bisect + 5 pick moves.
	if d.Moves > 10 {
		t.Fatalf("dispute took %d moves, want at most 10", d.Moves)
	}
	for lid, want := range map[uint64]string{liarLease: "slashed", honestLease: "done"} {
		poll.Until(t, 60*time.Second, fmt.Sprint("lease ", lid, " ", want), func() (bool, string) {
			l, err := c.JobLease(ctx, lid)
			return err == nil && l.Status == want, fmt.Sprint(l.Status, err)
		})
	}
	if ds, _ := c.JobLeaseDisputes(ctx, honestLease); len(ds) != 0 {
		t.Fatalf("the honest replica was disputed: %+v", ds)
	}
}
