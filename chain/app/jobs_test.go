package app

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/models"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
)

// jobsH drives the job market through real blocks (the harness checks
// every invariant, the jobs escrow one included, after each block) and
// keeps each account's fees, so balances can be checked to the unit.
type jobsH struct {
	*harness
	fees    map[string]uint64
	txBytes int // the size fees are paid for (default 1,500 bytes)
}

var jobLabels = []string{"operator", "owner", "p1", "p2", "p3", "nocap", "outsider", "v2", "downer", "buyer"}

func newJobsHarness(t *testing.T, adjust func(*types.Params)) *jobsH {
	t.Helper()
	accts := map[string]uint64{}
	for _, l := range jobLabels {
		accts[l] = 10_000_000_000
	}
	j := &jobsH{harness: newHarnessWith(t, accts, adjust), fees: map[string]uint64{}}
	for _, p := range []string{"p1", "p2", "p3", "nocap"} {
		inf := info()
		inf.Capabilities = []string{"chat", jobs.Capability}
		if p == "nocap" {
			inf.Capabilities = []string{"chat"}
		}
		j.ok(p, &types.MsgBondProvider{Amount: 2 * j.params.MinProviderStake})
		j.ok(p, &types.MsgRegisterProvider{Info: inf})
	}
	return j
}

// send runs msg from label alone in a block and returns the result code
// and log; a malformed message (refused before the fee) costs nothing.
func (j *jobsH) send(label string, msg proto.Message) (types.Code, string) {
	j.t.Helper()
	tx, fee := j.sign(label, msg)
	res := j.block(tx)
	if types.Code(res[0].Code) == types.CodeMalformed {
		j.nonces[label]--
		j.fees[label] -= fee
	}
	return types.Code(res[0].Code), res[0].Log
}

// sign signs msg from label with its next nonce and the minimum fee for
// a 1,500-byte tx (more than any of these), counting the fee.
func (j *jobsH) sign(label string, msg proto.Message) ([]byte, uint64) {
	j.t.Helper()
	body := &types.TxBody{ChainId: testChain, Nonce: j.nonces[label]}
	if err := j.app.Msgs().Set(body, msg); err != nil {
		// An invalid module message: carry it as is, for the chain to refuse.
		bz, _ := proto.Marshal(msg)
		body.Msg = &types.TxBody_ModuleMsg{ModuleMsg: &types.ModuleMsg{TypeUrl: jobMsgName(msg), Value: bz}}
	}
	body.Fee = j.params.MinFee(j.app.Msgs().Name(body), max(1500, j.txBytes))
	j.nonces[label]++
	j.fees[label] += body.Fee
	return j.signBody(key(label), body), body.Fee
}

func jobMsgName(msg proto.Message) string {
	switch msg.(type) {
	case *types.MsgSubmitJob:
		return jobs.MsgSubmit
	case *types.MsgBidJob:
		return jobs.MsgBid
	case *types.MsgCommitCheckpoint:
		return jobs.MsgCommit
	case *types.MsgCancelJob:
		return jobs.MsgCancel
	case *types.MsgChallengeCheckpoint:
		return jobs.MsgChallenge
	case *types.MsgBisect:
		return jobs.MsgBisectN
	case *types.MsgPickInterval:
		return jobs.MsgPick
	case *types.MsgVoteStep:
		return jobs.MsgVote
	case *types.MsgPublishDataset:
		return data.MsgPublish
	case *types.MsgUpdateDataset:
		return data.MsgUpdate
	case *types.MsgRetireDataset:
		return data.MsgRetire
	case *types.MsgBuyAccess:
		return data.MsgBuy
	case *types.MsgRegisterModel:
		return models.MsgRegister
	case *types.MsgRegisterZKModel:
		return zk.MsgRegister
	case *types.MsgVerifyZKProof:
		return zk.MsgVerify
	case *types.MsgReportZKFault:
		return zk.MsgReport
	}
	return "unknown"
}

func (j *jobsH) allFees() uint64 {
	var s uint64
	for _, l := range jobLabels {
		s += j.fees[l]
	}
	return s
}

func (j *jobsH) ok(label string, msg proto.Message) {
	j.t.Helper()
	if code, log := j.send(label, msg); code != 0 {
		j.t.Fatalf("%s %T: code %d %s", label, msg, code, log)
	}
}

func (j *jobsH) until(height int64) {
	for j.height < height {
		j.block()
	}
}

func (j *jobsH) addr(label string) types.Address { return addrOf(key(label)) }

func (j *jobsH) bal(label string) uint64 { return j.balance(label) }

func (j *jobsH) modBal(a types.Address) uint64 {
	snap, _ := j.app.Snapshot(0)
	return bank.Balance(snap, a)
}

