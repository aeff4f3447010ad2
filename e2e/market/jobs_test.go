package market

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// startExecutor starts a jobs-only provider (an executor registering
// itself with the wasm capability) on a free port.
func startExecutor(t *testing.T, rpc string, key ed25519.PrivateKey, dir string, price uint64, reg *prometheus.Registry) *executor.Executor {
	t.Helper()
	e, err := executor.New(executor.Config{ChainRPC: rpc, Key: key, DataDir: dir, Price: price, MaxCollateral: 10_000_000,
		MaxConcurrent: 2, Listen: "127.0.0.1:0", Register: true, Tick: 100 * time.Millisecond}, e2eutil.QuietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestJobsEndToEnd: an owner submits the ray tracer (one replica) and the
// n-gram counter (two replicas); two executors bid, the chain clears the
// orders, the owner uploads the module and inputs to the leased providers,
// the executors run the jobs and commit their checkpoints, and the owner
// fetches the results, which equal a local run bit for bit, checkpoint by
// checkpoint. The executor running the ray tracer is stopped mid-job and
// restarted: it resumes from its last committed checkpoint. Every balance
// moves exactly: the owner pays the gas, the providers get it less the
// market fee, the fee pool gets the market fee and every tx fee, and the
// jobs account holds what the escrow invariant says (nothing, at the end).
func TestJobsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	params := types.DefaultParams()
	params.EpochLength = 5000 // no reward distribution empties the fee pool meanwhile
	params.Jobs.ChallengeWindow = 5
	nw := testnet.New(t, testnet.Options{Accounts: 3, Params: &params})
	c := nw.Client(0)
	rpc := nw.Configs[0].RPC.Laddr
	ownerKey, keyA, keyB := nw.Accounts[0], nw.Accounts[1], nw.Accounts[2]
	owner := testnet.Addr(ownerKey)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	mods := map[string][]byte{}
	for _, name := range []string{"raytrace", "ngram"} {
		bin, err := examples.Build(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = bin
	}
	var corpus bytes.Buffer
	for i := 0; corpus.Len() < 200_000; i++ {
		fmt.Fprintf(&corpus, "the quick brown fox %d jumps over the lazy dog and the cat sat on the mat %d\n", i%97, i%13)
	}

	dirA, dirB := t.TempDir(), t.TempDir()
	regA := prometheus.NewRegistry()
	exA := startExecutor(t, rpc, keyA, dirA, 1000, regA) // the cheaper: it wins the single-replica order
	exB := startExecutor(t, rpc, keyB, dirB, 1500, prometheus.NewRegistry())
	defer func() { exB.Stop() }()

	// Balances once the executors are registered and idle.
	h0 := nw.Height(0)
	snap0, err := nw.Nodes[0].App().Snapshot(h0)
	if err != nil {
		t.Fatal(err)
	}
	bal0 := func(a types.Address) uint64 { return bank.Balance(snap0, a) }
	owner0, a0, b0, pool0 := bal0(owner), bal0(exA.Address()), bal0(exB.Address()), bal0(bank.FeePool)

	type order struct {
		name     string
		inputs   [][]byte
		replicas uint32
		interval uint64
		id       uint64
	}
	orders := []*order{
		{name: "raytrace", replicas: 1, interval: 1},
		{name: "ngram", inputs: [][]byte{corpus.Bytes()}, replicas: 2, interval: 2},
	}
	ownerSigner := c.NewSigner(ownerKey)
	const gasLimit, maxPrice = 20_000_000_000, 2000
	for _, o := range orders {
		modID := blob.Of(mods[o.name])
		m := &types.MsgSubmitJob{ModuleHash: modID[:], GasLimit: gasLimit, MemoryPages: 1024, MaxPrice: maxPrice, Collateral: 1_000_000,
			Replication: o.replicas, BidWindow: 3, CheckpointInterval: o.interval, Deadline: nw.Height(0) + 2000}
		for _, in := range o.inputs {
			id := blob.Of(in)
			m.InputHashes = append(m.InputHashes, id[:])
		}
		per, _ := jobs.Budget(gasLimit, maxPrice)
		m.Escrow = per * uint64(o.replicas)
		res, err := ownerSigner.Send(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if o.id, err = strconv.ParseUint(res.Events["order_id"], 10, 64); err != nil {
			t.Fatalf("submit events %v", res.Events)
		}
	}
	start := time.Now()
	for _, o := range orders {
		ov, leases, err := jobowner.WaitLeases(ctx, c, o.id, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(leases) != int(o.replicas) {
			t.Fatalf("order %d (%s): %d leases, want %d: %+v", o.id, o.name, len(leases), o.replicas, ov)
		}
		blobs := map[blob.ID][]byte{blob.Of(mods[o.name]): mods[o.name]}
		for _, in := range o.inputs {
			blobs[blob.Of(in)] = in
		}
		if err := jobowner.Upload(ctx, c, ownerKey, o.id, leases, blobs, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Refusals: an upload not signed by the owner, and a blob that is not
	// the order's.
	{
		_, leases, _ := jobowner.WaitLeases(ctx, c, orders[0].id, time.Second)
		err := jobowner.Upload(ctx, c, keyB, orders[0].id, leases, map[blob.ID][]byte{blob.Of(mods["raytrace"]): mods["raytrace"]}, nil)
		if err == nil || !strings.Contains(err.Error(), "does not own order") {
			t.Fatalf("an upload signed by another account: %v", err)
		}
		other := []byte("not the order's blob")
		err = jobowner.Upload(ctx, c, ownerKey, orders[0].id, leases, map[blob.ID][]byte{blob.Of(other): other}, nil)
		if err == nil || !strings.Contains(err.Error(), "neither order") {
			t.Fatalf("an upload of another blob: %v", err)
		}
	}

	// The ray tracer's executor stops after two checkpoints and restarts.
	rt, err := c.JobOrder(ctx, orders[0].id)
	if err != nil {
		t.Fatal(err)
	}
	rtLease := rt.LeaseIDs[0]
	poll.Until(t, 180*time.Second, "two ray tracer checkpoints", func() (bool, string) {
		l, err := c.JobLease(ctx, rtLease)
		return err == nil && l.Checkpoints >= 2, fmt.Sprint(l.Checkpoints, l.Status, err)
	})
	if err := exA.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped, err := c.JobLease(ctx, rtLease)
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != "running" {
		t.Fatalf("the ray tracer finished before its executor stopped: %+v", stopped)
	}
	regA2 := prometheus.NewRegistry()
	exA = startExecutor(t, rpc, keyA, dirA, 1000, regA2)
	defer func() { exA.Stop() }()

	// Results: fetched, checked against the chain, equal to a local run.
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	chainID, _ := c.ChainID(ctx)
	var allLeases []api.JobLeaseView
	for _, o := range orders {
		m, err := eng.Compile(ctx, mods[o.name])
		if err != nil {
			t.Fatal(err)
		}
		job := wasm.Job{Seed: pjobs.JobSeed(chainID, o.id), Gas: gasLimit, MemoryPages: 1024, CheckpointEvery: o.interval}
		for i, in := range o.inputs {
			job.Inputs = append(job.Inputs, wasm.Blob{Name: pjobs.InputName(i), Data: in})
		}
		local, err := m.Run(ctx, job)
		if err != nil || local.Failure != nil {
			t.Fatalf("local run of %s: %v %v", o.name, err, local.Failure)
		}
		want := &pjobs.Results{}
		for _, b := range local.Outputs {
			want.Outputs = append(want.Outputs, pjobs.Output{Name: b.Name, ID: blob.Of(b.Data), Size: uint64(len(b.Data))})
		}
		ov, _ := c.JobOrder(ctx, o.id)
		for _, lid := range ov.LeaseIDs {
			var l api.JobLeaseView
			poll.Until(t, 240*time.Second, fmt.Sprintf("lease %d (%s) done", lid, o.name), func() (bool, string) {
				l, err = c.JobLease(ctx, lid)
				return err == nil && l.Status == "done", fmt.Sprint(l.Status, l.Checkpoints, err)
			})
			got, err := jobowner.Fetch(ctx, c, l, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if got.List.ID() != want.ID() || len(got.Outputs) != len(local.Outputs) {
				t.Fatalf("%s lease %d: result list %s, the local run's %s", o.name, lid, got.List.ID(), want.ID())
			}
			for _, b := range local.Outputs {
				if !bytes.Equal(got.Outputs[b.Name], b.Data) {
					t.Fatalf("%s lease %d: output %s differs from the local run", o.name, lid, b.Name)
				}
			}
			// Checkpoint by checkpoint: the chain holds the local run's states.
			cps, err := c.JobCheckpoints(ctx, lid)
			if err != nil {
				t.Fatal(err)
			}
			if len(cps) != len(local.Checkpoints)-1 {
				t.Fatalf("%s lease %d: %d checkpoints on chain, the local run has %d after the initial state", o.name, lid, len(cps), len(local.Checkpoints)-1)
			}
			for i, cp := range cps {
				lc := local.Checkpoints[i+1]
				if cp.Steps != lc.Step || cp.GasUsed != lc.GasUsed || !bytes.Equal(cp.StateHash, lc.State[:]) {
					t.Fatalf("%s lease %d checkpoint %d: chain %d steps %d gas %x, local %d steps %d gas %x", o.name, lid, cp.Index, cp.Steps, cp.GasUsed, []byte(cp.StateHash), lc.Step, lc.GasUsed, lc.State)
				}
			}
			if lid == rtLease {
				// The restarted executor resumed: it ran only what was left.
				var st pjobs.LeaseStatus
				poll.Until(t, 10*time.Second, "the executor's view of the lease done", func() (bool, string) {
					e2eutil.GetJSON(t, exA.URL()+pjobs.LeasePath(lid), &st)
					return st.Phase == "done", st.Phase
				})
				if st.ResumedAt < stopped.Steps || st.Phase != "done" || st.Results != got.List.ID().String() {
					t.Fatalf("the restarted executor's view of lease %d: %+v (stopped at step %d)", lid, st, stopped.Steps)
				}
				if g := gasCounter(t, regA2); g == 0 {
					t.Fatal("the restarted executor's gas metric is 0")
				}
			}
			allLeases = append(allLeases, l)
		}
		if strings.Contains(o.name, "ngram") && !bytes.Contains(local.Outputs[0].Data, []byte("the")) {
			t.Fatalf("ngram's stdout: %q", local.Outputs[0].Data)
		}
	}
	t.Logf("submit to every result: %v", time.Since(start).Round(10*time.Millisecond))

	// Collateral comes back after the challenge window.
	poll.Until(t, 60*time.Second, "collateral released", func() (bool, string) {
		for _, l := range allLeases {
			lv, err := c.JobLease(ctx, l.ID)
			if err != nil || !lv.CollateralReleased {
				return false, fmt.Sprint(l.ID, err)
			}
		}
		return true, ""
	})
	// Then the executors drop the leases' states (nobody can challenge
	// them any more); the results stay.
	poll.Until(t, 30*time.Second, "settled leases' states removed", func() (bool, string) {
		for _, dir := range []string{dirA, dirB} {
			if ents, _ := os.ReadDir(filepath.Join(dir, "leases")); len(ents) > 0 {
				return false, fmt.Sprint(dir, len(ents))
			}
		}
		return true, ""
	})
	if !exA.Store().Has(blob.ID(allLeases[0].ResultHash)) {
		t.Fatal("the result list is gone with the states")
	}
	// Read every balance at one height, and the fees of every tx up to it.
	h1 := nw.Height(0)
	snap, err := nw.Nodes[0].App().Snapshot(h1)
	if err != nil {
		t.Fatal(err)
	}
	// The escrow invariant (and the supply's) held after every block of
	// the run.
	for h := h0; h <= h1; h++ {
		s, err := nw.Nodes[0].App().Snapshot(h)
		if err != nil {
			t.Fatalf("state at height %d: %v", h, err)
		}
		if err := app.CheckInvariants(s); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
	}
	held, err := jobs.Held(snap)
	if err != nil {
		t.Fatal(err)
	}
	if bal := bank.Balance(snap, jobs.Account); bal != held || bal != 0 {
		t.Fatalf("jobs account %d, escrow invariant's sum %d (want both 0 once every lease settled)", bal, held)
	}
	fees := func(a types.Address) uint64 {
		var f uint64
		for _, tx := range txsUpTo(t, c, a, h0, h1) {
			f += tx
		}
		return f
	}
	fo, fa, fb := fees(owner), fees(exA.Address()), fees(exB.Address())
	var paid, marketFee uint64
	earned := map[string]uint64{}
	for _, l := range allLeases {
		cps, _ := c.JobCheckpoints(ctx, l.ID)
		var lp uint64
		for _, cp := range cps {
			f := cp.Paid * params.Jobs.FeeBps / 10000
			marketFee += f
			earned[l.Provider.String()] += cp.Paid - f
			lp += cp.Paid
		}
		if lp != l.Paid || lp != jobs.Cost(l.GasUsed, l.Price) {
			t.Fatalf("lease %d paid %d by checkpoint, %d on the lease, %d for its gas", l.ID, lp, l.Paid, jobs.Cost(l.GasUsed, l.Price))
		}
		paid += lp
	}
	bal := func(a types.Address) uint64 { return bank.Balance(snap, a) }
	if got, want := bal(owner), owner0-fo-paid; got != want {
		t.Fatalf("owner balance %d, want %d (fees %d, paid %d)", got, want, fo, paid)
	}
	if got, want := bal(exA.Address()), a0-fa+earned[exA.Address().String()]; got != want {
		t.Fatalf("executor A balance %d, want %d", got, want)
	}
	if got, want := bal(exB.Address()), b0-fb+earned[exB.Address().String()]; got != want {
		t.Fatalf("executor B balance %d, want %d", got, want)
	}
	if got, want := bal(bank.FeePool), pool0+fo+fa+fb+marketFee; got != want {
		t.Fatalf("fee pool %d, want %d (tx fees %d, market fees %d)", got, want, fo+fa+fb, marketFee)
	}
}

// txsUpTo lists the fees of addr's txs in heights (h0, h1].
func txsUpTo(t *testing.T, c *client.Client, addr types.Address, h0, h1 int64) []uint64 {
	t.Helper()
	var out []uint64
	for page := 1; ; page++ {
		perPage := 100
		res, err := c.RPC().TxSearch(context.Background(), fmt.Sprintf("agora.signer='%s' AND tx.height>%d AND tx.height<=%d", addr, h0, h1), false, &page, &perPage, "asc")
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range res.Txs {
			attrs := map[string]string{}
			for _, ev := range tx.TxResult.Events {
				for _, a := range ev.Attributes {
					attrs[a.Key] = a.Value
				}
			}
			f, err := strconv.ParseUint(attrs["fee"], 10, 64)
			if err != nil {
				t.Fatalf("tx without a fee attribute: %v", attrs)
			}
			out = append(out, f)
		}
		if page*perPage >= res.TotalCount {
			return out
		}
	}
}

func gasCounter(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "agora_executor_gas_executed_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
