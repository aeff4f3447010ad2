package validator

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/jobsim"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// jobNet is a testnet whose every validator runs the worker with a job
// verifier signing with its operator key.
type jobNet struct {
	t         *testing.T
	ctx       context.Context
	nw        *testnet.Network
	c         *client.Client
	params    types.Params
	verifiers []*JobVerifier
	eng       *wasm.Engine
}

func jobTestParams() types.Params {
	p := types.DefaultParams()
	p.EpochLength, p.CommitWindow, p.BeaconWindow = 10, 2, 2
	p.AuditFloorBps, p.AuditCeilingBps = 10000, 10000 // every checkpoint sampled
	jp := *p.Jobs
	jp.MoveWindow, jp.VoteWindow, jp.ChallengeWindow, jp.LivenessEpochs = 30, 40, 1000, 100
	p.Jobs = &jp
	return p
}

func startJobNet(t *testing.T, p types.Params, accounts int) *jobNet {
	ctx, cancel := context.WithCancel(context.Background())
	nw := testnet.New(t, testnet.Options{Validators: 3, Accounts: accounts, Balance: 10_000_000_000, Params: &p, BlockTime: 100 * time.Millisecond, LogLevel: slog.LevelError})
	n := &jobNet{t: t, ctx: ctx, nw: nw, c: nw.Client(0), params: p}
	if err := nw.WaitHeight(0, 2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.eng = eng
	level := slog.LevelWarn
	if os.Getenv("AGORA_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	var done []chan struct{}
	for i, op := range nw.Operators {
		c := nw.Client(i)
		signer := c.NewSigner(op)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("validator", i)
		jv, err := NewJobVerifier(ctx, c, signer, JobOptions{}, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAuditor(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWorker(c, a, signer, nil, log).WithJobs(jv)
		w.interval = 100 * time.Millisecond
		ch := make(chan struct{})
		done = append(done, ch)
		go func() { defer close(ch); w.Run(ctx) }()
		n.verifiers = append(n.verifiers, jv)
	}
	t.Cleanup(func() {
		cancel()
		for _, ch := range done {
			<-ch
		}
		for _, v := range n.verifiers {
			v.Close(context.Background())
		}
		eng.Close(context.Background())
	})
	return n
}

func (n *jobNet) send(s *client.Signer, msg any) *client.TxResult {
	n.t.Helper()
	res, err := s.Send(n.ctx, msg)
	if err != nil {
		n.t.Fatalf("%T: %v", msg, err)
	}
	return res
}

// provider bonds and registers account i as a wasm provider served by a
// simulated executor.
func (n *jobNet) provider(i int) (*client.Signer, *jobsim.Provider) {
	s := n.c.NewSigner(n.nw.Accounts[i])
	p := jobsim.NewProvider(n.t)
	n.send(s, &types.MsgBondProvider{Amount: n.params.MinProviderStake})
	n.send(s, &types.MsgRegisterProvider{Info: &types.ProviderInfo{Endpoint: p.Srv.URL, Capabilities: []string{"wasm"}}})
	return s, p
}

const (
	testGas        = 1 << 20
	testPrice      = 1_000_000 // uagr per million gas: 1 per gas
	testCollateral = 5_000_000
)

// order submits the counter job of steps steps (one input) for owner,
// puts its blobs in each provider's store (the owner's upload), has the
// bidders bid, and returns the order and its leases by provider once it
// cleared.
func (n *jobNet) order(owner *client.Signer, steps int64, r uint32, bidders map[*client.Signer]*jobsim.Provider) *testOrder {
	return n.orderOf(owner, steps, r, 100, testGas, bidders)
}

func (n *jobNet) orderOf(owner *client.Signer, steps int64, r uint32, every, gas uint64, bidders map[*client.Signer]*jobsim.Provider) *testOrder {
	t := n.t
	mod, input := jobsim.CounterModule(steps), []byte("an input the job does not read, checked all the same")
	for _, p := range bidders {
		for _, b := range [][]byte{mod, input} {
			if _, err := p.Store.PutBytes(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	mid, iid := blob.Of(mod), blob.Of(input)
	h := n.nw.Height(0)
	res := n.send(owner, &types.MsgSubmitJob{ModuleHash: mid[:], InputHashes: [][]byte{iid[:]}, GasLimit: gas, MemoryPages: 4,
		MaxPrice: testPrice, Deadline: h + 2000, Collateral: testCollateral, Replication: r, BidWindow: 3, CheckpointInterval: every,
		Escrow: uint64(r) * gas})
	var id uint64
	fmt.Sscan(res.Events["order_id"], &id)
	for s := range bidders {
		n.send(s, &types.MsgBidJob{OrderId: id, Price: testPrice, Collateral: testCollateral})
	}
	var o api.JobOrderView
	poll.Until(t, 60*time.Second, fmt.Sprintf("order %d cleared", id), func() (bool, string) {
		var err error
		o, err = n.c.JobOrder(n.ctx, id)
		return err == nil && o.Status == "running", fmt.Sprint(o.Status, o.Reason, err)
	})
	leases := map[string]uint64{}
	for _, lid := range o.LeaseIDs {
		l, err := n.c.JobLease(n.ctx, lid)
		if err != nil {
			t.Fatal(err)
		}
		leases[l.Provider.String()] = lid
	}
	spec, err := jobs.SpecOf(n.nw.ChainID, o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.eng.Compile(n.ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	job := wasm.Job{Seed: spec.Seed, Gas: spec.Gas, MemoryPages: spec.MemoryPages, CheckpointEvery: spec.CheckpointEvery}
	for _, in := range spec.Inputs {
		job.Inputs = append(job.Inputs, wasm.Blob{Name: in.Name, Data: input})
	}
	return &testOrder{JobOrderView: o, leases: leases, mod: m, job: job}
}

// testOrder is a cleared order and the job protocol/jobs maps it to.
type testOrder struct {
	api.JobOrderView
	leases map[string]uint64 // by provider address
	mod    *wasm.Module
	job    wasm.Job
}

// run computes a provider's run of the order's job (tamper 0: honest), as
// an executor would.
func (o *testOrder) run(t *testing.T, tamper uint64) *jobsim.Run {
	return jobsim.NewRun(t, o.mod, o.job, tamper, min(o.CheckpointInterval, 1000))
}

func (n *jobNet) balance(a types.Address, height int64) uint64 {
	var v api.AccountView
	if err := n.c.Query(n.ctx, api.AccountPath(a), height, &v); err != nil {
		n.t.Fatal(err)
	}
	return v.Balance
}

func (n *jobNet) resolved(lease uint64, timeout time.Duration) api.JobDisputeView {
	var d api.JobDisputeView
	poll.Until(n.t, timeout, fmt.Sprintf("a dispute over lease %d resolved", lease), func() (bool, string) {
		ds, err := n.c.JobLeaseDisputes(n.ctx, lease)
		if err != nil || len(ds) == 0 {
			return false, fmt.Sprint(len(ds), err)
		}
		d = ds[len(ds)-1]
		return d.Outcome != "", fmt.Sprintf("dispute %d phase %s %d..%d moves %d", d.ID, d.Phase, d.Lo, d.Hi, d.Moves)
	})
	return d
}

// validatorRewards is what each validator earned from the epochs settled
// in blocks (from, to]: the validators have equal bonds and submit no
// scores, so each gets a third of an epoch's validator rewards.
func (n *jobNet) validatorRewards(from, to int64) uint64 {
	var sum uint64
	for e := uint64(0); ; e++ {
		var ep api.EpochView
		if err := n.c.Query(n.ctx, api.EpochPath(e), to, &ep); err != nil || ep.StartHeight > to {
			return sum
		}
		if ep.Settled && ep.SettleHeight > from && ep.SettleHeight <= to {
			if ep.ValidatorRewards%uint64(len(n.verifiers)) != 0 {
				n.t.Fatalf("epoch %d's validator rewards %d do not split evenly", e, ep.ValidatorRewards)
			}
			sum += ep.ValidatorRewards / uint64(len(n.verifiers))
		}
	}
}

func (n *jobNet) verifierOf(a types.Address) *JobVerifier {
	for _, v := range n.verifiers {
		if bytes.Equal(v.signer.Address(), a) {
			return v
		}
	}
	return nil
}

func (n *jobNet) findings(lease uint64) map[uint64]JobFinding {
	out := map[uint64]JobFinding{}
	for _, f := range n.verifiers[0].Findings() {
		if f.Lease == lease {
			out[f.Index] = f
		}
	}
	return out
}

// The validators' workers audit every sampled checkpoint: an honest
// provider's pass and nothing is challenged; a provider whose second
// checkpoint is wrong from step 150 on is challenged, the bisection
// against its (scripted) defender narrows to step 150, the two validators
// not party to it vote, and it is slashed with the balances chain/jobs
// defines. Then the owner challenges an honest checkpoint and, picking
// wrong, loses its bond to the provider.
func TestJobVerificationOnTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("testnet")
	}
	n := startJobNet(t, jobTestParams(), 3)
	k := n.params.Jobs.BisectionK
	owner := n.c.NewSigner(n.nw.Accounts[0])
	hs, hp := n.provider(1)
	ls, lp := n.provider(2)
	oa := n.order(owner, 300, 1, map[*client.Signer]*jobsim.Provider{hs: hp})
	ob := n.order(owner, 300, 1, map[*client.Signer]*jobsim.Provider{ls: lp})
	la, lb := oa.leases[hs.Address().String()], ob.leases[ls.Address().String()]
	honest, liar := oa.run(t, 0), ob.run(t, 150)
	hp.Serve(la, honest)
	lp.Serve(lb, liar)
	hd := jobsim.Defend(n.ctx, t, n.c, hs, k, map[uint64]*jobsim.Run{la: honest})
	ld := jobsim.Defend(n.ctx, t, n.c, ls, k, map[uint64]*jobsim.Run{lb: liar})

	for i := uint64(1); i <= 3; i++ {
		n.send(hs, honest.Checkpoint(la, i))
	}
	n.send(ls, liar.Checkpoint(lb, 1))
	fees0 := map[*JobVerifier]uint64{}
	for _, v := range n.verifiers {
		fees0[v] = v.FeesPaid()
	}
	lpv, err := n.c.Provider(n.ctx, ls.Address())
	if err != nil {
		t.Fatal(err)
	}
	n.send(ls, liar.Checkpoint(lb, 2))

	// Sampled audits: the honest lease passes, the liar's second
	// checkpoint does not.
	poll.Until(t, 90*time.Second, "every checkpoint audited", func() (bool, string) {
		a, b := n.findings(la), n.findings(lb)
		return len(a) == 3 && len(b) == 2, fmt.Sprintf("honest %v, liar %v", a, b)
	})
	for i, f := range n.findings(la) {
		if !f.OK || f.Fault != "" {
			t.Fatalf("honest checkpoint %d: %+v", i, f)
		}
	}
	// (The state at step 100 is the same in both orders' jobs — the
	// counter draws no randomness — so it may come from the cache.)
	if f := n.findings(lb); !f[1].OK || f[2].OK || f[2].Fault != JobFaultWrongState || (f[2].PreSource != "provider" && f[2].PreSource != "cache") {
		t.Fatalf("liar's findings %+v", f)
	}

	d := n.resolved(lb, 120*time.Second)
	h := n.nw.Height(0)
	if d.Outcome != "challenger" || d.Lo != 149 || d.Hi != 150 || d.Index != 2 {
		t.Fatalf("dispute over the liar: %+v", d)
	}
	if !bytes.Equal(d.Defender, ls.Address()) || n.verifierOf(d.Challenger) == nil {
		t.Fatalf("dispute parties: challenger %s defender %s", d.Challenger, d.Defender)
	}
	l, err := n.c.JobLease(n.ctx, lb)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := n.c.JobCheckpoints(n.ctx, lb)
	if err != nil || len(cps) != 2 {
		t.Fatalf("liar's checkpoints %v %v", cps, err)
	}
	refund := min(testCollateral, cps[1].Paid)
	reward := (testCollateral - refund) * n.params.Jobs.RewardBps / 10000
	cut := lpv.Bonded * n.params.SlashBps["jobs/wrong_step"] / 10000
	if l.Status != "slashed" || l.Forfeited != testCollateral || d.Refund != refund || d.Reward != reward || d.Slashed != testCollateral+cut {
		t.Fatalf("slash: lease %+v, dispute refund %d reward %d slashed %d; want refund %d reward %d slashed %d", l, d.Refund, d.Reward, d.Slashed, refund, reward, testCollateral+cut)
	}
	if p, err := n.c.Provider(n.ctx, ls.Address()); err != nil || p.Bonded != lpv.Bonded-cut {
		t.Fatalf("liar's bond %d, want %d (%v)", p.Bonded, lpv.Bonded-cut, err)
	}
	pre := d.OpenedHeight - 1
	cv := n.verifierOf(d.Challenger)
	vr := n.validatorRewards(pre, h)
	if got, want := int64(n.balance(d.Challenger, h))-int64(n.balance(d.Challenger, pre)), int64(reward)-int64(cv.FeesPaid()-fees0[cv])+int64(vr); got != want {
		t.Errorf("challenger's balance moved by %d, want reward %d less its fees %d plus its epoch rewards %d", got, reward, cv.FeesPaid()-fees0[cv], vr)
	}
	if got, want := n.balance(owner.Address(), h)-n.balance(owner.Address(), pre), refund+l.Budget-l.Paid; got != want {
		t.Errorf("owner's balance moved by %d, want refund %d + unspent budget %d", got, refund, l.Budget-l.Paid)
	}
	if got, want := int64(n.balance(ls.Address(), h))-int64(n.balance(ls.Address(), pre)), -int64(ld.Fees.Load()); got != want {
		t.Errorf("liar's balance moved by %d, want its bisect fees %d", got, want)
	}

	// The owner challenges the honest provider's checkpoint 2 and picks
	// the first part every time: the referees confirm the defender's step
	// and the owner's bond goes to the provider.
	bond := n.params.Jobs.DisputeBond
	ownerFees := n.send(owner, &types.MsgChallengeCheckpoint{LeaseId: la, Index: 2}).Fee
	var picked uint32
	var wrong api.JobDisputeView
	poll.Until(t, 120*time.Second, "the owner's dispute resolved", func() (bool, string) {
		ds, err := n.c.JobLeaseDisputes(n.ctx, la)
		if err != nil || len(ds) != 1 {
			return false, fmt.Sprint(ds, err)
		}
		wrong = ds[0]
		if wrong.Phase == "pick" && wrong.Moves > picked {
			res, err := owner.Send(n.ctx, &types.MsgPickInterval{DisputeId: wrong.ID, Part: 0})
			if res != nil {
				ownerFees += res.Fee
			}
			if err == nil {
				picked = wrong.Moves
			}
		}
		return wrong.Outcome != "", fmt.Sprintf("phase %s %d..%d", wrong.Phase, wrong.Lo, wrong.Hi)
	})
	h = n.nw.Height(0)
	pre = wrong.OpenedHeight - 1
	if wrong.Outcome != "defender" || wrong.Lo != 100 || wrong.Hi != 101 || wrong.Reward != bond {
		t.Fatalf("the owner's dispute: %+v", wrong)
	}
	if got, want := int64(n.balance(owner.Address(), h))-int64(n.balance(owner.Address(), pre)), -int64(bond+ownerFees); got != want {
		t.Errorf("owner's balance moved by %d, want -(bond %d + fees %d)", got, bond, ownerFees)
	}
	if got, want := int64(n.balance(hs.Address(), h))-int64(n.balance(hs.Address(), pre)), int64(bond)-int64(hd.Fees.Load()); got != want {
		t.Errorf("honest provider's balance moved by %d, want bond %d less its bisect fees %d", got, bond, hd.Fees.Load())
	}
	if l, err := n.c.JobLease(n.ctx, la); err != nil || l.Status != "done" || l.Forfeited != 0 {
		t.Fatalf("honest lease after the owner's dispute: %+v %v", l, err)
	}
	if p, err := n.c.Provider(n.ctx, hs.Address()); err != nil || p.Bonded != n.params.MinProviderStake {
		t.Fatalf("honest provider's bond %d (%v)", p.Bonded, err)
	}
	// Two votes on the liar's step, at least two on the owner's (a
	// verifier counts its vote once Send sees it committed).
	poll.Until(t, 30*time.Second, "four referee votes counted", func() (bool, string) {
		var votes float64
		for _, v := range n.verifiers {
			votes += testutilCounter(v.m.votes)
		}
		return votes >= 4, fmt.Sprint(votes)
	})
}

func testutilCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// A dispute over one checkpoint of 10^5 steps, end to end on a testnet:
// the sampled audit re-executes the interval, the challenger and the
// defender bisect (k = 8) down to the altered step, and the referees vote.
// It counts the txs and blocks (BENCHMARKS.md).
func TestJobDisputeOver100kSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("testnet")
	}
	const steps, tamper = 100_000, 61_803
	n := startJobNet(t, jobTestParams(), 2)
	k := n.params.Jobs.BisectionK
	owner := n.c.NewSigner(n.nw.Accounts[0])
	ls, lp := n.provider(1)
	o := n.orderOf(owner, steps, 1, steps, 1<<23, map[*client.Signer]*jobsim.Provider{ls: lp})
	lease := o.leases[ls.Address().String()]
	t0 := time.Now()
	liar := o.run(t, tamper)
	t.Logf("the liar's run: %d steps in %v", liar.Steps, time.Since(t0))
	lp.Serve(lease, liar)
	ld := jobsim.Defend(n.ctx, t, n.c, ls, k, map[uint64]*jobsim.Run{lease: liar})
	n.send(ls, liar.Checkpoint(lease, 1))
	var d api.JobDisputeView
	var resolvedBy int64
	poll.Until(t, 120*time.Second, "the 10^5-step dispute resolved", func() (bool, string) {
		ds, err := n.c.JobLeaseDisputes(n.ctx, lease)
		if err != nil || len(ds) == 0 {
			return false, fmt.Sprint(ds, err)
		}
		d = ds[0]
		resolvedBy = n.nw.Height(0)
		return d.Outcome != "", fmt.Sprintf("phase %s %d..%d moves %d", d.Phase, d.Lo, d.Hi, d.Moves)
	})
	if d.Outcome != "challenger" || d.Lo != tamper-1 || d.Hi != tamper {
		t.Fatalf("dispute %+v", d)
	}
	var picks, votes float64
	poll.Until(t, 30*time.Second, "the votes counted", func() (bool, string) {
		picks, votes = 0, 0
		for _, v := range n.verifiers {
			picks += testutilCounter(v.m.picks)
			votes += testutilCounter(v.m.votes)
		}
		return votes >= 2, fmt.Sprint(votes)
	})
	rounds := 0
	for s := uint64(1); s < steps; s *= uint64(k) {
		rounds++
	}
	bisects := ld.Moves.Load()
	txs := 1 + int(bisects) + int(picks) + int(votes)
	t.Logf("dispute over %d steps, k = %d: %d txs (1 challenge, %d bisect, %v pick, %v vote), %d moves on chain, %d blocks from the challenge to the resolution (at most; %d ms blocks)",
		steps, k, txs, bisects, picks, votes, d.Moves, resolvedBy-d.OpenedHeight, 100)
	// Each round is one bisect and one pick; with three equal validators
	// (the challenger among them) both others must vote for 2/3.
	if bisects != uint64(rounds) || int(picks) != rounds || votes != 2 || int(d.Moves) != 2*rounds {
		t.Fatalf("%d bisects, %v picks, %v votes, %d moves; want %d rounds and 2 votes", bisects, picks, votes, d.Moves, rounds)
	}
}
