package jobs

import (
	"bytes"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// Dispute outcomes.
const (
	OutcomeDefender   = "defender"   // the checkpoint stands; the challenger's bond pays the provider
	OutcomeChallenger = "challenger" // the checkpoint was wrong: the provider is slashed
	OutcomeVoid       = "void"       // no validator quorum: bonds back, nothing slashed
)

const (
	phaseBisect   = types.DisputePhase_DISPUTE_PHASE_BISECT
	phasePick     = types.DisputePhase_DISPUTE_PHASE_PICK
	phaseVote     = types.DisputePhase_DISPUTE_PHASE_VOTE
	phaseResolved = types.DisputePhase_DISPUTE_PHASE_RESOLVED
)

// Parts is how many sub-intervals the next bisection of d splits its
// interval into: min(k, hi − lo).
func Parts(d *types.JobDispute, k uint32) uint64 { return min(uint64(k), d.Hi-d.Lo) }

// Boundary is the step of boundary j (0..n) of d's interval split in n.
func Boundary(d *types.JobDispute, j, n uint64) uint64 {
	return d.Lo + types.MulDivU64(j, d.Hi-d.Lo, n)
}

// MaxDisputeTxs is the bound on a dispute's txs over steps steps with
// arity k: 2·ceil(log_k(steps)) + 2 (the challenge, a bisect and a pick per
// round, one vote by a validator holding 2/3 of the power).
func MaxDisputeTxs(steps uint64, k uint32) int {
	rounds := 0
	for n := uint64(1); n < steps; rounds++ {
		if n > (^uint64(0))/uint64(k) {
			rounds++
			break
		}
		n *= uint64(k)
	}
	return 2*rounds + 2
}

func validatorPower(kv store.KV, p types.Params, addr []byte) int64 {
	v := stake.GetValidator(kv, addr)
	if v == nil {
		return 0
	}
	return stake.Power(p, v)
}

// Challenge opens a dispute over checkpoint m.Index of a lease: the
// challenger (the order's owner, a bonded validator, or the provider of
// another lease of the same order) escrows the dispute bond; the interval
// runs from the previous checkpoint (or the order's initial state, step 0)
// to the disputed one.
func Challenge(kv store.KV, p types.Params, height int64, challenger []byte, m *types.MsgChallengeCheckpoint) (*types.JobDispute, error) {
	jp, err := ParamsOf(p)
	if err != nil {
		return nil, err
	}
	l := GetLease(kv, m.LeaseId)
	if l == nil {
		return nil, types.Errorf(types.CodeNotFound, "lease %d does not exist", m.LeaseId)
	}
	cp := GetCheckpoint(kv, l.Id, m.Index)
	if cp == nil {
		return nil, types.Errorf(types.CodeNotFound, "lease %d has no checkpoint %d", l.Id, m.Index)
	}
	if l.CollateralReleased {
		return nil, types.Errorf(types.CodeInvalid, "lease %d's challenge window is over (its collateral is released or forfeited)", l.Id)
	}
	if l.OpenDispute != 0 {
		return nil, types.Errorf(types.CodeInvalid, "lease %d already has an open dispute (%d)", l.Id, l.OpenDispute)
	}
	if bytes.Equal(challenger, l.Provider) {
		return nil, types.Errorf(types.CodeUnauthorized, "a provider cannot challenge its own checkpoint")
	}
	o := GetOrder(kv, l.OrderId)
	if o.DatasetId != 0 {
		// Private data: only those who can re-execute may challenge — the
		// buyer (the order's owner) and the dataset's bonded auditors.
		ds := data.Get(kv, o.DatasetId)
		if !bytes.Equal(challenger, o.Owner) && (ds == nil || !data.IsAuditor(ds, challenger) || validatorPower(kv, p, challenger) == 0) {
			return nil, types.Errorf(types.CodeUnauthorized, "order %d runs on dataset %d: only its owner or the dataset's bonded auditors may challenge its checkpoints", o.Id, o.DatasetId)
		}
	} else {
		allowed := bytes.Equal(challenger, o.Owner) || validatorPower(kv, p, challenger) > 0
		for _, other := range o.LeaseIds {
			if ol := GetLease(kv, other); other != l.Id && bytes.Equal(ol.Provider, challenger) {
				allowed = true
			}
		}
		if !allowed {
			return nil, types.Errorf(types.CodeUnauthorized, "only order %d's owner, a bonded validator or another replica's provider may challenge its checkpoints", o.Id)
		}
	}
	if err := bank.Send(kv, challenger, Account, jp.DisputeBond); err != nil {
		return nil, err
	}
	d := &types.JobDispute{
		Id: next(kv, seqDisp), LeaseId: l.Id, Index: m.Index, Challenger: challenger, Defender: l.Provider,
		Bond: jp.DisputeBond, Hi: cp.Steps, HiHash: cp.StateHash, OpenedHeight: height,
	}
	if m.Index > 1 {
		prev := GetCheckpoint(kv, l.Id, m.Index-1)
		d.Lo, d.LoHash = prev.Steps, prev.StateHash
	}
	setPhase(kv, jp, height, d)
	putDispute(kv, d)
	kv.Set(codec.Key(prefixDisputes, codec.U64(l.Id), codec.U64(d.Id)), []byte{1})
	l.OpenDispute = d.Id
	putLease(kv, l)
	return d, nil
}

// setPhase moves d to the phase its interval calls for (one step left:
// the vote) with that phase's deadline.
func setPhase(kv store.KV, jp *types.JobsParams, height int64, d *types.JobDispute) {
	if d.Deadline != 0 {
		store.Dequeue(kv, qMove, d.Deadline, d.Id)
	}
	switch {
	case d.Hi-d.Lo <= 1:
		d.Phase, d.Deadline = phaseVote, height+jp.VoteWindow
	case d.Phase == phaseBisect:
		d.Phase, d.Deadline = phasePick, height+jp.MoveWindow
	default:
		d.Phase, d.Deadline = phaseBisect, height+jp.MoveWindow
	}
	store.Enqueue(kv, qMove, d.Deadline, d.Id)
}

func openDispute(kv store.KV, height int64, id uint64, want types.DisputePhase, mover []byte) (*types.JobDispute, error) {
	d := GetDispute(kv, id)
	if d == nil {
		return nil, types.Errorf(types.CodeNotFound, "dispute %d does not exist", id)
	}
	if d.Phase != want {
		return nil, types.Errorf(types.CodeInvalid, "dispute %d is in phase %s, not %s", id, PhaseName(d.Phase), PhaseName(want))
	}
	if height > d.Deadline {
		return nil, types.Errorf(types.CodeInvalid, "dispute %d's move was due by height %d", id, d.Deadline)
	}
	if mover != nil && !bytes.Equal(mover, d.Defender) && want == phaseBisect {
		return nil, types.Errorf(types.CodeUnauthorized, "only dispute %d's defender %s may bisect", id, types.Address(d.Defender))
	}
	if mover != nil && !bytes.Equal(mover, d.Challenger) && want == phasePick {
		return nil, types.Errorf(types.CodeUnauthorized, "only dispute %d's challenger %s may pick", id, types.Address(d.Challenger))
	}
	return d, nil
}

// PhaseName is a dispute phase's short name.
func PhaseName(ph types.DisputePhase) string {
	n, ok := types.DisputePhase_name[int32(ph)]
	if !ok {
		return fmt.Sprint(int32(ph))
	}
	return lower(n[len("DISPUTE_PHASE_"):])
}

// Bisect is the defender's move: the state hashes at the inner boundaries
// of its interval split in Parts.
func Bisect(kv store.KV, p types.Params, height int64, signer []byte, m *types.MsgBisect) (*types.JobDispute, error) {
	jp, err := ParamsOf(p)
	if err != nil {
		return nil, err
	}
	d, err := openDispute(kv, height, m.DisputeId, phaseBisect, signer)
	if err != nil {
		return nil, err
	}
	if n := Parts(d, jp.BisectionK); uint64(len(m.Hashes)) != n-1 {
		return nil, types.Errorf(types.CodeInvalid, "dispute %d needs %d hashes (k = %d over steps %d..%d), got %d", d.Id, n-1, jp.BisectionK, d.Lo, d.Hi, len(m.Hashes))
	}
	d.Hashes = m.Hashes
	d.Moves++
	setPhase(kv, jp, height, d)
	putDispute(kv, d)
	return d, nil
}

// Pick is the challenger's move: the first part whose end state it
// disagrees with; the interval narrows to that part.
func Pick(kv store.KV, p types.Params, height int64, signer []byte, m *types.MsgPickInterval) (*types.JobDispute, error) {
	jp, err := ParamsOf(p)
	if err != nil {
		return nil, err
	}
	d, err := openDispute(kv, height, m.DisputeId, phasePick, signer)
	if err != nil {
		return nil, err
	}
	n := uint64(len(d.Hashes)) + 1
	j := uint64(m.Part)
	if j >= n {
		return nil, types.Errorf(types.CodeInvalid, "dispute %d has parts 0..%d, not %d", d.Id, n-1, j)
	}
	hash := func(i uint64) []byte {
		switch i {
		case 0:
			return d.LoHash
		case n:
			return d.HiHash
		}
		return d.Hashes[i-1]
	}
	lo, hi := Boundary(d, j, n), Boundary(d, j+1, n)
	d.LoHash, d.HiHash = hash(j), hash(j+1)
	d.Lo, d.Hi, d.Hashes = lo, hi, nil
	d.Moves++
	setPhase(kv, jp, height, d)
	putDispute(kv, d)
	return d, nil
}

// Vote records a bonded validator's post-state hash for the dispute's
// single step; when validators holding at least 2/3 of the voting power
// agree on a hash, the dispute resolves: the defender wins if it is the
// defender's claimed state, the challenger otherwise. Over a
// compute-to-data run only the dataset's auditors vote, and the quorum is
// 2/3 of the auditors' voting power.
func Vote(kv store.KV, p types.Params, height int64, validator []byte, m *types.MsgVoteStep) (*types.JobDispute, []abci.Event, error) {
	if _, err := ParamsOf(p); err != nil {
		return nil, nil, err
	}
	d, err := openDispute(kv, height, m.DisputeId, phaseVote, nil)
	if err != nil {
		return nil, nil, err
	}
	if validatorPower(kv, p, validator) == 0 {
		return nil, nil, types.Errorf(types.CodeUnauthorized, "only bonded validators vote on disputes")
	}
	if bytes.Equal(validator, d.Challenger) || bytes.Equal(validator, d.Defender) {
		return nil, nil, types.Errorf(types.CodeUnauthorized, "a party to dispute %d cannot vote on it", d.Id)
	}
	// A run on private data is refereed by the dataset's auditors only
	// (nobody else may read the data to re-execute the step): the quorum
	// is 2/3 of their voting power.
	var auditors *types.Dataset
	if o := GetOrder(kv, GetLease(kv, d.LeaseId).OrderId); o.DatasetId != 0 {
		if auditors = data.Get(kv, o.DatasetId); auditors == nil || !data.IsAuditor(auditors, validator) {
			return nil, nil, types.Errorf(types.CodeUnauthorized, "dispute %d is over a run on dataset %d: only the dataset's auditors vote on it", d.Id, o.DatasetId)
		}
	}
	vk := codec.Key(prefixVote, codec.U64(d.Id), validator)
	if kv.Has(vk) {
		return nil, nil, types.Errorf(types.CodeInvalid, "validator %s already voted on dispute %d", types.Address(validator), d.Id)
	}
	kv.Set(vk, m.PostStateHash)
	var total, agree int64
	if auditors != nil {
		for _, a := range auditors.Auditors {
			total += validatorPower(kv, p, a)
		}
	} else {
		stake.IterateValidators(kv, func(v *types.Validator) bool {
			total += stake.Power(p, v)
			return true
		})
	}
	kv.Iterate(codec.Key(prefixVote, codec.U64(d.Id)), func(k, h []byte) bool {
		voter := k[len(prefixVote)+8:]
		if bytes.Equal(h, m.PostStateHash) && (auditors == nil || data.IsAuditor(auditors, voter)) {
			agree += validatorPower(kv, p, voter)
		}
		return true
	})
	if 3*agree < 2*total {
		return d, nil, nil
	}
	outcome, reason := OutcomeChallenger, fmt.Sprintf("validators with %d of %d power computed another state at step %d", agree, total, d.Hi)
	if bytes.Equal(m.PostStateHash, d.HiHash) {
		outcome, reason = OutcomeDefender, fmt.Sprintf("validators with %d of %d power confirmed the state at step %d", agree, total, d.Hi)
	}
	evs, err := resolve(kv, p, height, d, outcome, reason)
	return d, evs, err
}

// moveTimeout resolves a dispute whose move is overdue: silence loses; a
// vote without quorum voids the dispute.
func moveTimeout(kv store.KV, p types.Params, height int64, id uint64) ([]abci.Event, error) {
	d := GetDispute(kv, id)
	if d == nil || d.Phase == phaseResolved || d.Deadline > height {
		return nil, nil
	}
	switch d.Phase {
	case phaseBisect:
		return resolve(kv, p, height, d, OutcomeChallenger, fmt.Sprintf("the defender did not bisect by height %d", d.Deadline))
	case phasePick:
		return resolve(kv, p, height, d, OutcomeDefender, fmt.Sprintf("the challenger did not pick by height %d", d.Deadline))
	}
	return resolve(kv, p, height, d, OutcomeVoid, fmt.Sprintf("no 2/3 validator quorum by height %d", d.Deadline))
}

// resolve settles a dispute.
//   - defender: the challenger's bond goes to the provider.
//   - challenger: the provider forfeits the lease's collateral — the owner
//     is refunded what it paid for the disputed checkpoint and every later
//     one (up to the collateral), the challenger gets reward_bps of the
//     rest and its bond back, the rest is burned — and its bond loses
//     slash_bps["jobs/wrong_step"] (stake.SlashProvider, burned); an open
//     lease ends as slashed (its unspent budget back to the owner).
//   - void: the bond goes back; nothing else changes.
//
// In every case the lease leaves the dispute: an open lease's liveness
// clock restarts, one past its order's deadline expires, and collateral
// whose challenge window ended during the dispute is released next block.
func resolve(kv store.KV, p types.Params, height int64, d *types.JobDispute, outcome, reason string) ([]abci.Event, error) {
	store.Dequeue(kv, qMove, d.Deadline, d.Id)
	d.Phase, d.Outcome, d.Reason = phaseResolved, outcome, reason
	l := GetLease(kv, d.LeaseId)
	o := GetOrder(kv, l.OrderId)
	l.OpenDispute = 0
	switch outcome {
	case OutcomeDefender:
		if err := bank.Send(kv, Account, d.Defender, d.Bond); err != nil {
			return nil, err
		}
		d.Reward = d.Bond
	case OutcomeVoid:
		if err := bank.Send(kv, Account, d.Challenger, d.Bond); err != nil {
			return nil, err
		}
	case OutcomeChallenger:
		var disputed uint64
		for _, c := range Checkpoints(kv, l.Id) {
			if c.Index >= d.Index {
				disputed += c.Paid
			}
		}
		coll := uint64(0)
		if !l.CollateralReleased {
			coll = l.Collateral
			l.CollateralReleased, l.Forfeited = true, l.Collateral
			store.Dequeue(kv, qRelease, l.ReleaseHeight, l.Id)
		}
		d.Refund = min(coll, disputed)
		rest := coll - d.Refund
		d.Reward, _ = mulDiv(rest, p.Jobs.RewardBps, 10000, false)
		if err := bank.Send(kv, Account, o.Owner, d.Refund); err != nil {
			return nil, err
		}
		if err := bank.Send(kv, Account, d.Challenger, d.Reward+d.Bond); err != nil {
			return nil, err
		}
		if err := bank.Burn(kv, Account, rest-d.Reward); err != nil {
			return nil, err
		}
		cut, err := fault(kv, p, d.Defender, "wrong_step")
		if err != nil {
			return nil, err
		}
		d.Slashed = coll + cut
		if open(l.Status) {
			if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_SLASHED); err != nil {
				return nil, err
			}
			l = GetLease(kv, l.Id)
		} else {
			l.Status = types.JobStatus_JOB_STATUS_SLASHED
			putLease(kv, l)
			if err := refundRun(kv, p, o.Id); err != nil { // a run proved wrong is not paid for
				return nil, err
			}
			o = GetOrder(kv, o.Id)
			if o.Status == types.JobStatus_JOB_STATUS_DONE { // no longer every lease done
				putLease(kv, l)
				o.Status = types.JobStatus_JOB_STATUS_RUNNING
				putOrder(kv, o)
				if err := settleOrder(kv, o.Id); err != nil {
					return nil, err
				}
				o = GetOrder(kv, o.Id)
			}
		}
	}
	if open(l.Status) {
		switch {
		case height >= o.Deadline:
			putLease(kv, l)
			if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_EXPIRED); err != nil {
				return nil, err
			}
			l = GetLease(kv, l.Id)
		default:
			store.Dequeue(kv, qLive, leaseLiveness(p, l, l.LastHeight), l.Id)
			l.LastHeight = height
			store.Enqueue(kv, qLive, leaseLiveness(p, l, height), l.Id)
			if Cost(o.GasLimit, l.Price) == Cost(l.GasUsed, l.Price) {
				kv.Set(codec.Key(qSweep, codec.U64(l.Id)), []byte{1})
			}
		}
	} else if !l.CollateralReleased && l.ReleaseHeight <= height {
		l.ReleaseHeight = height + 1
		store.Enqueue(kv, qRelease, l.ReleaseHeight, l.Id)
	}
	putLease(kv, l)
	putDispute(kv, d)
	return []abci.Event{ev("job_dispute_resolved", "dispute_id", u64(d.Id), "lease_id", u64(l.Id), "outcome", outcome, "reason", reason,
		"slashed", u64(d.Slashed), "refund", u64(d.Refund), "reward", u64(d.Reward))}, nil
}
