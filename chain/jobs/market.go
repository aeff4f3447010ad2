package jobs

import (
	"bytes"
	"fmt"
	"math/bits"
	"slices"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// perMillion: prices are in uagr per million gas.
const perMillion = 1_000_000

// ParamsOf returns the market's params, or the error every message of a
// chain without a job market gets.
func ParamsOf(p types.Params) (*types.JobsParams, error) {
	if p.Jobs == nil {
		return nil, types.Errorf(types.CodeInvalid, "this chain has no job market (its genesis has no params.jobs)")
	}
	return p.Jobs, nil
}

// mulDiv returns a*b/d rounded down (up with ceil), or false when it does
// not fit in 64 bits.
func mulDiv(a, b, d uint64, ceil bool) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, d)
	if ceil && r > 0 {
		if q == ^uint64(0) {
			return 0, false
		}
		q++
	}
	return q, true
}

// Cost is what gas (cumulative) costs at price per million gas, rounded
// down: a lease is paid Cost(new) − Cost(old) per checkpoint, so rounding
// never drifts over a chain of checkpoints.
func Cost(gas, price uint64) uint64 {
	c, _ := mulDiv(gas, price, perMillion, false) // fits: Cost(gas_limit, price) <= Budget
	return c
}

// Budget is what a replica of gasLimit gas at price may cost:
// ceil(gasLimit × price / 10^6).
func Budget(gasLimit, price uint64) (uint64, error) {
	b, ok := mulDiv(gasLimit, price, perMillion, true)
	if !ok {
		return 0, types.Errorf(types.CodeOverflow, "gas_limit %d × price %d overflows", gasLimit, price)
	}
	return b, nil
}

func ev(typ string, attrs ...string) abci.Event {
	e := abci.Event{Type: typ}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attributes = append(e.Attributes, abci.EventAttribute{Key: attrs[i], Value: attrs[i+1], Index: true})
	}
	return e
}

// Submit posts an order for owner and escrows m.Escrow, which must cover
// r × Budget(gas_limit, max_price). It returns the order's id.
func Submit(kv store.KV, p types.Params, height int64, owner []byte, m *types.MsgSubmitJob) (uint64, error) {
	jp, err := ParamsOf(p)
	if err != nil {
		return 0, err
	}
	if m.BidWindow > jp.MaxBidWindow {
		return 0, types.Errorf(types.CodeInvalid, "bid_window %d above the maximum %d blocks", m.BidWindow, jp.MaxBidWindow)
	}
	end := height + m.BidWindow
	if m.Deadline <= end {
		return 0, types.Errorf(types.CodeInvalid, "deadline %d must be after the bid window, which ends at height %d", m.Deadline, end)
	}
	per, err := Budget(m.GasLimit, m.MaxPrice)
	if err != nil {
		return 0, err
	}
	need, ok := mulDiv(per, uint64(m.Replication), 1, false)
	if !ok {
		return 0, types.Errorf(types.CodeOverflow, "replication × budget overflows")
	}
	if m.Escrow < need {
		return 0, types.Errorf(types.CodeInsufficientFunds, "escrow %d does not cover replication %d × ceil(gas_limit %d × max_price %d / 10^6) = %d",
			m.Escrow, m.Replication, m.GasLimit, m.MaxPrice, need)
	}
	if m.LivenessBlocks != 0 && (m.LivenessBlocks < p.EpochLength || m.LivenessBlocks > m.Deadline-height) {
		return 0, types.Errorf(types.CodeInvalid, "liveness_blocks %d must be at least one epoch (%d blocks) and at most the time to the deadline (%d blocks)",
			m.LivenessBlocks, p.EpochLength, m.Deadline-height)
	}
	var ds *types.Dataset
	if m.DatasetId != 0 {
		if ds, err = checkDataset(kv, p, owner, m); err != nil {
			return 0, err
		}
	}
	total := m.Escrow
	if ds != nil {
		if total, err = types.AddU64(m.Escrow, ds.RunPrice); err != nil {
			return 0, err
		}
	}
	if err := bank.Send(kv, owner, Account, total); err != nil {
		return 0, err
	}
	id := next(kv, seqOrder)
	o := &types.JobOrder{
		Id: id, Owner: owner, ModuleHash: m.ModuleHash, InputHashes: m.InputHashes, GasLimit: m.GasLimit,
		MemoryPages: m.MemoryPages, MaxPrice: m.MaxPrice, Deadline: m.Deadline, Collateral: m.Collateral,
		Replication: m.Replication, BidWindowEnd: end, CheckpointInterval: m.CheckpointInterval,
		Escrow: m.Escrow, Status: types.JobStatus_JOB_STATUS_BIDDING, SubmittedHeight: height,
		Args: m.Args, InputNames: m.InputNames, LivenessBlocks: m.LivenessBlocks,
	}
	if ds != nil {
		o.DatasetId, o.BuyerKey, o.OutputCap, o.RunPrice, o.RunHeld = ds.Id, m.BuyerKey, ds.OutputCap, ds.RunPrice, ds.RunPrice
		kv.Set(codec.Key(prefixByDataset, codec.U64(ds.Id), codec.U64(id)), []byte{1})
	}
	putOrder(kv, o)
	kv.Set(codec.Key(prefixByOwner, owner, codec.U64(id)), []byte{1})
	store.Enqueue(kv, qClear, end, id)
	store.Enqueue(kv, qDeadline, m.Deadline, id)
	return id, nil
}