func (j *jobsH) order(id uint64) api.JobOrderView {
	v, _, err := j.app.QueryJSON(api.JobOrderPath(id), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.(api.JobOrderView)
}

func (j *jobsH) lease(id uint64) api.JobLeaseView {
	v, _, err := j.app.QueryJSON(api.JobLeasePath(id), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.(api.JobLeaseView)
}

func (j *jobsH) dispute(id uint64) api.JobDisputeView {
	v, _, err := j.app.QueryJSON(api.JobDisputePath(id), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.(api.JobDisputeView)
}

func (j *jobsH) bond(label string) uint64 {
	snap, _ := j.app.Snapshot(0)
	return stake.ProviderBond(snap, j.addr(label))
}

// fingerprint hashes the market's whole state and every balance (each
// label's with its fees added back), so a refused message that changed
// anything but its signer's fee shows.
func (j *jobsH) fingerprint() [32]byte {
	snap, _ := j.app.Snapshot(0)
	h := sha256.New()
	for _, pre := range []string{"job", "seq/job_", "dset", "dgr", "seq/data", "tm", "zk", "seq/zk"} {
		snap.Iterate([]byte(pre), func(k, v []byte) bool {
			h.Write(k)
			h.Write(v)
			return true
		})
	}
	for _, l := range jobLabels {
		binary.Write(h, binary.BigEndian, bank.Balance(snap, j.addr(l))+j.fees[l])
		binary.Write(h, binary.BigEndian, stake.ProviderBond(snap, j.addr(l)))
	}
	binary.Write(h, binary.BigEndian, bank.Balance(snap, jobs.Account))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func hashOf(s string, n uint64) []byte {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(s), n))
	return h[:]
}

func submitMsg(h *jobsH, r uint32, gas, maxPrice uint64, interval uint64) *types.MsgSubmitJob {
	mod := sha256.Sum256([]byte("module"))
	in := sha256.Sum256([]byte("input"))
	per := (gas*maxPrice + 999_999) / 1_000_000
	return &types.MsgSubmitJob{ModuleHash: mod[:], InputHashes: [][]byte{in[:]}, GasLimit: gas, MemoryPages: 16,
		MaxPrice: maxPrice, Deadline: h.height + 200, Collateral: 5_000_000, Replication: r, BidWindow: 3,
		CheckpointInterval: interval, Escrow: uint64(r) * per}
}

// TestJobLifecycle: an order clears automatically to the cheapest bid
// (reputation-weighted), checkpoints pay exactly their gas at the lease's
// price (the fee pool its fee_bps), the final one refunds the unspent
// budget at once, the collateral comes back after the challenge window;
// the losing bid's collateral comes back at clearing. Owner, providers and
// fee pool exact to the unit.
func TestJobLifecycle(t *testing.T) {
	j := newJobsHarness(t, nil)
	jp := j.params.Jobs
	owner0, p10, p20 := j.bal("owner"), j.bal("p1"), j.bal("p2")
	pool0, allFees0 := j.modBal(bank.FeePool), j.allFees()
	f0 := map[string]uint64{"owner": j.fees["owner"], "p1": j.fees["p1"], "p2": j.fees["p2"]}

	m := submitMsg(j, 1, 10_000_000, 2_000, 100) // budget 20,000 uagr at the max price
	j.ok("owner", m)
	if o := j.order(1); o.Status != "bidding" || o.Escrow != 20_000 || o.BidWindowEnd != j.height+3 {
		t.Fatalf("order after submit: %+v (height %d)", o, j.height)
	}
	j.ok("p1", &types.MsgBidJob{OrderId: 1, Price: 1_500, Collateral: 5_000_000})
	j.ok("p2", &types.MsgBidJob{OrderId: 1, Price: 1_200, Collateral: 6_000_000})
	if j.bal("p2") != p20-6_000_000-(j.fees["p2"]-f0["p2"]) {
		t.Fatalf("p2's collateral not locked at the bid")
	}
	j.block() // the window's last block: cleared at its end
	o := j.order(1)
	if o.Status != "running" || len(o.LeaseIDs) != 1 || o.Escrow != 0 {
		t.Fatalf("order after clearing: %+v", o)
	}
	l := j.lease(o.LeaseIDs[0])
	if l.Provider.String() != j.addr("p2").String() || l.Price != 1_200 || l.Budget != 12_000 || l.Collateral != 6_000_000 {
		t.Fatalf("lease: %+v", l)
	}
	// The losing bid's collateral is back, the escrow beyond the budget too.
	if got, want := j.bal("p1"), p10-(j.fees["p1"]-f0["p1"]); got != want {
		t.Fatalf("p1 after losing: %d, want %d", got, want)
	}
	if got, want := j.bal("owner"), owner0-12_000-(j.fees["owner"]-f0["owner"]); got != want {
		t.Fatalf("owner after clearing: %d, want %d", got, want)
	}
	// Checkpoints: 1,234,567 gas then 4,000,000 gas in total.
	j.ok("p2", &types.MsgCommitCheckpoint{LeaseId: l.ID, Index: 1, Steps: 100, GasUsed: 1_234_567, StateHash: hashOf("s", 100)})
	j.ok("p2", &types.MsgCommitCheckpoint{LeaseId: l.ID, Index: 2, Steps: 150, GasUsed: 4_000_000, StateHash: hashOf("s", 150), Done: true, ResultHash: hashOf("r", 1)})
	pay1 := uint64(1_234_567 * 1_200 / 1_000_000) // 1481
	pay2 := uint64(4_000_000*1_200/1_000_000) - pay1
	fee1, fee2 := pay1*jp.FeeBps/10000, pay2*jp.FeeBps/10000
	l = j.lease(l.ID)
	if l.Status != "done" || l.Paid != pay1+pay2 || l.Refunded != 12_000-pay1-pay2 || l.CollateralReleased {
		t.Fatalf("lease done: %+v", l)
	}
	if o := j.order(1); o.Status != "done" {
		t.Fatalf("order: %+v", o)
	}
	if got, want := j.bal("owner"), owner0-(pay1+pay2)-(j.fees["owner"]-f0["owner"]); got != want {
		t.Fatalf("owner after done: %d, want %d", got, want)
	}
	// The fee pool got every tx fee since, plus the market's fees.
	if got, want := j.modBal(bank.FeePool), pool0+(j.allFees()-allFees0)+fee1+fee2; got != want {
		t.Fatalf("fee pool %d, want %d", got, want)
	}
	// Collateral stays locked for the challenge window, then comes back.
	p2mid := j.bal("p2")
	j.until(l.ReleaseHeight - 1)
	if j.bal("p2") != p2mid {
		t.Fatal("collateral released early")
	}
	j.block()
	if l := j.lease(l.ID); !l.CollateralReleased {
		t.Fatalf("collateral not released: %+v", l)
	}
	if got, want := j.bal("p2"), p20+pay1+pay2-fee1-fee2-(j.fees["p2"]-f0["p2"]); got != want {
		t.Fatalf("p2 at the end: %d, want %d", got, want)
	}
	if j.modBal(jobs.Account) != 0 {
		t.Fatalf("the jobs account keeps %d", j.modBal(jobs.Account))
	}
}

// bad sends msg, which must fail with code and a log containing want, and
// change nothing but its signer's fee.
func (j *jobsH) bad(label string, msg proto.Message, code types.Code, want string) {
	j.t.Helper()
	before := j.fingerprint()
	got, log := j.send(label, msg)
	if got != code || !strings.Contains(log, want) {
		j.t.Fatalf("%s %T: code %d %q, want code %d %q", label, msg, got, log, code, want)
	}
	if j.fingerprint() != before {
		j.t.Fatalf("%s %T (%s) changed state", label, msg, log)
	}
}

// TestJobBadInput: every refused message gets a clear error and changes
// nothing but its fee (malformed ones not even that).
func TestJobBadInput(t *testing.T) {
	j := newJobsHarness(t, nil)
	jp := j.params.Jobs
	j.ok("v2", &types.MsgBondValidator{ConsPubKey: key("v2cons").Public().(ed25519.PublicKey), Amount: j.params.MinValidatorStake})
	m := submitMsg(j, 1, 1_000_000, 1_000, 100)
	m.BidWindow = 15
	withM := func(f func(*types.MsgSubmitJob)) *types.MsgSubmitJob {
		c := proto.Clone(m).(*types.MsgSubmitJob)
		f(c)
		return c
	}
	const (
		malformed = types.CodeMalformed
		invalid   = types.CodeInvalid
		unauth    = types.CodeUnauthorized
		notFound  = types.CodeNotFound
		funds     = types.CodeInsufficientFunds
	)
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.Escrow-- }), funds, "does not cover replication 1")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.BidWindow = jp.MaxBidWindow + 1; c.Deadline = 10_000 }), invalid, "above the maximum")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.Deadline = j.height + 10 }), invalid, "must be after the bid window")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.Escrow = 20_000_000_000 }), funds, "insufficient")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.Replication = 5 }), malformed, "replication must be between 1 and 4")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.ModuleHash = c.ModuleHash[:31] }), malformed, "module_hash must be 32 bytes")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.MaxPrice = 0 }), malformed, "max_price")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.Args = []string{"a\x00b"} }), malformed, "NUL byte")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.Args = []string{strings.Repeat("a", 4097)} }), malformed, "args are 4097 bytes")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.InputHashes = [][]byte{c.ModuleHash}; c.InputNames = []string{"a", "b"} }), malformed, "2 input names for 1 inputs")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) { c.InputHashes = [][]byte{c.ModuleHash}; c.InputNames = []string{"../etc"} }), malformed, "not a plain file name")
	j.bad("owner", withM(func(c *types.MsgSubmitJob) {
		c.InputHashes = [][]byte{c.ModuleHash, c.ModuleHash}
		c.InputNames = []string{"x", "x"}
	}), malformed, `input name "x" given twice`)
	m.Args, m.InputHashes, m.InputNames = []string{"3", "40"}, [][]byte{m.ModuleHash}, []string{"corpus.txt"}
	j.ok("owner", m)
	if o := j.order(1); !slices.Equal(o.Args, m.Args) || !slices.Equal(o.InputNames, m.InputNames) {
		t.Fatalf("order keeps args %q and input names %q", o.Args, o.InputNames)
	}
	const order = 1

	j.bad("p1", &types.MsgBidJob{OrderId: order, Price: 1_001, Collateral: m.Collateral}, invalid, "price 1001 above order 1's max_price 1000")
	j.bad("p1", &types.MsgBidJob{OrderId: order, Price: 900, Collateral: m.Collateral - 1}, invalid, "collateral 4999999 below order 1's required 5000000")
	j.bad("nocap", &types.MsgBidJob{OrderId: order, Price: 900, Collateral: m.Collateral}, unauth, `does not declare the "wasm" capability`)
	j.bad("outsider", &types.MsgBidJob{OrderId: order, Price: 900, Collateral: m.Collateral}, unauth, "not a registered provider")
	j.bad("owner", &types.MsgBidJob{OrderId: order, Price: 900, Collateral: m.Collateral}, unauth, "owner cannot bid")
	j.bad("p1", &types.MsgBidJob{OrderId: 99, Price: 900, Collateral: m.Collateral}, notFound, "order 99 does not exist")
	j.bad("p1", &types.MsgBidJob{OrderId: order, Price: 900, Collateral: 50_000_000_000}, funds, "insufficient")
	j.ok("p1", &types.MsgBidJob{OrderId: order, Price: 900, Collateral: m.Collateral})
	j.bad("p1", &types.MsgBidJob{OrderId: order, Price: 800, Collateral: m.Collateral}, invalid, "already bid on order 1")
	j.bad("p2", &types.MsgCancelJob{OrderId: order}, unauth, "only order 1's owner")

	j.until(j.order(order).BidWindowEnd)
	lease := j.order(order).LeaseIDs[0]
	j.bad("p2", &types.MsgBidJob{OrderId: order, Price: 800, Collateral: m.Collateral}, invalid, "bidding on order 1 closed")
	cp := func(index, steps, gas uint64) *types.MsgCommitCheckpoint {
		return &types.MsgCommitCheckpoint{LeaseId: lease, Index: index, Steps: steps, GasUsed: gas, StateHash: hashOf("s", steps)}
	}
	j.bad("p2", cp(1, 100, 10), unauth, "only lease 1's provider")
	j.bad("p1", cp(2, 100, 10), invalid, "checkpoint 2 out of order: lease 1's next is 1")
	j.bad("p1", cp(1, 50, 10), invalid, "a checkpoint comes every 100 steps")
	j.bad("p1", cp(1, 100, m.GasLimit+1), invalid, "gas_used 1000001 above order 1's gas_limit 1000000")
	j.bad("p1", cp(0, 100, 10), malformed, "index starts at 1")
	j.bad("p1", &types.MsgCommitCheckpoint{LeaseId: lease, Index: 1, Steps: 100, GasUsed: 10, StateHash: hashOf("s", 100), Done: true}, malformed, "result_hash")
	j.bad("p1", &types.MsgCommitCheckpoint{LeaseId: 7, Index: 1, Steps: 100, GasUsed: 10, StateHash: hashOf("s", 100)}, notFound, "lease 7 does not exist")
	j.ok("p1", cp(1, 100, 500_000))
	j.bad("p1", cp(2, 200, 400_000), invalid, "gas_used 400000 below the previous checkpoint's 500000")
	j.bad("p1", cp(2, 100, 600_000), invalid, "steps 100 must exceed the previous checkpoint's 100")

	// Disputes.
	j.bad("outsider", &types.MsgChallengeCheckpoint{LeaseId: lease, Index: 1}, unauth, "only order 1's owner, a bonded validator or another replica's provider")
	j.bad("p1", &types.MsgChallengeCheckpoint{LeaseId: lease, Index: 1}, unauth, "cannot challenge its own checkpoint")
	j.bad("owner", &types.MsgChallengeCheckpoint{LeaseId: lease, Index: 2}, notFound, "lease 1 has no checkpoint 2")
	j.ok("owner", &types.MsgChallengeCheckpoint{LeaseId: lease, Index: 1})
	const dispute = 1
	if d := j.dispute(dispute); d.Phase != "bisect" || d.Lo != 0 || d.Hi != 100 || len(d.LoHash) != 0 || d.Bond != jp.DisputeBond {
		t.Fatalf("dispute: %+v", d)
	}
	if v, _, err := j.app.QueryJSON(api.JobOpenDisputesPath, 0); err != nil || len(v.([]api.JobDisputeView)) != 1 || v.([]api.JobDisputeView)[0].ID != dispute {
		t.Fatalf("open disputes: %v %v", v, err)
	}
	j.bad("operator", &types.MsgChallengeCheckpoint{LeaseId: lease, Index: 1}, invalid, "already has an open dispute (1)")
	j.bad("p1", cp(2, 200, 600_000), invalid, "lease 1 is under dispute 1")
	j.bad("owner", &types.MsgCancelJob{OrderId: order}, invalid, "order 1 has an open dispute")
	j.bad("owner", &types.MsgPickInterval{DisputeId: dispute, Part: 0}, invalid, "is in phase bisect, not pick")
	hashes := func(n int) [][]byte {
		var out [][]byte
		for i := 1; i <= n; i++ {
			out = append(out, hashOf("s", uint64(i)))
		}
		return out
	}
	j.bad("owner", &types.MsgBisect{DisputeId: dispute, Hashes: hashes(7)}, unauth, "only dispute 1's defender")
	j.bad("p1", &types.MsgBisect{DisputeId: dispute, Hashes: hashes(6)}, invalid, "dispute 1 needs 7 hashes (k = 8 over steps 0..100), got 6")
	j.bad("p1", &types.MsgBisect{DisputeId: dispute, Hashes: hashes(16)}, malformed, "between 1 and 15 hashes")
	j.ok("p1", &types.MsgBisect{DisputeId: dispute, Hashes: hashes(7)})
	j.bad("p1", &types.MsgPickInterval{DisputeId: dispute, Part: 3}, unauth, "only dispute 1's challenger")
	j.bad("owner", &types.MsgPickInterval{DisputeId: dispute, Part: 8}, invalid, "dispute 1 has parts 0..7, not 8")
	j.bad("operator", &types.MsgVoteStep{DisputeId: dispute, PostStateHash: hashOf("x", 1)}, invalid, "is in phase pick, not vote")
	// The last part of 0..100 in 8 is 87..100; then 13 steps in 8: ...
	for d := j.dispute(dispute); d.Phase != "vote"; d = j.dispute(dispute) {
		if d.Phase == "pick" {
			j.ok("owner", &types.MsgPickInterval{DisputeId: dispute, Part: 0})
		} else {
			j.ok("p1", &types.MsgBisect{DisputeId: dispute, Hashes: hashes(int(min(8, d.Hi-d.Lo)) - 1)})
		}
	}
	j.bad("outsider", &types.MsgVoteStep{DisputeId: dispute, PostStateHash: hashOf("x", 1)}, unauth, "only bonded validators vote")
	j.bad("operator", &types.MsgVoteStep{DisputeId: dispute, PostStateHash: hashOf("x", 1)[:31]}, malformed, "post_state_hash must be 32 bytes")
	j.ok("operator", &types.MsgVoteStep{DisputeId: dispute, PostStateHash: hashOf("x", 1)}) // half the power: no quorum yet
	j.bad("operator", &types.MsgVoteStep{DisputeId: dispute, PostStateHash: hashOf("x", 1)}, invalid, "already voted on dispute 1")
	// Silence: the vote window ends without a 2/3 quorum, the dispute is
	// void, the bond is back; a move after the deadline is refused.
	d := j.dispute(dispute)
	ownerBefore := j.bal("owner")
	j.until(d.Deadline)
	if d := j.dispute(dispute); d.Phase != "resolved" || d.Outcome != jobs.OutcomeVoid || !strings.Contains(d.Reason, "no 2/3 validator quorum") {
		t.Fatalf("dispute after the vote window: %+v", d)
	}
	if got := j.bal("owner"); got != ownerBefore+jp.DisputeBond {
		t.Fatalf("owner's bond not returned: %d, want %d", got, ownerBefore+jp.DisputeBond)
	}
	j.bad("v2", &types.MsgVoteStep{DisputeId: dispute, PostStateHash: hashOf("x", 1)}, invalid, "is in phase resolved, not vote")
	if v, _, _ := j.app.QueryJSON(api.JobOpenDisputesPath, 0); len(v.([]api.JobDisputeView)) != 0 {
		t.Fatalf("a resolved dispute is still open: %v", v)
	}
	// The lease goes on.
	j.ok("p1", cp(2, 200, 600_000))
}

