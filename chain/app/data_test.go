package app

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
)

// The data market's tests run on the job harness: "downer" owns datasets
// hosted by p1, "buyer" buys from them.

func moduleHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// publishMsg is a dataset hosted by p1 that sells downloads at 1 AGR and
// runs of module "module" at 2 AGR, to anyone.
func (j *jobsH) publishMsg() *types.MsgPublishDataset {
	return &types.MsgPublishDataset{Root: moduleHash("corpus"), Size: 11_000_000, Name: "brown", Description: "the Brown corpus",
		Licence: "public domain", Host: j.addr("p1"), Download: true, DownloadPrice: 1_000_000, RunPrice: 2_000_000,
		AllowedModules: [][]byte{moduleHash("module")}, OutputCap: 1 << 20}
}

func (j *jobsH) dataset(id uint64) api.DatasetView {
	j.t.Helper()
	v, _, err := j.app.QueryJSON(api.DatasetPath(id), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.(api.DatasetView)
}

func (j *jobsH) grants(dataset uint64, buyer types.Address) []api.DataGrantView {
	j.t.Helper()
	v, _, err := j.app.QueryJSON(api.DataGrantsPath(dataset, buyer), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.([]api.DataGrantView)
}

func updateOf(d api.DatasetView) *types.MsgUpdateDataset {
	m := &types.MsgUpdateDataset{Id: d.ID, Description: d.Description, Licence: d.Licence, Download: d.Download,
		DownloadPrice: d.DownloadPrice, RunPrice: d.RunPrice, OutputCap: d.OutputCap}
	for _, x := range d.AllowedModules {
		m.AllowedModules = append(m.AllowedModules, x)
	}
	for _, x := range d.Buyers {
		m.Buyers = append(m.Buyers, x)
	}
	for _, x := range d.Auditors {
		m.Auditors = append(m.Auditors, x)
	}
	return m
}

// TestDataPublishUpdateRetire: a dataset is recorded with its terms
// exactly; only its owner updates or retires it; a host that is not a
// registered wasm provider, an open dataset whose output cap is more than
// an aggregate's, an auditor that is not a validator and malformed terms
// are refused with nothing changed.
func TestDataPublishUpdateRetire(t *testing.T) {
	j := newJobsHarness(t, nil)
	const (
		malformed = types.CodeMalformed
		invalid   = types.CodeInvalid
		unauth    = types.CodeUnauthorized
		notFound  = types.CodeNotFound
	)
	m := j.publishMsg()
	with := func(f func(*types.MsgPublishDataset)) *types.MsgPublishDataset {
		c := proto.Clone(m).(*types.MsgPublishDataset)
		f(c)
		return c
	}
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Host = j.addr("outsider") }), invalid, "is not a registered provider")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Host = j.addr("nocap") }), invalid, `does not declare the "wasm" capability`)
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.AllowedModules = nil; c.OutputCap = 4097 }), invalid,
		"output_cap 4097 is above max_aggregate_output 4096")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Auditors = [][]byte{j.addr("v2")} }), invalid, "is not a validator")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Root = c.Root[:31] }), malformed, "root must be a 32-byte blob id")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Size = 0 }), malformed, "size must be between 1")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Name = "../etc" }), malformed, "is not a plain file name")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Download = false }), malformed, "download_price given but downloads are not sold")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.OutputCap = 0 }), malformed, "output_cap must be positive")
	j.bad("downer", with(func(c *types.MsgPublishDataset) { c.Buyers = [][]byte{j.addr("buyer"), j.addr("buyer")} }), malformed, "given twice")

	m.Auditors = [][]byte{j.addr("operator")}
	m.Buyers = [][]byte{j.addr("buyer")}
	j.ok("downer", m)
	at := j.height
	d := j.dataset(1)
	want := api.DatasetView{ID: 1, Owner: j.addr("downer"), Root: m.Root, Size: 11_000_000, Name: "brown", Description: "the Brown corpus",
		Licence: "public domain", Host: j.addr("p1"), Download: true, DownloadPrice: 1_000_000, RunPrice: 2_000_000,
		AllowedModules: []types.HexBytes{moduleHash("module")}, OutputCap: 1 << 20, Buyers: []types.Address{j.addr("buyer")},
		Auditors: []types.Address{j.addr("operator")}, PublishedHeight: at, UpdatedHeight: at}
	if !viewsEqual(d, want) {
		t.Fatalf("dataset:\n got %+v\nwant %+v", d, want)
	}
	if v, _, err := j.app.QueryJSON(api.DatasetsByOwnerPath(j.addr("downer")), 0); err != nil || len(v.([]api.DatasetView)) != 1 {
		t.Fatalf("by owner: %v %v", v, err)
	}

	u := updateOf(d)
	u.RunPrice, u.Description, u.Buyers = 3_000_000, "tagged", nil
	j.bad("outsider", u, unauth, "only dataset 1's owner")
	j.bad("downer", &types.MsgUpdateDataset{Id: 9, OutputCap: 1}, notFound, "dataset 9 does not exist")
	j.bad("downer", with2(u, func(c *types.MsgUpdateDataset) { c.AllowedModules = nil }), invalid, "may release aggregates only")
	j.ok("downer", u)
	d = j.dataset(1)
	if d.RunPrice != 3_000_000 || d.Description != "tagged" || len(d.Buyers) != 0 || d.UpdatedHeight != j.height || d.PublishedHeight != at ||
		d.Name != "brown" || d.Host.String() != j.addr("p1").String() {
		t.Fatalf("after update: %+v", d)
	}

	j.bad("outsider", &types.MsgRetireDataset{Id: 1}, unauth, "only dataset 1's owner")
	j.ok("downer", &types.MsgRetireDataset{Id: 1})
	if d := j.dataset(1); !d.Retired || d.UpdatedHeight != j.height {
		t.Fatalf("after retire: %+v", d)
	}
	j.bad("downer", &types.MsgRetireDataset{Id: 1}, invalid, "dataset 1 is retired")
	j.bad("downer", u, invalid, "dataset 1 is retired")

	// A chain whose genesis has no data params has no data market.
	n := newJobsHarness(t, func(p *types.Params) { p.Data = nil })
	n.bad("downer", n.publishMsg(), invalid, "this chain has no data market")
	n.bad("buyer", n.c2dMsg(1), invalid, "this chain has no data market")
}