// checkDataset applies the compute-to-data rules to an order on a
// dataset: the chain has a data market, the dataset is active, the order's
// owner may buy from it, its module may run on it (on its allow-list, or
// any module under the aggregate output cap), and its run price is within
// the order's max_run_price. Replication 1 and the buyer key are checked
// statelessly (validateSubmit).
func checkDataset(kv store.KV, p types.Params, owner []byte, m *types.MsgSubmitJob) (*types.Dataset, error) {
	dp, err := data.ParamsOf(p)
	if err != nil {
		return nil, err
	}
	ds := data.Get(kv, m.DatasetId)
	switch {
	case ds == nil:
		return nil, types.Errorf(types.CodeNotFound, "dataset %d does not exist", m.DatasetId)
	case ds.Retired:
		return nil, types.Errorf(types.CodeInvalid, "dataset %d is retired: it takes no more runs", ds.Id)
	case !bytes.Equal(owner, ds.Owner) && !data.AllowsBuyer(ds, owner):
		return nil, types.Errorf(types.CodeUnauthorized, "%s is not among dataset %d's allowed buyers", types.Address(owner), ds.Id)
	case !data.AllowsModule(ds, m.ModuleHash):
		return nil, types.Errorf(types.CodeUnauthorized, "module %x is not on dataset %d's allow-list", m.ModuleHash, ds.Id)
	case len(ds.AllowedModules) == 0 && ds.OutputCap > dp.MaxAggregateOutput:
		return nil, types.Errorf(types.CodeInvalid, "dataset %d lets any module run but its output_cap %d is above max_aggregate_output %d",
			ds.Id, ds.OutputCap, dp.MaxAggregateOutput)
	case m.MaxRunPrice != 0 && ds.RunPrice > m.MaxRunPrice:
		return nil, types.Errorf(types.CodeInvalid, "dataset %d's run_price %d is above max_run_price %d", ds.Id, ds.RunPrice, m.MaxRunPrice)
	}
	return ds, nil
}

// settleRun pays a compute-to-data order's held run price to the
// dataset's owner when its lease ended done with a non-zero state hash (a
// success: a deterministic failure commits the zero state), and refunds it
// to the order's owner otherwise. The caller stores o.
func settleRun(kv store.KV, p types.Params, o *types.JobOrder, success bool) error {
	if o.RunHeld == 0 {
		return nil
	}
	amount := o.RunHeld
	o.RunHeld = 0
	if !success {
		return bank.Send(kv, Account, o.Owner, amount)
	}
	if _, err := data.PayRun(kv, p, o.DatasetId, Account, amount); err != nil {
		return err
	}
	o.RunPaid = amount
	return nil
}

// refundRun gives a compute-to-data order's held run price back to its
// owner (nothing when none is held).
func refundRun(kv store.KV, p types.Params, order uint64) error {
	o := GetOrder(kv, order)
	if o == nil || o.RunHeld == 0 {
		return nil
	}
	if err := settleRun(kv, p, o, false); err != nil {
		return err
	}
	putOrder(kv, o)
	return nil
}