// claimedHash is a replica's state hash at step s: the true state, or,
// for a provider that altered step bad, a different state from bad on.
func claimedHash(s, bad uint64) []byte {
	if bad != 0 && s >= bad {
		return hashOf("altered", s)
	}
	return hashOf("true", s)
}

// runDispute plays a dispute to its single step: the defender bisects
// with its chain's hashes, the challenger picks the first part whose end
// it disagrees with (it holds the true chain). It returns the txs sent.
func (j *jobsH) runDispute(id uint64, defender, challenger string, bad uint64) int {
	j.t.Helper()
	txs := 0
	for d := j.dispute(id); d.Phase == "bisect" || d.Phase == "pick"; d = j.dispute(id) {
		n := min(uint64(j.params.Jobs.BisectionK), d.Hi-d.Lo)
		if d.Phase == "bisect" {
			var hs [][]byte
			for i := uint64(1); i < n; i++ {
				hs = append(hs, claimedHash(d.Lo+i*(d.Hi-d.Lo)/n, bad))
			}
			j.ok(defender, &types.MsgBisect{DisputeId: id, Hashes: hs})
		} else {
			part := n - 1
			for i := uint64(0); i < n; i++ {
				end := d.Lo + (i+1)*(d.Hi-d.Lo)/n
				var h []byte = d.HiHash
				if i+1 < n {
					h = d.Hashes[i]
				}
				if !bytes.Equal(h, claimedHash(end, 0)) {
					part = i
					break
				}
			}
			j.ok(challenger, &types.MsgPickInterval{DisputeId: id, Part: uint32(part)})
		}
		txs++
	}
	return txs
}