func with2(m *types.MsgUpdateDataset, f func(*types.MsgUpdateDataset)) *types.MsgUpdateDataset {
	c := proto.Clone(m).(*types.MsgUpdateDataset)
	f(c)
	return c
}

func viewsEqual(a, b api.DatasetView) bool {
	return proto.Equal(datasetOf(a), datasetOf(b))
}

func datasetOf(v api.DatasetView) *types.Dataset {
	d := &types.Dataset{Id: v.ID, Owner: v.Owner, Root: v.Root, Size: v.Size, Name: v.Name, Description: v.Description,
		Licence: v.Licence, Host: v.Host, Download: v.Download, DownloadPrice: v.DownloadPrice, RunPrice: v.RunPrice,
		OutputCap: v.OutputCap, Retired: v.Retired, PublishedHeight: v.PublishedHeight, UpdatedHeight: v.UpdatedHeight,
		Grants: v.Grants, Runs: v.Runs, Earned: v.Earned}
	for _, x := range v.AllowedModules {
		d.AllowedModules = append(d.AllowedModules, x)
	}
	for _, x := range v.Buyers {
		d.Buyers = append(d.Buyers, x)
	}
	for _, x := range v.Auditors {
		d.Auditors = append(d.Auditors, x)
	}
	return d
}