// releaseRun pays a compute-to-data order's held run price to the
// dataset's owner when its lease's collateral is released: the run ended a
// success and nobody proved it wrong within the challenge window.
func releaseRun(kv store.KV, p types.Params, l *types.JobLease) error {
	o := GetOrder(kv, l.OrderId)
	if o == nil || o.RunHeld == 0 {
		return nil
	}
	if err := settleRun(kv, p, o, succeeded(l, l.Status)); err != nil {
		return err
	}
	putOrder(kv, o)
	return nil
}

// succeeded: a lease ends a success when it is done with a non-zero state.
func succeeded(l *types.JobLease, status types.JobStatus) bool {
	return status == types.JobStatus_JOB_STATUS_DONE && len(l.StateHash) == types.HashLen && !bytes.Equal(l.StateHash, zeroHash[:])
}

var zeroHash [types.HashLen]byte

// qualify says why provider may not take work now, or nil.
func qualify(kv store.KV, p types.Params, provider []byte) error {
	pv := registry.Get(kv, provider)
	if pv == nil || !pv.Registered {
		return types.Errorf(types.CodeUnauthorized, "%s is not a registered provider", types.Address(provider))
	}
	if pv.Jailed {
		return types.Errorf(types.CodeUnauthorized, "provider %s is jailed", types.Address(provider))
	}
	if pv.Info == nil || !slices.Contains(pv.Info.Capabilities, Capability) {
		return types.Errorf(types.CodeUnauthorized, "provider %s does not declare the %q capability", types.Address(provider), Capability)
	}
	if b := stake.ProviderBond(kv, provider); b < p.MinProviderStake {
		return types.Errorf(types.CodeInsufficientFunds, "provider %s has %d bonded, below min_provider_stake %d", types.Address(provider), b, p.MinProviderStake)
	}
	return nil
}

// Bid records provider's bid on an order and locks its collateral (at the
// bid, so clearing never depends on a balance it could not check).
func Bid(kv store.KV, p types.Params, height int64, provider []byte, m *types.MsgBidJob) error {
	jp, err := ParamsOf(p)
	if err != nil {
		return err
	}
	o := GetOrder(kv, m.OrderId)
	if o == nil {
		return types.Errorf(types.CodeNotFound, "order %d does not exist", m.OrderId)
	}
	if o.Status != types.JobStatus_JOB_STATUS_BIDDING || height > o.BidWindowEnd {
		return types.Errorf(types.CodeInvalid, "bidding on order %d closed at height %d", o.Id, o.BidWindowEnd)
	}
	if bytes.Equal(provider, o.Owner) {
		return types.Errorf(types.CodeUnauthorized, "the owner cannot bid on its own order")
	}
	if o.DatasetId != 0 {
		if ds := data.Get(kv, o.DatasetId); ds == nil || !bytes.Equal(provider, ds.Host) {
			return types.Errorf(types.CodeUnauthorized, "order %d runs on dataset %d: only its host may bid", o.Id, o.DatasetId)
		}
	}
	if err := qualify(kv, p, provider); err != nil {
		return err
	}
	if m.Price > o.MaxPrice {
		return types.Errorf(types.CodeInvalid, "price %d above order %d's max_price %d", m.Price, o.Id, o.MaxPrice)
	}
	if m.Collateral < o.Collateral {
		return types.Errorf(types.CodeInvalid, "collateral %d below order %d's required %d", m.Collateral, o.Id, o.Collateral)
	}
	at, dup := slices.BinarySearchFunc(o.OpenBids, provider, func(b *types.JobBid, p []byte) int { return bytes.Compare(b.Provider, p) })
	if dup {
		return types.Errorf(types.CodeInvalid, "provider %s already bid on order %d", types.Address(provider), o.Id)
	}
	if o.Bids >= jp.MaxBids {
		return types.Errorf(types.CodeInvalid, "order %d already has the maximum %d bids", o.Id, jp.MaxBids)
	}
	if err := bank.Send(kv, provider, Account, m.Collateral); err != nil {
		return err
	}
	o.OpenBids = slices.Insert(o.OpenBids, at, &types.JobBid{OrderId: o.Id, Provider: provider, Price: m.Price, Collateral: m.Collateral, Height: height})
	o.Bids++
	putOrder(kv, o)
	return nil
}

// payouts gathers what one end block's clearing pays out of the jobs
// account (refunded escrow and collateral) per account, so each account
// is written once rather than once per order; pay applies them in address
// order.
type payouts map[string]uint64

func (po payouts) add(to []byte, amount uint64) {
	if amount > 0 {
		po[string(to)] += amount // bounded by the jobs account's balance
	}
}