// TestJobDisputeBisection: two replicas of a 10^5-step job disagree at
// checkpoint 1 because one altered step 73,519; the honest replica
// challenges, the bisection narrows 10^5 steps to that one step, a
// validator quorum re-executes it, and the cheat is slashed: the owner is
// refunded the disputed work, the challenger rewarded, the cheat's bond cut
// by slash_bps["jobs/wrong_step"]. The whole dispute takes at most
// 2·ceil(log_8 10^5) + 2 = 14 txs; the honest replica loses nothing.
func TestJobDisputeBisection(t *testing.T) {
	j := newJobsHarness(t, nil)
	jp := j.params.Jobs
	const steps, bad = 100_000, 73_519
	m := submitMsg(j, 2, 1_000_000_000, 1_000, steps)
	j.ok("owner", m)
	j.ok("p1", &types.MsgBidJob{OrderId: 1, Price: 900, Collateral: m.Collateral})
	j.ok("p2", &types.MsgBidJob{OrderId: 1, Price: 1_000, Collateral: m.Collateral})
	j.until(j.order(1).BidWindowEnd)
	o := j.order(1)
	l1, l2 := j.lease(o.LeaseIDs[0]), j.lease(o.LeaseIDs[1])
	if l1.Provider.String() != j.addr("p1").String() || l2.Provider.String() != j.addr("p2").String() {
		t.Fatalf("leases %+v %+v", l1, l2)
	}
	const gas = 500_000_000
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: l1.ID, Index: 1, Steps: steps, GasUsed: gas, StateHash: claimedHash(steps, 0)})
	j.ok("p2", &types.MsgCommitCheckpoint{LeaseId: l2.ID, Index: 1, Steps: steps, GasUsed: gas, StateHash: claimedHash(steps, bad)})
	if o := j.order(1); o.MismatchIndex != 1 {
		t.Fatalf("mismatch not flagged: %+v", o)
	}
	owner0, p10, p2bond0, p1bond0 := j.bal("owner"), j.bal("p1"), j.bond("p2"), j.bond("p1")
	fees0 := map[string]uint64{"owner": j.fees["owner"], "p1": j.fees["p1"], "p2": j.fees["p2"]}

	j.ok("p1", &types.MsgChallengeCheckpoint{LeaseId: l2.ID, Index: 1})
	txs := 1 + j.runDispute(1, "p2", "p1", bad)
	d := j.dispute(1)
	if d.Phase != "vote" || d.Lo != bad-1 || d.Hi != bad || !bytes.Equal(d.LoHash, claimedHash(bad-1, 0)) || !bytes.Equal(d.HiHash, claimedHash(bad, bad)) {
		t.Fatalf("dispute did not narrow to step %d: %+v", bad, d)
	}
	// The validator re-executes step 73,519 from the agreed state.
	j.ok("operator", &types.MsgVoteStep{DisputeId: 1, PostStateHash: claimedHash(bad, 0)})
	txs++
	if bound := jobs.MaxDisputeTxs(steps, jp.BisectionK); txs > bound || bound != 14 {
		t.Fatalf("dispute took %d txs, bound %d", txs, bound)
	}
	t.Logf("dispute over %d steps (k=%d): %d txs, %d moves, bound %d", steps, jp.BisectionK, txs, j.dispute(1).Moves, jobs.MaxDisputeTxs(steps, jp.BisectionK))
	d = j.dispute(1)
	pay := uint64(gas) * 1_000 / 1_000_000 // p2's one paid checkpoint
	reward := (m.Collateral - pay) * jp.RewardBps / 10000
	slash := p2bond0 * j.params.SlashBps["jobs/wrong_step"] / 10000
	if d.Outcome != jobs.OutcomeChallenger || d.Refund != pay || d.Reward != reward || d.Slashed != m.Collateral+slash {
		t.Fatalf("resolution: %+v", d)
	}
	l2 = j.lease(l2.ID)
	if l2.Status != "slashed" || !l2.CollateralReleased || l2.Forfeited != m.Collateral || l2.OpenDispute != 0 {
		t.Fatalf("cheat's lease: %+v", l2)
	}
	// Owner: the disputed work back and the cheat's unspent budget.
	if got, want := j.bal("owner"), owner0+pay+(l2.Budget-pay)-(j.fees["owner"]-fees0["owner"]); got != want {
		t.Fatalf("owner %d, want %d", got, want)
	}
	if got, want := j.bal("p1"), p10+reward-(j.fees["p1"]-fees0["p1"]); got != want {
		t.Fatalf("challenger %d, want %d", got, want)
	}
	if j.bond("p2") != p2bond0-slash || j.bond("p1") != p1bond0 {
		t.Fatalf("bonds: cheat %d (want %d), honest %d (want %d)", j.bond("p2"), p2bond0-slash, j.bond("p1"), p1bond0)
	}
	snap, _ := j.app.Snapshot(0)
	if v, _, _ := j.app.QueryJSON(api.ProviderPath(j.addr("p2")), 0); v.(api.ProviderView).Faults != 1 {
		t.Fatalf("cheat's faults: %+v", v)
	}
	_ = snap
	// The honest replica finishes and is paid in full.
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: l1.ID, Index: 2, Steps: steps + 10, GasUsed: gas + 1, StateHash: claimedHash(steps+10, 0), Done: true, ResultHash: hashOf("r", 1)})
	if o := j.order(1); o.Status != "ended" || !strings.Contains(o.Reason, "1 of 2 leases done") {
		t.Fatalf("order: %+v", o)
	}
}