// TestDataBuyAccess: a grant costs the buyer exactly the download price;
// the owner gets it minus fee_bps, the fee pool the fee; a second grant,
// a price above max_price, a buyer not on the list, a dataset that sells
// no downloads and a retired dataset are refused, nothing charged.
func TestDataBuyAccess(t *testing.T) {
	j := newJobsHarness(t, nil)
	m := j.publishMsg()
	m.Buyers = [][]byte{j.addr("buyer"), j.addr("owner")}
	j.ok("downer", m)
	runOnly := j.publishMsg()
	runOnly.Download, runOnly.DownloadPrice = false, 0
	j.ok("downer", runOnly)

	buyer0, owner0, pool0, fees0 := j.bal("buyer"), j.bal("downer"), j.modBal(bank.FeePool), j.allFees()
	bf0, of0 := j.fees["buyer"], j.fees["downer"]
	j.bad("buyer", &types.MsgBuyAccess{DatasetId: 1, MaxPrice: 999_999}, types.CodeInvalid, "download_price 1000000 is above max_price 999999")
	j.bad("outsider", &types.MsgBuyAccess{DatasetId: 1, MaxPrice: 1_000_000}, types.CodeUnauthorized, "is not among dataset 1's allowed buyers")
	j.bad("buyer", &types.MsgBuyAccess{DatasetId: 2, MaxPrice: 1_000_000}, types.CodeInvalid, "dataset 2 does not sell downloads")
	j.bad("buyer", &types.MsgBuyAccess{DatasetId: 7, MaxPrice: 1_000_000}, types.CodeNotFound, "dataset 7 does not exist")
	j.bad("downer", &types.MsgBuyAccess{DatasetId: 1, MaxPrice: 1_000_000}, types.CodeInvalid, "reads it without a grant")
	if g := j.grants(1, j.addr("buyer")); len(g) != 0 {
		t.Fatalf("grants before buying: %v", g)
	}

	j.ok("buyer", &types.MsgBuyAccess{DatasetId: 1, MaxPrice: 1_500_000})
	fee := uint64(1_000_000 * 500 / 10000) // fee_bps 500: 50,000
	if got, want := j.bal("buyer"), buyer0-1_000_000-(j.fees["buyer"]-bf0); got != want {
		t.Fatalf("buyer %d, want %d", got, want)
	}
	if got, want := j.bal("downer"), owner0+1_000_000-fee-(j.fees["downer"]-of0); got != want {
		t.Fatalf("owner %d, want %d (paid exactly 950,000)", got, want)
	}
	if got, want := j.modBal(bank.FeePool), pool0+(j.allFees()-fees0)+fee; got != want {
		t.Fatalf("fee pool %d, want %d", got, want)
	}
	gs := j.grants(1, j.addr("buyer"))
	if len(gs) != 1 || gs[0].ID != 1 || gs[0].Price != 1_000_000 || gs[0].Buyer.String() != j.addr("buyer").String() || gs[0].Height != j.height {
		t.Fatalf("grants: %+v", gs)
	}
	if v, _, err := j.app.QueryJSON(api.DataGrantPath(1), 0); err != nil || fmt.Sprint(v.(api.DataGrantView)) != fmt.Sprint(gs[0]) {
		t.Fatalf("grant 1: %v %v", v, err)
	}
	if d := j.dataset(1); d.Grants != 1 || d.Earned != 1_000_000-fee {
		t.Fatalf("dataset after a grant: %+v", d)
	}
	j.bad("buyer", &types.MsgBuyAccess{DatasetId: 1, MaxPrice: 1_000_000}, types.CodeInvalid, "already holds grant 1 on dataset 1")
	if g := j.grants(1, j.addr("owner")); len(g) != 0 {
		t.Fatalf("owner has grants: %v", g)
	}
	if v, _, _ := j.app.QueryJSON(api.DataGrantsByBuyerPath(j.addr("buyer")), 0); len(v.([]api.DataGrantView)) != 1 {
		t.Fatalf("grants by buyer: %v", v)
	}

	j.ok("downer", &types.MsgRetireDataset{Id: 1})
	j.bad("owner", &types.MsgBuyAccess{DatasetId: 1, MaxPrice: 1_000_000}, types.CodeInvalid, "dataset 1 is retired: it sells no more grants")
	// The grant bought before stays.
	if g := j.grants(1, nil); len(g) != 1 {
		t.Fatalf("grants after retiring: %v", g)
	}
}