func (po payouts) pay(kv store.KV) error {
	addrs := make([]string, 0, len(po))
	for a := range po {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range addrs {
		if err := bank.Send(kv, Account, []byte(a), po[a]); err != nil {
			return err
		}
	}
	return nil
}

// provCache remembers, within one end block's clearing, whether each
// bidder qualifies and its reputation: nothing clearing does changes
// either, and one provider bids on many orders.
type provCache map[string]provQual

type provQual struct {
	ok  bool
	rep uint64
}

func (c provCache) of(kv store.KV, p types.Params, provider []byte) (uint64, bool) {
	q, seen := c[string(provider)]
	if !seen {
		q.ok = qualify(kv, p, provider) == nil
		if q.ok {
			q.rep = registry.Get(kv, provider).ReputationBps
		}
		c[string(provider)] = q
	}
	return q.rep, q.ok
}

// RepWeight is the weight of a reputation (0..10000 bps) in clearing: a
// bid's score is price × (30000 − reputation), so a provider with full
// reputation wins against a newcomer bidding up to a third less.
func RepWeight(rep uint64) uint64 { return 30000 - min(rep, 10000) }

// clearOrder leases an order to the r best qualified bids at the end of
// its bid window, or records why it cannot.
func clearOrder(kv store.KV, p types.Params, height int64, o *types.JobOrder, pc provCache, po payouts) ([]abci.Event, error) {
	type cand struct {
		bid   *types.JobBid
		score uint64
	}
	bids := o.OpenBids
	o.OpenBids = nil
	var cands []cand
	var refund []*types.JobBid
	disq := 0
	for _, b := range bids {
		rep, ok := pc.of(kv, p, b.Provider)
		if !ok || b.Price > o.MaxPrice || b.Collateral < o.Collateral {
			disq++
			refund = append(refund, b)
			continue
		}
		cands = append(cands, cand{b, b.Price * RepWeight(rep)})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		switch {
		case a.score != b.score:
			return cmpU(a.score, b.score)
		case a.bid.Price != b.bid.Price:
			return cmpU(a.bid.Price, b.bid.Price)
		}
		return bytes.Compare(a.bid.Provider, b.bid.Provider)
	})
	r := int(o.Replication)
	var events []abci.Event
	if len(cands) < r {
		for _, c := range cands {
			refund = append(refund, c.bid)
		}
		o.Status = types.JobStatus_JOB_STATUS_UNMATCHED
		o.Reason = fmt.Sprintf("no match: %d qualified bids for replication %d (%d bids; %d disqualified: provider unregistered, jailed, without the %q capability or under-bonded)",
			len(cands), r, len(bids), disq, Capability)
		po.add(o.Owner, o.Escrow+o.RunHeld) // no run: its price goes back too
		o.Escrow, o.RunHeld = 0, 0
		store.Dequeue(kv, qDeadline, o.Deadline, o.Id)
		events = append(events, ev("job_unmatched", "order_id", u64(o.Id), "reason", o.Reason))
	} else {
		for _, c := range cands[r:] {
			refund = append(refund, c.bid)
		}
		for _, c := range cands[:r] {
			budget, err := Budget(o.GasLimit, c.bid.Price)
			if err != nil || budget > o.Escrow {
				return nil, fmt.Errorf("order %d: escrow %d cannot fund a lease at price %d (checked at submit)", o.Id, o.Escrow, c.bid.Price)
			}
			o.Escrow -= budget
			l := &types.JobLease{
				Id: next(kv, seqLease), OrderId: o.Id, Provider: c.bid.Provider, Owner: o.Owner, Price: c.bid.Price,
				Collateral: c.bid.Collateral, Budget: budget, Status: types.JobStatus_JOB_STATUS_RUNNING,
				StartedHeight: height, LastHeight: height, LivenessBlocks: o.LivenessBlocks,
			}
			putLease(kv, l)
			kv.Set(codec.Key(prefixByProvider, l.Provider, codec.U64(l.Id)), []byte{1})
			store.Enqueue(kv, qLive, leaseLiveness(p, l, height), l.Id)
			o.LeaseIds = append(o.LeaseIds, l.Id)
			events = append(events, ev("job_lease", "order_id", u64(o.Id), "lease_id", u64(l.Id),
				"provider", types.Address(l.Provider).String(), "price", u64(l.Price), "budget", u64(budget)))
		}
		// What the chosen prices leave of the escrow goes back at once.
		po.add(o.Owner, o.Escrow)
		o.Escrow = 0
		o.Status = types.JobStatus_JOB_STATUS_RUNNING
	}
	for _, b := range refund {
		po.add(b.Provider, b.Collateral)
	}
	putOrder(kv, o)
	return events, nil
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// leaseLiveness is the height at whose end lease l, last active at
// height, is abandoned if it commits nothing more: its order's
// liveness_blocks later, or liveness_epochs × epoch_length by default.
func leaseLiveness(p types.Params, l *types.JobLease, height int64) int64 {
	if l.LivenessBlocks > 0 {
		return height + l.LivenessBlocks
	}
	return height + int64(p.Jobs.LivenessEpochs)*p.EpochLength
}

// Commit records the next checkpoint of a lease and pays the gas it
// reports since the previous one at the lease's price: the fee pool gets
// fee_bps of it, the provider the rest.
func Commit(kv store.KV, p types.Params, height int64, provider []byte, m *types.MsgCommitCheckpoint) ([][2]string, error) {
	jp, err := ParamsOf(p)
	if err != nil {
		return nil, err
	}
	l := GetLease(kv, m.LeaseId)
	if l == nil {
		return nil, types.Errorf(types.CodeNotFound, "lease %d does not exist", m.LeaseId)
	}
	if !bytes.Equal(provider, l.Provider) {
		return nil, types.Errorf(types.CodeUnauthorized, "only lease %d's provider %s may commit its checkpoints", l.Id, types.Address(l.Provider))
	}
	if l.OpenDispute != 0 {
		return nil, types.Errorf(types.CodeInvalid, "lease %d is under dispute %d", l.Id, l.OpenDispute)
	}
	if l.Status != types.JobStatus_JOB_STATUS_RUNNING {
		return nil, types.Errorf(types.CodeInvalid, "lease %d is %s", l.Id, StatusName(l.Status))
	}
	o := GetOrder(kv, l.OrderId)
	if height > o.Deadline {
		return nil, types.Errorf(types.CodeInvalid, "order %d's deadline %d has passed", o.Id, o.Deadline)
	}
	if m.Index != l.Checkpoints+1 {
		return nil, types.Errorf(types.CodeInvalid, "checkpoint %d out of order: lease %d's next is %d", m.Index, l.Id, l.Checkpoints+1)
	}
	if m.Steps <= l.Steps {
		return nil, types.Errorf(types.CodeInvalid, "steps %d must exceed the previous checkpoint's %d", m.Steps, l.Steps)
	}
	if d := m.Steps - l.Steps; d > o.CheckpointInterval || (!m.Done && d != o.CheckpointInterval) {
		return nil, types.Errorf(types.CodeInvalid, "a checkpoint comes every %d steps (the final one within that): this one is %d steps after the last", o.CheckpointInterval, d)
	}
	if m.GasUsed < l.GasUsed {
		return nil, types.Errorf(types.CodeInvalid, "gas_used %d below the previous checkpoint's %d", m.GasUsed, l.GasUsed)
	}
	if m.GasUsed > o.GasLimit {
		return nil, types.Errorf(types.CodeInvalid, "gas_used %d above order %d's gas_limit %d", m.GasUsed, o.Id, o.GasLimit)
	}
	pay := Cost(m.GasUsed, l.Price) - Cost(l.GasUsed, l.Price)
	if left := l.Budget - l.Paid - l.Refunded; pay > left {
		return nil, types.Errorf(types.CodeInsufficientFunds, "lease %d's escrow %d cannot pay %d", l.Id, left, pay)
	}
	fee, _ := mulDiv(pay, jp.FeeBps, 10000, false)
	if err := bank.Send(kv, Account, l.Provider, pay-fee); err != nil {
		return nil, err
	}
	if err := bank.Send(kv, Account, bank.FeePool, fee); err != nil {
		return nil, err
	}
	store.Dequeue(kv, qLive, leaseLiveness(p, l, l.LastHeight), l.Id)
	l.Paid += pay
	l.GasUsed, l.Steps, l.Checkpoints, l.StateHash, l.LastHeight = m.GasUsed, m.Steps, m.Index, m.StateHash, height
	cp := &types.JobCheckpoint{LeaseId: l.Id, Index: m.Index, Steps: m.Steps, GasUsed: m.GasUsed, StateHash: m.StateHash,
		Done: m.Done, ResultHash: m.ResultHash, Height: height, Paid: pay}
	kv.Set(codec.Key(prefixCheckpoint, codec.U64(l.Id), codec.U64(m.Index)), codec.Marshal(cp))
	rep := registry.Get(kv, provider).GetReputationBps()
	kv.Set(codec.Key(prefixByEpoch, codec.U64(epochs.Number(p, height)), provider, codec.U64(l.Id), codec.U64(m.Index)), codec.U64(rep))
	attrs := [][2]string{{"lease_id", u64(l.Id)}, {"index", u64(m.Index)}, {"paid", u64(pay - fee)}, {"pool_fee", u64(fee)}}
	// Replicas must agree checkpoint by checkpoint.
	for _, other := range o.LeaseIds {
		if other == l.Id {
			continue
		}
		if oc := GetCheckpoint(kv, other, m.Index); oc != nil && (oc.Steps != m.Steps || !bytes.Equal(oc.StateHash, m.StateHash)) {
			if o.MismatchIndex == 0 || m.Index < o.MismatchIndex {
				o.MismatchIndex = m.Index
				putOrder(kv, o)
			}
			attrs = append(attrs, [2]string{"mismatch_lease", u64(other)})
		}
	}
	switch {
	case m.Done:
		l.ResultHash = m.ResultHash
		if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_DONE); err != nil {
			return nil, err
		}
		attrs = append(attrs, [2]string{"done", "true"})
	default:
		store.Enqueue(kv, qLive, leaseLiveness(p, l, height), l.Id)
		if Cost(o.GasLimit, l.Price) == Cost(l.GasUsed, l.Price) {
			kv.Set(codec.Key(qSweep, codec.U64(l.Id)), []byte{1}) // nothing more can be paid
		}
		putLease(kv, l)
	}
	return attrs, nil
}