// TestJobDisputeOutcomes: silence loses — a defender that does not bisect
// is slashed, a challenger that does not pick loses its bond to the
// defender; a quorum confirming the defender's state pays the defender
// the bond and slashes nobody.
func TestJobDisputeOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		play    func(j *jobsH)
		outcome string
		slashed bool
		done    bool // the disputed checkpoint is the lease's last
	}{
		{"defender silent", func(j *jobsH) { j.until(j.dispute(1).Deadline) }, jobs.OutcomeChallenger, true, false},
		{"finished lease, defender silent", func(j *jobsH) { j.until(j.dispute(1).Deadline) }, jobs.OutcomeChallenger, true, true},
		{"challenger silent", func(j *jobsH) {
			j.ok("p1", &types.MsgBisect{DisputeId: 1, Hashes: [][]byte{claimedHash(250, 0), claimedHash(500, 0), claimedHash(750, 0)}})
			j.until(j.dispute(1).Deadline)
		}, jobs.OutcomeDefender, false, false},
		{"quorum confirms", func(j *jobsH) {
			j.runDispute(1, "p1", "owner", 0)
			d := j.dispute(1)
			j.ok("operator", &types.MsgVoteStep{DisputeId: 1, PostStateHash: claimedHash(d.Hi, 0)})
		}, jobs.OutcomeDefender, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJobsHarness(t, func(p *types.Params) { p.Jobs.BisectionK = 4 })
			jp := j.params.Jobs
			m := submitMsg(j, 1, 1_000_000, 1_000, 1_000)
			j.ok("owner", m)
			j.ok("p1", &types.MsgBidJob{OrderId: 1, Price: 1_000, Collateral: m.Collateral})
			j.until(j.order(1).BidWindowEnd)
			cp := &types.MsgCommitCheckpoint{LeaseId: 1, Index: 1, Steps: 1_000, GasUsed: 1_000, StateHash: claimedHash(1_000, 0)}
			if tc.done {
				cp.Done, cp.ResultHash = true, hashOf("result", 1)
			}
			j.ok("p1", cp)
			j.ok("owner", &types.MsgChallengeCheckpoint{LeaseId: 1, Index: 1})
			owner0, p10, bond0, l0 := j.bal("owner"), j.bal("p1"), j.bond("p1"), j.lease(1)
			f0 := map[string]uint64{"owner": j.fees["owner"], "p1": j.fees["p1"]}
			tc.play(j)
			d := j.dispute(1)
			if d.Outcome != tc.outcome {
				t.Fatalf("outcome %q (%s), want %q", d.Outcome, d.Reason, tc.outcome)
			}
			l := j.lease(1)
			ownerFee, p1Fee := j.fees["owner"]-f0["owner"], j.fees["p1"]-f0["p1"]
			if tc.slashed {
				refund := min(m.Collateral, uint64(1)) // 1,000 gas at 1,000 per million: 1 uagr paid
				if l.Status != "slashed" || j.bond("p1") >= bond0 || d.Refund != refund {
					t.Fatalf("not slashed: %+v %+v", l, d)
				}
				// The owner: its bond back, the disputed 1 uagr, the challenger's
				// reward and the unspent budget (at once for an open lease, at
				// its end for a finished one).
				if got, want := j.bal("owner"), owner0+jp.DisputeBond+refund+(l.Refunded-l0.Refunded)+d.Reward-ownerFee; got != want || l.Refunded != l.Budget-l.Paid {
					t.Fatalf("owner %d, want %d (lease %+v)", got, want, l)
				}
				if o := j.order(1); o.Status != "ended" || !strings.Contains(o.Reason, "0 of 1 leases done") {
					t.Fatalf("order after its lease lost a dispute: %+v", o)
				}
				return
			}
			if l.Status != "running" || l.OpenDispute != 0 || j.bond("p1") != bond0 || d.Reward != jp.DisputeBond {
				t.Fatalf("defender harmed: %+v %+v", l, d)
			}
			if got, want := j.bal("p1"), p10+jp.DisputeBond-p1Fee; got != want {
				t.Fatalf("defender %d, want %d", got, want)
			}
			if got, want := j.bal("owner"), owner0-ownerFee; got != want {
				t.Fatalf("challenger %d, want %d", got, want)
			}
			// The lease goes on.
			j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: 1, Index: 2, Steps: 2_000, GasUsed: 2_000, StateHash: claimedHash(2_000, 0)})
		})
	}
}

// leased submits an order of replication r and has p1 (and p2, ...) win it.
func (j *jobsH) leased(r uint32, gas, price, interval uint64) (*types.MsgSubmitJob, api.JobOrderView) {
	j.t.Helper()
	m := submitMsg(j, r, gas, price, interval)
	j.ok("owner", m)
	id := uint64(len(j.orders()))
	for i, p := range []string{"p1", "p2", "p3"}[:r] {
		j.ok(p, &types.MsgBidJob{OrderId: id, Price: price - uint64(i), Collateral: m.Collateral})
	}
	j.until(j.order(id).BidWindowEnd)
	return m, j.order(id)
}