// c2dMsg is a compute-to-data order on dataset ds by the buyer: the
// module "module", replication 1, a budget of 1,000 uagr.
func (j *jobsH) c2dMsg(ds uint64) *types.MsgSubmitJob {
	m := submitMsg(j, 1, 1_000_000, 1_000, 10)
	m.ModuleHash = moduleHash("module")
	m.InputHashes = nil
	m.DatasetId, m.BuyerKey = ds, moduleHash("buyer x25519 key")
	return m
}

// c2dLeased submits a c2d order on ds and has the host p1 win it; it
// returns the order after clearing.
func (j *jobsH) c2dLeased(ds uint64) api.JobOrderView { return j.c2dLeasedEvery(ds, 10) }

// c2dLeasedEvery is c2dLeased with a checkpoint every interval steps.
func (j *jobsH) c2dLeasedEvery(ds, interval uint64) api.JobOrderView {
	j.t.Helper()
	m := j.c2dMsg(ds)
	m.CheckpointInterval = interval
	j.ok("buyer", m)
	all := j.ordersOf("buyer")
	id := all[len(all)-1].ID
	j.ok("p1", &types.MsgBidJob{OrderId: id, Price: 1_000, Collateral: m.Collateral})
	j.until(j.order(id).BidWindowEnd)
	o := j.order(id)
	if o.Status != "running" || len(o.LeaseIDs) != 1 {
		j.t.Fatalf("c2d order not leased: %+v", o)
	}
	return o
}