// StatusName is a status's short name for logs and views.
func StatusName(s types.JobStatus) string {
	n, ok := types.JobStatus_name[int32(s)]
	if !ok {
		return fmt.Sprint(int32(s))
	}
	return lower(n[len("JOB_STATUS_"):])
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func open(s types.JobStatus) bool { return s == types.JobStatus_JOB_STATUS_RUNNING }

// endLease ends an open lease with status: the unspent budget goes back to
// the owner at once; the collateral stays locked challenge_window blocks.
func endLease(kv store.KV, p types.Params, height int64, l *types.JobLease, status types.JobStatus) error {
	if left := l.Budget - l.Paid - l.Refunded; left > 0 {
		if err := bank.Send(kv, Account, l.Owner, left); err != nil {
			return err
		}
		l.Refunded += left
	}
	store.Dequeue(kv, qLive, leaseLiveness(p, l, l.LastHeight), l.Id)
	kv.Delete(codec.Key(qSweep, codec.U64(l.Id)))
	l.Status, l.EndedHeight = status, height
	if !l.CollateralReleased {
		l.ReleaseHeight = height + p.Jobs.ChallengeWindow
		store.Enqueue(kv, qRelease, l.ReleaseHeight, l.Id)
	}
	putLease(kv, l)
	// A compute-to-data run (replication 1: this is its lease) that failed
	// gets its run price back now; a success pays the dataset's owner only
	// once the lease's challenge window has passed without a lost dispute
	// (releaseRun), so a wrong result is never paid for.
	if !succeeded(l, status) {
		if err := refundRun(kv, p, l.OrderId); err != nil {
			return err
		}
	}
	return settleOrder(kv, l.OrderId)
}

// settleOrder marks an order done (every lease done) or ended once no
// lease is open.
func settleOrder(kv store.KV, id uint64) error {
	o := GetOrder(kv, id)
	if o.Status != types.JobStatus_JOB_STATUS_RUNNING {
		return nil
	}
	done := 0
	for _, lid := range o.LeaseIds {
		l := GetLease(kv, lid)
		if open(l.Status) {
			return nil
		}
		if l.Status == types.JobStatus_JOB_STATUS_DONE {
			done++
		}
	}
	if done == len(o.LeaseIds) {
		o.Status = types.JobStatus_JOB_STATUS_DONE
	} else {
		o.Status = types.JobStatus_JOB_STATUS_ENDED
		o.Reason = fmt.Sprintf("%d of %d leases done", done, len(o.LeaseIds))
	}
	store.Dequeue(kv, qDeadline, o.Deadline, o.Id)
	putOrder(kv, o)
	return nil
}

// Cancel ends owner's order: during bidding, the escrow and every bid's
// collateral go back; once leased, every open lease ends (its committed
// work is already paid, the rest of its budget goes back to the owner, its
// collateral is released after the challenge window).
func Cancel(kv store.KV, p types.Params, height int64, owner []byte, id uint64) (uint64, error) {
	if _, err := ParamsOf(p); err != nil {
		return 0, err
	}
	o := GetOrder(kv, id)
	if o == nil {
		return 0, types.Errorf(types.CodeNotFound, "order %d does not exist", id)
	}
	if !bytes.Equal(owner, o.Owner) {
		return 0, types.Errorf(types.CodeUnauthorized, "only order %d's owner %s may cancel it", o.Id, types.Address(o.Owner))
	}
	before := bank.Balance(kv, owner)
	switch o.Status {
	case types.JobStatus_JOB_STATUS_BIDDING:
		for _, b := range o.OpenBids {
			if err := bank.Send(kv, Account, b.Provider, b.Collateral); err != nil {
				return 0, err
			}
		}
		if err := bank.Send(kv, Account, owner, o.Escrow+o.RunHeld); err != nil {
			return 0, err
		}
		o.Escrow, o.RunHeld, o.OpenBids = 0, 0, nil
		store.Dequeue(kv, qClear, o.BidWindowEnd, o.Id)
	case types.JobStatus_JOB_STATUS_RUNNING:
		for _, lid := range o.LeaseIds {
			if l := GetLease(kv, lid); l.OpenDispute != 0 {
				return 0, types.Errorf(types.CodeInvalid, "order %d has an open dispute (%d on lease %d): cancel after it resolves", o.Id, l.OpenDispute, l.Id)
			}
		}
		for _, lid := range o.LeaseIds {
			if l := GetLease(kv, lid); open(l.Status) {
				if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_CANCELLED); err != nil {
					return 0, err
				}
			}
		}
		o = GetOrder(kv, id)
	default:
		return 0, types.Errorf(types.CodeInvalid, "order %d is %s", o.Id, StatusName(o.Status))
	}
	o.Status = types.JobStatus_JOB_STATUS_CANCELLED
	o.Reason = "cancelled by the owner"
	store.Dequeue(kv, qDeadline, o.Deadline, o.Id)
	putOrder(kv, o)
	return bank.Balance(kv, owner) - before, nil
}