func (j *jobsH) orders() []api.JobOrderView {
	v, _, err := j.app.QueryJSON(api.JobOrdersByOwnerPath(j.addr("owner")), 0)
	if err != nil {
		j.t.Fatal(err)
	}
	return v.([]api.JobOrderView)
}

// TestJobLiveness: a provider that stops committing is closed out at the
// end of its last checkpoint's height + liveness_epochs epochs: the owner
// gets the unspent budget and the lease's collateral, the provider's bond
// loses slash_bps["jobs/abandoned"] (burned), its reputation resets.
func TestJobLiveness(t *testing.T) {
	j := newJobsHarness(t, func(p *types.Params) { p.EpochLength = 10 })
	m, o := j.leased(1, 10_000_000, 1_000, 10)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: o.LeaseIDs[0], Index: 1, Steps: 10, GasUsed: 3_000_000, StateHash: hashOf("s", 10)})
	l := j.lease(o.LeaseIDs[0])
	owner0, bond0, of := j.bal("owner"), j.bond("p1"), j.fees["owner"]
	closeAt := l.LastHeight + int64(j.params.Jobs.LivenessEpochs)*j.params.EpochLength
	j.until(closeAt - 1)
	if l := j.lease(l.ID); l.Status != "running" {
		t.Fatalf("closed early: %+v", l)
	}
	j.block()
	l = j.lease(l.ID)
	if l.Status != "abandoned" || l.EndedHeight != closeAt || l.Forfeited != m.Collateral {
		t.Fatalf("lease after %d blocks of silence: %+v", closeAt-l.LastHeight, l)
	}
	if got, want := j.bal("owner"), owner0+(l.Budget-l.Paid)+m.Collateral-(j.fees["owner"]-of); got != want {
		t.Fatalf("owner %d, want %d", got, want)
	}
	if want := bond0 - bond0*j.params.SlashBps["jobs/abandoned"]/10000; j.bond("p1") != want {
		t.Fatalf("bond %d, want %d", j.bond("p1"), want)
	}
	if o := j.order(o.ID); o.Status != "ended" {
		t.Fatalf("order %+v", o)
	}
	j.bad("p1", &types.MsgCommitCheckpoint{LeaseId: l.ID, Index: 2, Steps: 20, GasUsed: 3_000_001, StateHash: hashOf("s", 20)}, types.CodeInvalid, "lease 1 is abandoned")
}

// TestJobLivenessPerOrder: an order that says its checkpoints take long
// (liveness_blocks) keeps its lease alive past the chain's default, is
// abandoned exactly liveness_blocks after its last checkpoint, and a
// liveness shorter than an epoch or past the deadline is refused.
func TestJobLivenessPerOrder(t *testing.T) {
	j := newJobsHarness(t, func(p *types.Params) { p.EpochLength = 10 })
	def := int64(j.params.Jobs.LivenessEpochs) * j.params.EpochLength
	m := submitMsg(j, 1, 10_000_000, 1_000, 10)
	for _, tc := range []struct {
		blocks int64
		want   string
	}{
		{9, "liveness_blocks 9 must be at least one epoch (10 blocks)"},
		{500, "liveness_blocks 500 must be at least one epoch (10 blocks) and at most the time to the deadline"},
	} {
		bad := proto.Clone(m).(*types.MsgSubmitJob)
		bad.LivenessBlocks = tc.blocks
		j.bad("owner", bad, types.CodeInvalid, tc.want)
	}
	bad := proto.Clone(m).(*types.MsgSubmitJob)
	bad.LivenessBlocks = -1
	j.bad("owner", bad, types.CodeMalformed, "liveness_blocks must not be negative")

	m.LivenessBlocks = 3 * def
	j.ok("owner", m)
	id := uint64(len(j.orders()))
	j.ok("p1", &types.MsgBidJob{OrderId: id, Price: 1_000, Collateral: m.Collateral})
	j.until(j.order(id).BidWindowEnd)
	o := j.order(id)
	if o.LivenessBlocks != 3*def {
		t.Fatalf("order %+v", o)
	}
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: o.LeaseIDs[0], Index: 1, Steps: 10, GasUsed: 3_000_000, StateHash: hashOf("s", 10)})
	l := j.lease(o.LeaseIDs[0])
	if l.LivenessBlocks != 3*def {
		t.Fatalf("lease %+v", l)
	}
	j.until(l.LastHeight + def + 1) // past the chain's default: still running
	if l := j.lease(l.ID); l.Status != "running" {
		t.Fatalf("closed at the chain's default liveness: %+v", l)
	}
	closeAt := l.LastHeight + 3*def
	j.until(closeAt - 1)
	if l := j.lease(l.ID); l.Status != "running" {
		t.Fatalf("closed early: %+v", l)
	}
	j.block()
	if l := j.lease(l.ID); l.Status != "abandoned" || l.EndedHeight != closeAt {
		t.Fatalf("lease after %d blocks of silence: %+v", 3*def, l)
	}
}

// TestJobCancel: during bidding the escrow and the bids' collateral come
// back; once leased, the committed work stays paid, the rest comes back at
// once, the collateral after the challenge window.
func TestJobCancel(t *testing.T) {
	j := newJobsHarness(t, nil)
	m := submitMsg(j, 1, 1_000_000, 1_000, 10)
	owner0, p10, of, pf := j.bal("owner"), j.bal("p1"), j.fees["owner"], j.fees["p1"]
	j.ok("owner", m)
	j.ok("p1", &types.MsgBidJob{OrderId: 1, Price: 500, Collateral: m.Collateral})
	j.ok("owner", &types.MsgCancelJob{OrderId: 1})
	if o := j.order(1); o.Status != "cancelled" || o.Escrow != 0 {
		t.Fatalf("order %+v", o)
	}
	if j.bal("owner") != owner0-(j.fees["owner"]-of) || j.bal("p1") != p10-(j.fees["p1"]-pf) {
		t.Fatal("cancel during bidding did not refund everything")
	}
	j.until(j.height + 5) // past the old bid window: nothing clears
	if o := j.order(1); o.Status != "cancelled" || len(o.LeaseIDs) != 0 {
		t.Fatalf("cancelled order cleared: %+v", o)
	}
	j.bad("owner", &types.MsgCancelJob{OrderId: 1}, types.CodeInvalid, "order 1 is cancelled")

	_, o := j.leased(1, 1_000_000, 1_000, 10)
	lid := o.LeaseIDs[0]
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 10, GasUsed: 400_000, StateHash: hashOf("s", 10)})
	owner1, of1 := j.bal("owner"), j.fees["owner"]
	j.ok("owner", &types.MsgCancelJob{OrderId: o.ID})
	l := j.lease(lid)
	if l.Status != "cancelled" || l.Paid != 400 || l.Refunded != l.Budget-400 || l.CollateralReleased {
		t.Fatalf("lease %+v", l)
	}
	if got, want := j.bal("owner"), owner1+l.Budget-400-(j.fees["owner"]-of1); got != want {
		t.Fatalf("owner %d, want %d", got, want)
	}
	j.until(l.ReleaseHeight)
	if !j.lease(lid).CollateralReleased {
		t.Fatal("collateral not released after the challenge window")
	}
}