func (j *jobsH) ordersOf(label string) []api.JobOrderView {
	v, _, err := j.app.QueryJSON(api.JobOrdersByOwnerPath(j.addr(label)), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.([]api.JobOrderView)
}

// TestComputeToDataRules: an order on a dataset is refused for a module
// off the allow-list, a buyer off the list, replication above 1, no buyer
// key, a run price above max_run_price and a retired dataset; only the
// host may bid. An accepted order holds escrow + run price and keeps the
// dataset's output cap and run price.
func TestComputeToDataRules(t *testing.T) {
	j := newJobsHarness(t, nil)
	m := j.publishMsg()
	m.Buyers = [][]byte{j.addr("buyer")}
	j.ok("downer", m)
	open := j.publishMsg()
	open.AllowedModules, open.OutputCap = nil, 4096
	j.ok("downer", open)

	c := j.c2dMsg(1)
	with := func(f func(*types.MsgSubmitJob)) *types.MsgSubmitJob {
		x := proto.Clone(c).(*types.MsgSubmitJob)
		f(x)
		return x
	}
	j.bad("buyer", with(func(x *types.MsgSubmitJob) { x.ModuleHash = moduleHash("copier") }), types.CodeUnauthorized, "is not on dataset 1's allow-list")
	j.bad("outsider", c, types.CodeUnauthorized, "is not among dataset 1's allowed buyers")
	j.bad("buyer", with(func(x *types.MsgSubmitJob) { x.Replication = 2; x.Escrow *= 2 }), types.CodeMalformed, "replication must be 1")
	j.bad("buyer", with(func(x *types.MsgSubmitJob) { x.BuyerKey = nil }), types.CodeMalformed, "needs a 32-byte X25519 buyer_key")
	j.bad("buyer", with(func(x *types.MsgSubmitJob) { x.DatasetId = 0 }), types.CodeMalformed, "only with a dataset_id")
	j.bad("buyer", with(func(x *types.MsgSubmitJob) { x.MaxRunPrice = 1_999_999 }), types.CodeInvalid, "run_price 2000000 is above max_run_price 1999999")
	j.bad("buyer", with(func(x *types.MsgSubmitJob) { x.DatasetId = 9 }), types.CodeNotFound, "dataset 9 does not exist")

	// Any module may run on the open dataset (its cap is an aggregate's).
	buyer0, bf0, jobs0 := j.bal("buyer"), j.fees["buyer"], j.modBal(jobs.Account)
	j.ok("buyer", with(func(x *types.MsgSubmitJob) { x.DatasetId = 2; x.ModuleHash = moduleHash("anything") }))
	if got, want := j.bal("buyer"), buyer0-c.Escrow-2_000_000-(j.fees["buyer"]-bf0); got != want {
		t.Fatalf("buyer %d, want %d (escrow + run price held)", got, want)
	}
	if got := j.modBal(jobs.Account); got != jobs0+c.Escrow+2_000_000 {
		t.Fatalf("jobs account %d, want %d", got, jobs0+c.Escrow+2_000_000)
	}
	o := j.order(1)
	if o.DatasetID != 2 || o.OutputCap != 4096 || o.RunPrice != 2_000_000 || o.RunHeld != 2_000_000 || string(o.BuyerKey) != string(c.BuyerKey) {
		t.Fatalf("c2d order: %+v", o)
	}
	if v, _, _ := j.app.QueryJSON(api.JobOrdersByDatasetPath(2), 0); len(v.([]api.JobOrderView)) != 1 {
		t.Fatalf("orders by dataset: %v", v)
	}
	j.bad("p2", &types.MsgBidJob{OrderId: 1, Price: 1_000, Collateral: c.Collateral}, types.CodeUnauthorized, "order 1 runs on dataset 2: only its host may bid")
	j.ok("p1", &types.MsgBidJob{OrderId: 1, Price: 1_000, Collateral: c.Collateral})

	j.ok("downer", &types.MsgRetireDataset{Id: 1})
	j.bad("buyer", c, types.CodeInvalid, "dataset 1 is retired: it takes no more runs")
}

// TestComputeToDataPayment: the run price is paid to the dataset's owner
// (minus fee_bps to the fee pool) only when the lease ends done with a
// non-zero state; a run that fails deterministically (zero state), one
// cancelled while bidding or running, and one nobody bid on refund it to
// the buyer in full. Every amount exact.
func TestComputeToDataPayment(t *testing.T) {
	j := newJobsHarness(t, nil)
	j.ok("downer", j.publishMsg())
	const run = 2_000_000
	fee := uint64(run * 500 / 10000)

	// Success.
	buyer0, bf0, owner0, of0 := j.bal("buyer"), j.fees["buyer"], j.bal("downer"), j.fees["downer"]
	pool0, fees0 := j.modBal(bank.FeePool), j.allFees()
	o := j.c2dLeased(1)
	lid := o.LeaseIDs[0]
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 10, GasUsed: 300_000, StateHash: hashOf("s", 10)})
	if d := j.dataset(1); d.Runs != 0 || j.bal("downer") != owner0-(j.fees["downer"]-of0) {
		t.Fatalf("run price paid before the run is done: %+v", d)
	}
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 2, Steps: 15, GasUsed: 500_000, StateHash: hashOf("s", 15), Done: true, ResultHash: hashOf("r", 1)})
	if got, want := j.bal("downer"), owner0+run-fee-(j.fees["downer"]-of0); got != want {
		t.Fatalf("owner %d, want %d (run price 2,000,000 minus fee 100,000)", got, want)
	}
	if got, want := j.bal("buyer"), buyer0-run-500-(j.fees["buyer"]-bf0); got != want {
		t.Fatalf("buyer %d, want %d (run price + 500 gas)", got, want)
	}
	gasFee := uint64(300*500/10000) + uint64(200*500/10000)
	if got, want := j.modBal(bank.FeePool), pool0+(j.allFees()-fees0)+fee+gasFee; got != want {
		t.Fatalf("fee pool %d, want %d", got, want)
	}
	if o := j.order(o.ID); o.Status != "done" || o.RunHeld != 0 || o.RunPaid != run {
		t.Fatalf("order after success: %+v", o)
	}
	if d := j.dataset(1); d.Runs != 1 || d.Earned != run-fee {
		t.Fatalf("dataset after a run: %+v", d)
	}

	// refunded checks the buyer got the run price back (and paid only the
	// gas it was billed) and the owner nothing.
	refunded := func(name string, o api.JobOrderView, gas uint64, buyer0, bf0, owner0, of0 uint64) {
		t.Helper()
		o = j.order(o.ID)
		if o.RunHeld != 0 || o.RunPaid != 0 {
			t.Fatalf("%s: order %+v", name, o)
		}
		if got, want := j.bal("buyer"), buyer0-gas-(j.fees["buyer"]-bf0); got != want {
			t.Fatalf("%s: buyer %d, want %d", name, got, want)
		}
		if got, want := j.bal("downer"), owner0-(j.fees["downer"]-of0); got != want {
			t.Fatalf("%s: owner %d, want %d", name, got, want)
		}
	}
	snap := func() (uint64, uint64, uint64, uint64) {
		return j.bal("buyer"), j.fees["buyer"], j.bal("downer"), j.fees["downer"]
	}

	// A deterministic failure: done with the zero state hash.
	b, bf, ow, of := snap()
	o = j.c2dLeased(1)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: o.LeaseIDs[0], Index: 1, Steps: 3, GasUsed: 40_000, StateHash: make([]byte, 32), Done: true, ResultHash: hashOf("failure", 1)})
	if l := j.lease(o.LeaseIDs[0]); l.Status != "done" {
		t.Fatalf("failed run's lease: %+v", l)
	}
	refunded("failure", o, 40, b, bf, ow, of)

	// Cancelled while bidding.
	b, bf, ow, of = snap()
	j.ok("buyer", j.c2dMsg(1))
	id := j.ordersOf("buyer")[len(j.ordersOf("buyer"))-1].ID
	j.ok("buyer", &types.MsgCancelJob{OrderId: id})
	refunded("cancelled while bidding", j.order(id), 0, b, bf, ow, of)

	// Cancelled while running.
	b, bf, ow, of = snap()
	o = j.c2dLeased(1)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: o.LeaseIDs[0], Index: 1, Steps: 10, GasUsed: 100_000, StateHash: hashOf("s", 10)})
	j.ok("buyer", &types.MsgCancelJob{OrderId: o.ID})
	refunded("cancelled while running", o, 100, b, bf, ow, of)

	// Nobody bid: unmatched.
	b, bf, ow, of = snap()
	j.ok("buyer", j.c2dMsg(1))
	id = j.ordersOf("buyer")[len(j.ordersOf("buyer"))-1].ID
	j.until(j.order(id).BidWindowEnd)
	if o := j.order(id); o.Status != "unmatched" {
		t.Fatalf("order without bids: %+v", o)
	}
	refunded("unmatched", j.order(id), 0, b, bf, ow, of)

	if d := j.dataset(1); d.Runs != 1 || d.Earned != run-fee {
		t.Fatalf("dataset counts unpaid runs: %+v", d)
	}
	// What the jobs account still holds is the leases' collateral, not yet
	// released: every run price left it.
	held := uint64(0)
	for _, o := range j.ordersOf("buyer") {
		for _, lid := range o.LeaseIDs {
			if l := j.lease(lid); !l.CollateralReleased {
				held += l.Collateral
			}
		}
	}
	if got := j.modBal(jobs.Account); got != held || held == 0 {
		t.Fatalf("jobs account %d, leases hold %d", got, held)
	}
}