// fault applies a jobs fault to a provider's bond through the kernel's
// path: slash_bps["jobs/<fault>"] of its bond (and pending unbondings) is
// burned, its reputation resets, its fault count rises (jailed at
// audit.JailAfter).
func fault(kv store.KV, p types.Params, provider []byte, name string) (uint64, error) {
	svc := services.JobsService()
	cut, err := stake.SlashProvider(kv, provider, svc.SlashBps(p, svc.FaultNamed(name)), nil)
	if err != nil {
		return 0, err
	}
	if pv := registry.Get(kv, provider); pv != nil {
		pv.Faults++
		pv.ReputationBps = registry.NextReputation(pv.ReputationBps, p.ReputationStepBps, true)
		if pv.Faults >= audit.JailAfter {
			pv.Jailed = true
		}
		registry.Set(kv, pv)
	}
	return cut, nil
}

// EndBlock runs the market's timers at the end of height: disputes whose
// move is overdue, bid windows that close (clearing), leases that can pay
// no more (sweep), leases without a checkpoint for liveness_epochs epochs,
// order deadlines, and collateral whose challenge window ended.
func EndBlock(parent store.KV, p types.Params, height int64) ([]abci.Event, error) {
	if p.Jobs == nil {
		return nil, nil
	}
	// What is due is read (and taken off its queue) from the tree, where
	// an iteration can stop at the first entry not due; the work runs on a
	// write cache, so the many writes clearing makes to the same accounts
	// and counters reach the tree once, in key order. Each step re-checks
	// its record, so an entry a previous step settled is skipped.
	moves, clears := store.Due(parent, qMove, height), store.Due(parent, qClear, height)
	lives, deadlines, releases := store.Due(parent, qLive, height), store.Due(parent, qDeadline, height), store.Due(parent, qRelease, height)
	var swept []uint64
	parent.Iterate(qSweep, func(k, _ []byte) bool {
		swept = append(swept, codec.ReadU64(k[len(qSweep):]))
		return true
	})
	kv := store.NewCache(parent)
	var events []abci.Event
	add := func(evs []abci.Event, err error) error {
		events = append(events, evs...)
		return err
	}
	for _, id := range moves {
		if err := add(moveTimeout(kv, p, height, id)); err != nil {
			return nil, fmt.Errorf("dispute %d: %w", id, err)
		}
	}
	pc, po := provCache{}, payouts{}
	for _, id := range clears {
		o := GetOrder(kv, id)
		if o == nil || o.Status != types.JobStatus_JOB_STATUS_BIDDING {
			continue
		}
		if err := add(clearOrder(kv, p, height, o, pc, po)); err != nil {
			return nil, fmt.Errorf("clear order %d: %w", id, err)
		}
	}
	if err := po.pay(kv); err != nil {
		return nil, fmt.Errorf("clearing refunds: %w", err)
	}
	// Leases a checkpoint (or a dispute's end) left unable to pay more,
	// including those flagged in this end block.
	kv.Iterate(qSweep, func(k, _ []byte) bool {
		if id := codec.ReadU64(k[len(qSweep):]); !slices.Contains(swept, id) {
			swept = append(swept, id)
		}
		return true
	})
	slices.Sort(swept)
	for _, id := range swept {
		kv.Delete(codec.Key(qSweep, codec.U64(id)))
		l := GetLease(kv, id)
		if !open(l.Status) || l.OpenDispute != 0 {
			continue
		}
		if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_EXHAUSTED); err != nil {
			return nil, err
		}
		events = append(events, ev("job_lease_end", "lease_id", u64(id), "status", "exhausted", "reason", "the lease's budget can pay no more gas"))
	}
	for _, id := range lives {
		if err := add(abandon(kv, p, height, id)); err != nil {
			return nil, fmt.Errorf("lease %d: %w", id, err)
		}
	}
	for _, id := range deadlines {
		o := GetOrder(kv, id)
		if o.Status != types.JobStatus_JOB_STATUS_RUNNING {
			continue
		}
		for _, lid := range o.LeaseIds {
			l := GetLease(kv, lid)
			if !open(l.Status) || l.OpenDispute != 0 {
				continue // a disputed lease ends when its dispute does
			}
			if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_EXPIRED); err != nil {
				return nil, err
			}
			events = append(events, ev("job_lease_end", "lease_id", u64(lid), "status", "expired", "reason", "the order's deadline passed"))
		}
	}
	for _, id := range releases {
		l := GetLease(kv, id)
		if l.CollateralReleased || l.OpenDispute != 0 || l.ReleaseHeight > height {
			continue // a dispute releases (or takes) it when it resolves
		}
		if err := bank.Send(kv, Account, l.Provider, l.Collateral); err != nil {
			return nil, err
		}
		l.CollateralReleased = true
		putLease(kv, l)
		if err := releaseRun(kv, p, l); err != nil {
			return nil, err
		}
	}
	kv.Write()
	return events, nil
}