// TestJobUnmatched: when fewer qualified bids than r are left at the end
// of the window (here a bidder deregistered), the order records why, and
// the escrow and every collateral come back.
func TestJobUnmatched(t *testing.T) {
	j := newJobsHarness(t, nil)
	m := submitMsg(j, 2, 1_000_000, 1_000, 10)
	owner0, of := j.bal("owner"), j.fees["owner"]
	j.ok("owner", m)
	j.ok("p1", &types.MsgBidJob{OrderId: 1, Price: 500, Collateral: m.Collateral})
	j.ok("p3", &types.MsgBidJob{OrderId: 1, Price: 400, Collateral: m.Collateral})
	p30, p3f := j.bal("p3"), j.fees["p3"]
	j.ok("p3", &types.MsgDeregisterProvider{})
	j.until(j.order(1).BidWindowEnd)
	o := j.order(1)
	if o.Status != "unmatched" || !strings.Contains(o.Reason, "1 qualified bids for replication 2 (2 bids; 1 disqualified") {
		t.Fatalf("order %+v", o)
	}
	if j.bal("owner") != owner0-(j.fees["owner"]-of) || j.bal("p3") != p30+m.Collateral-(j.fees["p3"]-p3f) {
		t.Fatal("escrow or collateral not refunded")
	}
	v, _, err := j.app.QueryJSON(api.JobOrdersByStatusPath("unmatched"), 0)
	if err != nil || len(v.([]api.JobOrderView)) != 1 {
		t.Fatalf("by status: %v %v", v, err)
	}
}

// TestJobSweepAndDeadline: a lease whose budget can pay no more gas is
// closed at the end of the block that exhausted it (it never runs
// unpaid); one still running at its order's deadline expires; both
// refund the unspent budget.
func TestJobSweepAndDeadline(t *testing.T) {
	j := newJobsHarness(t, nil)
	m, o := j.leased(2, 1_000_000, 1_000, 10)
	l1, l2 := o.LeaseIDs[0], o.LeaseIDs[1]
	j.ok(j.leaseOwnerLabel(l1), &types.MsgCommitCheckpoint{LeaseId: l1, Index: 1, Steps: 10, GasUsed: m.GasLimit, StateHash: hashOf("s", 10)})
	if l := j.lease(l1); l.Status != "exhausted" || l.Paid != l.Budget-l.Refunded || l.EndedHeight != j.height {
		t.Fatalf("exhausted lease %+v", l)
	}
	j.until(m.Deadline)
	if l := j.lease(l2); l.Status != "expired" || l.Refunded != l.Budget {
		t.Fatalf("expired lease %+v", l)
	}
	if o := j.order(o.ID); o.Status != "ended" {
		t.Fatalf("order %+v", o)
	}
}

func (j *jobsH) leaseOwnerLabel(lease uint64) string {
	p := j.lease(lease).Provider.String()
	for _, l := range jobLabels {
		if j.addr(l).String() == p {
			return l
		}
	}
	j.t.Fatalf("no label for %s", p)
	return ""
}

// TestJobRandomHonest: a long randomized run — orders of every
// replication, bids, checkpoints at random paces and gas, cancellations,
// finished, exhausted and expired leases, and owners challenging honest
// checkpoints (the defender bisects with its true states, the owner picks
// at random, the validator re-executes) — in which every honest message
// succeeds, no honest provider is ever slashed or loses collateral, and
// the invariants (the jobs escrow one included) hold after every block.
func TestJobRandomHonest(t *testing.T) {
	// Twice: the same blocks must give the same app hash (determinism with
	// every part of the market exercised).
	first := randomHonestRun(t)
	if second := randomHonestRun(t); !bytes.Equal(first, second) {
		t.Fatalf("two runs of the same blocks: app hashes %x and %x", first, second)
	}
}