// TestComputeToDataAuditors: a dispute over a run on private data is
// refereed by the dataset's auditors only: a validator that is not one
// may neither challenge nor vote, and the quorum is 2/3 of the auditors'
// power (here one auditor with half the chain's power decides alone). The
// provider loses; its open lease ends slashed and the run price goes back
// to the buyer.
func TestComputeToDataAuditors(t *testing.T) {
	j := newJobsHarness(t, nil)
	j.ok("v2", &types.MsgBondValidator{ConsPubKey: key("v2cons").Public().(ed25519.PublicKey), Amount: j.params.MinValidatorStake})
	m := j.publishMsg()
	m.Auditors = [][]byte{j.addr("v2")}
	j.ok("downer", m)
	o := j.c2dLeasedEvery(1, 1)
	lid := o.LeaseIDs[0]
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 1, GasUsed: 10, StateHash: hashOf("s", 1)})
	j.bad("operator", &types.MsgChallengeCheckpoint{LeaseId: lid, Index: 1}, types.CodeUnauthorized,
		"only its owner or the dataset's bonded auditors may challenge")
	b, bf, ow, of := j.bal("buyer"), j.fees["buyer"], j.bal("downer"), j.fees["downer"]
	j.ok("buyer", &types.MsgChallengeCheckpoint{LeaseId: lid, Index: 1})
	d := j.dispute(1)
	if d.Phase != "vote" {
		t.Fatalf("dispute %+v", d)
	}
	j.bad("operator", &types.MsgVoteStep{DisputeId: 1, PostStateHash: hashOf("true", 1)}, types.CodeUnauthorized,
		"dispute 1 is over a run on dataset 1: only the dataset's auditors vote on it")
	j.ok("v2", &types.MsgVoteStep{DisputeId: 1, PostStateHash: hashOf("true", 1)})
	d = j.dispute(1)
	if d.Phase != "resolved" || d.Outcome != jobs.OutcomeChallenger || !strings.Contains(d.Reason, "validators with 1000 of 1000 power") {
		t.Fatalf("dispute after the auditor's vote: %+v", d)
	}
	l := j.lease(lid)
	if l.Status != "slashed" {
		t.Fatalf("lease %+v", l)
	}
	if o := j.order(o.ID); o.RunHeld != 0 || o.RunPaid != 0 {
		t.Fatalf("order %+v", o)
	}
	// The buyer: the run price and the unspent budget back, the disputed
	// work refunded from the collateral, its bond back with the reward.
	want := b + 2_000_000 + (l.Budget - l.Paid) + d.Refund + d.Reward + d.Bond - j.params.Jobs.DisputeBond - (j.fees["buyer"] - bf)
	if got := j.bal("buyer"); got != want {
		t.Fatalf("buyer %d, want %d", got, want)
	}
	if j.bal("downer") != ow-(j.fees["downer"]-of) {
		t.Fatal("the owner was paid for a slashed run")
	}
}