// abandon closes a lease whose provider committed nothing for
// liveness_epochs epochs: the owner gets the unspent budget back and the
// lease's collateral; the provider's bond is slashed
// slash_bps["jobs/abandoned"] (burned).
func abandon(kv store.KV, p types.Params, height int64, id uint64) ([]abci.Event, error) {
	l := GetLease(kv, id)
	if !open(l.Status) || l.OpenDispute != 0 {
		return nil, nil
	}
	l.CollateralReleased, l.Forfeited = true, l.Collateral
	if err := bank.Send(kv, Account, l.Owner, l.Collateral); err != nil {
		return nil, err
	}
	if err := endLease(kv, p, height, l, types.JobStatus_JOB_STATUS_ABANDONED); err != nil {
		return nil, err
	}
	cut, err := fault(kv, p, l.Provider, "abandoned")
	if err != nil {
		return nil, err
	}
	return []abci.Event{ev("job_lease_end", "lease_id", u64(id), "status", "abandoned", "provider", types.Address(l.Provider).String(),
		"reason", fmt.Sprintf("no checkpoint since height %d", l.LastHeight), "collateral_to_owner", u64(l.Collateral), "slashed", u64(cut))}, nil
}

// Succeeded reports whether a lease ended a success: done, with a non-zero
// final state (a deterministic failure commits the zero state).
func Succeeded(l *types.JobLease) bool { return succeeded(l, l.Status) }