func randomHonestRun(t *testing.T) []byte {
	j := newJobsHarness(t, nil)
	rng := rand.New(rand.NewPCG(18, 2026))
	provs := []string{"p1", "p2", "p3"}
	bonds := map[string]uint64{}
	for _, p := range provs {
		bonds[p] = j.bond(p)
	}
	state := func(order, steps uint64) []byte { return hashOf(fmt.Sprint("order", order), steps) }
	var resolved, done, cancelled int
	for block := 0; block < 400; block++ {
		var txs [][]byte
		var who []string
		add := func(label string, msg proto.Message) {
			tx, _ := j.sign(label, msg)
			txs, who = append(txs, tx), append(who, label)
		}
		orders := j.orders()
		open := 0
		for _, o := range orders {
			switch o.Status {
			case "bidding":
				open++
				bids, _, _ := j.app.QueryJSON(api.JobBidsPath(o.ID), 0)
				bid := map[string]bool{}
				for _, b := range bids.([]api.JobBidView) {
					bid[b.Provider.String()] = true
				}
				for _, p := range provs {
					if !bid[j.addr(p).String()] && rng.IntN(2) == 0 {
						add(p, &types.MsgBidJob{OrderId: o.ID, Price: 1 + rng.Uint64N(o.MaxPrice), Collateral: o.Collateral + rng.Uint64N(1000)})
					}
				}
			case "running":
				open++
				for _, lid := range o.LeaseIDs {
					l := j.lease(lid)
					if l.Status != "running" || l.OpenDispute != 0 || rng.IntN(10) < 3 {
						continue
					}
					fin := rng.IntN(10) == 0
					steps := l.Steps + o.CheckpointInterval
					if fin {
						steps = l.Steps + 1 + rng.Uint64N(o.CheckpointInterval)
					}
					gas := l.GasUsed + rng.Uint64N(o.GasLimit/8)
					m := &types.MsgCommitCheckpoint{LeaseId: lid, Index: l.Checkpoints + 1, Steps: steps, GasUsed: min(gas, o.GasLimit), StateHash: state(o.ID, steps)}
					if fin {
						m.Done, m.ResultHash = true, state(o.ID, 1<<62)
					}
					add(j.leaseOwnerLabel(lid), m)
				}
			}
		}
		// Disputes in progress: each party moves honestly (the owner picks
		// at random, having no better idea), the validator votes the truth.
		for id := uint64(1); ; id++ {
			v, _, err := j.app.QueryJSON(api.JobDisputePath(id), 0)
			if err != nil {
				break
			}
			d := v.(api.JobDisputeView)
			order := j.lease(d.LeaseID).OrderID
			n := min(uint64(j.params.Jobs.BisectionK), d.Hi-d.Lo)
			switch d.Phase {
			case "bisect":
				var hs [][]byte
				for i := uint64(1); i < n; i++ {
					hs = append(hs, state(order, d.Lo+i*(d.Hi-d.Lo)/n))
				}
				add(j.leaseOwnerLabel(d.LeaseID), &types.MsgBisect{DisputeId: id, Hashes: hs})
			case "pick":
				add("owner", &types.MsgPickInterval{DisputeId: id, Part: uint32(rng.Uint64N(n))})
			case "vote":
				add("operator", &types.MsgVoteStep{DisputeId: id, PostStateHash: state(order, d.Hi)})
			}
		}
		// The owner: a new order, a cancel or a challenge now and then.
		switch r := rng.IntN(20); {
		case r < 3 && open < 5:
			m := submitMsg(j, 1+uint32(rng.IntN(3)), 1_000_000+rng.Uint64N(10_000_000), 500+rng.Uint64N(2_000), 5+rng.Uint64N(50))
			m.Deadline = j.height + 30 + int64(rng.IntN(150))
			add("owner", m)
		case r == 3:
			for _, o := range orders {
				if o.Status == "running" && noDispute(j, o) {
					add("owner", &types.MsgCancelJob{OrderId: o.ID})
					cancelled++
					break
				}
			}
		case r == 4 || r == 5:
			for _, o := range orders {
				for _, lid := range o.LeaseIDs {
					if l := j.lease(lid); l.Checkpoints > 0 && !l.CollateralReleased && l.OpenDispute == 0 && o.Status == "running" && noDispute(j, o) {
						add("owner", &types.MsgChallengeCheckpoint{LeaseId: lid, Index: 1 + rng.Uint64N(l.Checkpoints)})
						goto challenged
					}
				}
			}
		challenged:
		}
		for i, r := range j.block(txs...) {
			if r.Code != 0 {
				t.Fatalf("block %d: honest %s's tx failed: %s", j.height, who[i], r.Log)
			}
		}
	}
	for id := uint64(1); ; id++ {
		v, _, err := j.app.QueryJSON(api.JobDisputePath(id), 0)
		if err != nil {
			break
		}
		if d := v.(api.JobDisputeView); d.Outcome == jobs.OutcomeDefender {
			resolved++
		} else if d.Outcome != "" {
			t.Fatalf("dispute %d: %+v", id, d)
		}
	}
	for _, p := range provs {
		if j.bond(p) != bonds[p] {
			t.Fatalf("honest %s slashed: bond %d, was %d", p, j.bond(p), bonds[p])
		}
		v, _, _ := j.app.QueryJSON(api.JobLeasesByProviderPath(j.addr(p)), 0)
		for _, l := range v.([]api.JobLeaseView) {
			if l.Status == "slashed" || l.Status == "abandoned" || l.Forfeited != 0 {
				t.Fatalf("honest lease %+v", l)
			}
			if l.Status == "done" {
				done++
			}
		}
	}
	if resolved < 3 || done < 3 || len(j.orders()) < 10 {
		t.Fatalf("the run exercised too little: %d orders, %d disputes won by the defender, %d leases done", len(j.orders()), resolved, done)
	}
	t.Logf("%d orders, %d leases done, %d cancels, %d disputes won by honest defenders", len(j.orders()), done, cancelled, resolved)
	return j.appHash()
}

func noDispute(j *jobsH, o api.JobOrderView) bool {
	for _, lid := range o.LeaseIDs {
		if j.lease(lid).OpenDispute != 0 {
			return false
		}
	}
	return true
}

// TestJobSampleAndViews: once an epoch's seed is drawn, the sampled
// checkpoints of that epoch are queryable — per provider, the jobs
// service's sample of its checkpoints at its reputation's audit rate, and
// in each a step inside the checkpoint's interval — and the same for
// everyone; the views decode strictly.
func TestJobSampleAndViews(t *testing.T) {
	j := newJobsHarness(t, func(p *types.Params) { p.EpochLength = 40 })
	_, o := j.leased(1, 100_000_000, 1_000, 10)
	lid := o.LeaseIDs[0]
	for i := uint64(1); i <= 10; i++ {
		j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: i, Steps: 10 * i, GasUsed: 1000 * i, StateHash: hashOf("s", 10*i)})
	}
	if j.height > j.params.EpochLength {
		t.Fatalf("checkpoints spilled out of epoch 0 (height %d)", j.height)
	}
	if _, _, err := j.app.QueryJSON(api.JobSamplePath(0), 0); err == nil || !strings.Contains(err.Error(), "epoch 0 has no sampling seed yet") {
		t.Fatalf("sample before the seed: %v", err)
	}
	var v any
	var err error
	for tries := 0; tries < 100; tries++ { // until the seed of epoch 0 is drawn
		j.block()
		if v, _, err = j.app.QueryJSON(api.JobSamplePath(0), 0); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]api.JobSampleView)
	// Reputation 0: the audit ceiling, 20 % of 10 checkpoints.
	if len(got) != 2 {
		t.Fatalf("sampled %d checkpoints: %+v", len(got), got)
	}
	seen := map[uint64]bool{}
	for _, s := range got {
		if s.LeaseID != lid || s.Index < 1 || s.Index > 10 || seen[s.Index] || s.From != 10*(s.Index-1) || s.To != 10*s.Index || s.Step <= s.From || s.Step > s.To {
			t.Fatalf("sample %+v", s)
		}
		seen[s.Index] = true
	}
	again, _, _ := j.app.QueryJSON(api.JobSamplePath(0), 0)
	if fmt.Sprint(again) != fmt.Sprint(got) {
		t.Fatal("the sample is not a function of state")
	}
	cps, _, _ := j.app.QueryJSON(api.JobCheckpointsPath(lid), 0)
	if c := cps.([]api.JobCheckpointView); len(c) != 10 || c[9].Steps != 100 || c[9].Paid != 1 {
		t.Fatalf("checkpoints %+v", c)
	}
}

// TestJobPartyCannotVote: the referee is never one party — a validator
// that challenged cannot vote on its own dispute; its power still counts
// in the total, so without others' votes the dispute is void and its bond
// comes back.
func TestJobPartyCannotVote(t *testing.T) {
	j := newJobsHarness(t, nil)
	_, o := j.leased(1, 1_000_000, 1_000, 1)
	lid := o.LeaseIDs[0]
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 1, GasUsed: 10, StateHash: hashOf("s", 1)})
	j.ok("operator", &types.MsgChallengeCheckpoint{LeaseId: lid, Index: 1})
	if d := j.dispute(1); d.Phase != "vote" || d.Lo != 0 || d.Hi != 1 {
		t.Fatalf("a one-step checkpoint goes straight to the vote: %+v", d)
	}
	j.bad("operator", &types.MsgVoteStep{DisputeId: 1, PostStateHash: hashOf("other", 1)}, types.CodeUnauthorized, "a party to dispute 1 cannot vote on it")
	op0, f0 := j.bal("operator"), j.fees["operator"]
	j.until(j.dispute(1).Deadline)
	if d := j.dispute(1); d.Outcome != jobs.OutcomeVoid {
		t.Fatalf("dispute %+v", d)
	}
	if got, want := j.bal("operator"), op0+j.params.Jobs.DisputeBond-(j.fees["operator"]-f0); got != want {
		t.Fatalf("challenger %d, want %d", got, want)
	}
}