// TestComputeToDataSample: an epoch's sampled checkpoints name the dataset
// of a compute-to-data run (validators that are not its auditors skip
// it) and no dataset for other jobs.
func TestComputeToDataSample(t *testing.T) {
	j := newJobsHarness(t, func(p *types.Params) { p.EpochLength = 60 })
	j.ok("downer", j.publishMsg())
	c2d := j.c2dLeased(1)
	m := submitMsg(j, 1, 100_000_000, 1_000, 10)
	j.ok("owner", m)
	plain := j.ordersOf("owner")[0].ID
	j.ok("p2", &types.MsgBidJob{OrderId: plain, Price: 1_000, Collateral: m.Collateral})
	j.until(j.order(plain).BidWindowEnd)
	leases := map[uint64]uint64{j.order(plain).LeaseIDs[0]: 0, c2d.LeaseIDs[0]: 1}
	for i := uint64(1); i <= 10; i++ {
		j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: c2d.LeaseIDs[0], Index: i, Steps: 10 * i, GasUsed: 1000 * i, StateHash: hashOf("c", 10*i)})
		j.ok("p2", &types.MsgCommitCheckpoint{LeaseId: j.order(plain).LeaseIDs[0], Index: i, Steps: 10 * i, GasUsed: 1000 * i, StateHash: hashOf("p", 10*i)})
	}
	if j.height > j.params.EpochLength {
		t.Fatalf("checkpoints spilled out of epoch 0 (height %d)", j.height)
	}
	var v any
	var err error
	for tries := 0; tries < 100; tries++ {
		j.block()
		if v, _, err = j.app.QueryJSON(api.JobSamplePath(0), 0); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]api.JobSampleView)
	perDataset := map[uint64]int{}
	for _, s := range got {
		want, ok := leases[s.LeaseID]
		if !ok || s.DatasetID != want {
			t.Fatalf("sample %+v: want dataset %d", s, want)
		}
		perDataset[s.DatasetID]++
	}
	if perDataset[0] != 2 || perDataset[1] != 2 {
		t.Fatalf("samples per dataset %v (20 %% of each provider's 10 checkpoints)", perDataset)
	}
}
