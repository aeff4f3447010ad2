package api

import (
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
)

// The job market's query paths (chain/jobs), all under /job/.
func JobOrderPath(id uint64) string          { return "/job/order/" + u(id) }          // JobOrderView
func JobBidsPath(order uint64) string        { return "/job/bids/" + u(order) }        // []JobBidView
func JobLeasePath(id uint64) string          { return "/job/lease/" + u(id) }          // JobLeaseView
func JobCheckpointsPath(lease uint64) string { return "/job/checkpoints/" + u(lease) } // []JobCheckpointView
func JobDisputePath(id uint64) string        { return "/job/dispute/" + u(id) }        // JobDisputeView
func JobOrdersByOwnerPath(a types.Address) string {
	return "/job/orders/owner/" + a.String() // []JobOrderView
}
func JobOrdersByStatusPath(status string) string {
	return "/job/orders/status/" + status // []JobOrderView; status: bidding, running, done, unmatched, cancelled, ended
}
func JobLeasesByProviderPath(a types.Address) string {
	return "/job/leases/provider/" + a.String() // []JobLeaseView
}
func JobLeaseDisputesPath(lease uint64) string {
	return "/job/disputes/" + u(lease) // []JobDisputeView
}

// JobOpenDisputesPath lists the unresolved disputes, soonest deadline
// first: validators watch it for disputes in the vote phase.
const JobOpenDisputesPath = "/job/open-disputes" // []JobDisputeView

func JobSamplePath(epoch uint64) string { return "/job/sample/" + u(epoch) } // []JobSampleView

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// JobStatusName is a job status's name in views and paths ("running", ...).
func JobStatusName(s types.JobStatus) string {
	n, ok := types.JobStatus_name[int32(s)]
	if !ok {
		return strconv.Itoa(int(s))
	}
	return strings.ToLower(strings.TrimPrefix(n, "JOB_STATUS_"))
}

// ParseJobStatus is JobStatusName's inverse.
func ParseJobStatus(name string) (types.JobStatus, bool) {
	v, ok := types.JobStatus_value["JOB_STATUS_"+strings.ToUpper(name)]
	if !ok || v == 0 {
		return 0, false
	}
	return types.JobStatus(v), true
}

type JobOrderView struct {
	ID                 uint64           `json:"id"`
	Owner              types.Address    `json:"owner"`
	ModuleHash         types.HexBytes   `json:"module_hash"`
	InputHashes        []types.HexBytes `json:"input_hashes"`
	GasLimit           uint64           `json:"gas_limit"`
	MemoryPages        uint32           `json:"memory_pages"`
	MaxPrice           uint64           `json:"max_price"`
	Deadline           int64            `json:"deadline"`
	Collateral         uint64           `json:"collateral"`
	Replication        uint32           `json:"replication"`
	BidWindowEnd       int64            `json:"bid_window_end"`
	CheckpointInterval uint64           `json:"checkpoint_interval"`
	Escrow             uint64           `json:"escrow"`
	Status             string           `json:"status"`
	Reason             string           `json:"reason,omitempty"`
	SubmittedHeight    int64            `json:"submitted_height"`
	LeaseIDs           []uint64         `json:"lease_ids"`
	Bids               uint32           `json:"bids"`
	MismatchIndex      uint64           `json:"mismatch_index,omitempty"`
	Args               []string         `json:"args,omitempty"`
	InputNames         []string         `json:"input_names,omitempty"`
	// Compute-to-data (0 / empty for other jobs): the dataset, the key the
	// outputs are sealed to, the dataset's output cap and run price when
	// ordered, what of the run price is still held and what was paid.
	DatasetID      uint64         `json:"dataset_id,omitempty"`
	BuyerKey       types.HexBytes `json:"buyer_key,omitempty"`
	OutputCap      uint64         `json:"output_cap,omitempty"`
	RunPrice       uint64         `json:"run_price,omitempty"`
	RunHeld        uint64         `json:"run_held,omitempty"`
	RunPaid        uint64         `json:"run_paid,omitempty"`
	LivenessBlocks int64          `json:"liveness_blocks,omitempty"` // 0: the chain's default
}

func JobOrderViewOf(o *types.JobOrder) JobOrderView {
	in := make([]types.HexBytes, len(o.InputHashes))
	for i, h := range o.InputHashes {
		in[i] = h
	}
	ids := append([]uint64{}, o.LeaseIds...)
	return JobOrderView{ID: o.Id, Owner: o.Owner, ModuleHash: o.ModuleHash, InputHashes: in, GasLimit: o.GasLimit,
		MemoryPages: o.MemoryPages, MaxPrice: o.MaxPrice, Deadline: o.Deadline, Collateral: o.Collateral,
		Replication: o.Replication, BidWindowEnd: o.BidWindowEnd, CheckpointInterval: o.CheckpointInterval,
		Escrow: o.Escrow, Status: JobStatusName(o.Status), Reason: o.Reason, SubmittedHeight: o.SubmittedHeight,
		LeaseIDs: ids, Bids: o.Bids, MismatchIndex: o.MismatchIndex, Args: o.Args, InputNames: o.InputNames,
		DatasetID: o.DatasetId, BuyerKey: o.BuyerKey, OutputCap: o.OutputCap, RunPrice: o.RunPrice, RunHeld: o.RunHeld,
		RunPaid: o.RunPaid, LivenessBlocks: o.LivenessBlocks}
}

type JobBidView struct {
	OrderID    uint64        `json:"order_id"`
	Provider   types.Address `json:"provider"`
	Price      uint64        `json:"price"`
	Collateral uint64        `json:"collateral"`
	Height     int64         `json:"height"`
}

func JobBidViewOf(b *types.JobBid) JobBidView {
	return JobBidView{OrderID: b.OrderId, Provider: b.Provider, Price: b.Price, Collateral: b.Collateral, Height: b.Height}
}

type JobLeaseView struct {
	ID                 uint64         `json:"id"`
	OrderID            uint64         `json:"order_id"`
	Provider           types.Address  `json:"provider"`
	Owner              types.Address  `json:"owner"`
	Price              uint64         `json:"price"`
	Collateral         uint64         `json:"collateral"`
	Budget             uint64         `json:"budget"`
	Paid               uint64         `json:"paid"`
	Refunded           uint64         `json:"refunded"`
	GasUsed            uint64         `json:"gas_used"`
	Steps              uint64         `json:"steps"`
	Checkpoints        uint64         `json:"checkpoints"`
	StateHash          types.HexBytes `json:"state_hash,omitempty"`
	ResultHash         types.HexBytes `json:"result_hash,omitempty"`
	Status             string         `json:"status"`
	StartedHeight      int64          `json:"started_height"`
	LastHeight         int64          `json:"last_height"`
	EndedHeight        int64          `json:"ended_height,omitempty"`
	ReleaseHeight      int64          `json:"release_height,omitempty"`
	OpenDispute        uint64         `json:"open_dispute,omitempty"`
	CollateralReleased bool           `json:"collateral_released"`
	Forfeited          uint64         `json:"forfeited,omitempty"`
	LivenessBlocks     int64          `json:"liveness_blocks,omitempty"` // 0: the chain's default
}

func JobLeaseViewOf(l *types.JobLease) JobLeaseView {
	return JobLeaseView{ID: l.Id, OrderID: l.OrderId, Provider: l.Provider, Owner: l.Owner, Price: l.Price,
		Collateral: l.Collateral, Budget: l.Budget, Paid: l.Paid, Refunded: l.Refunded, GasUsed: l.GasUsed,
		Steps: l.Steps, Checkpoints: l.Checkpoints, StateHash: l.StateHash, ResultHash: l.ResultHash,
		Status: JobStatusName(l.Status), StartedHeight: l.StartedHeight, LastHeight: l.LastHeight,
		EndedHeight: l.EndedHeight, ReleaseHeight: l.ReleaseHeight, OpenDispute: l.OpenDispute,
		CollateralReleased: l.CollateralReleased, Forfeited: l.Forfeited, LivenessBlocks: l.LivenessBlocks}
}

type JobCheckpointView struct {
	LeaseID    uint64         `json:"lease_id"`
	Index      uint64         `json:"index"`
	Steps      uint64         `json:"steps"`
	GasUsed    uint64         `json:"gas_used"`
	StateHash  types.HexBytes `json:"state_hash"`
	Done       bool           `json:"done"`
	ResultHash types.HexBytes `json:"result_hash,omitempty"`
	Height     int64          `json:"height"`
	Paid       uint64         `json:"paid"`
}

func JobCheckpointViewOf(c *types.JobCheckpoint) JobCheckpointView {
	return JobCheckpointView{LeaseID: c.LeaseId, Index: c.Index, Steps: c.Steps, GasUsed: c.GasUsed, StateHash: c.StateHash,
		Done: c.Done, ResultHash: c.ResultHash, Height: c.Height, Paid: c.Paid}
}

type JobDisputeView struct {
	ID           uint64           `json:"id"`
	LeaseID      uint64           `json:"lease_id"`
	Index        uint64           `json:"index"`
	Challenger   types.Address    `json:"challenger"`
	Defender     types.Address    `json:"defender"`
	Bond         uint64           `json:"bond"`
	Lo           uint64           `json:"lo"`
	LoHash       types.HexBytes   `json:"lo_hash,omitempty"`
	Hi           uint64           `json:"hi"`
	HiHash       types.HexBytes   `json:"hi_hash"`
	Hashes       []types.HexBytes `json:"hashes,omitempty"`
	Phase        string           `json:"phase"`
	Deadline     int64            `json:"deadline"`
	Moves        uint32           `json:"moves"`
	Outcome      string           `json:"outcome,omitempty"`
	Reason       string           `json:"reason,omitempty"`
	OpenedHeight int64            `json:"opened_height"`
	Slashed      uint64           `json:"slashed"`
	Refund       uint64           `json:"refund"`
	Reward       uint64           `json:"reward"`
}

func JobDisputeViewOf(d *types.JobDispute) JobDisputeView {
	var hs []types.HexBytes
	for _, h := range d.Hashes {
		hs = append(hs, h)
	}
	phase := strings.ToLower(strings.TrimPrefix(types.DisputePhase_name[int32(d.Phase)], "DISPUTE_PHASE_"))
	return JobDisputeView{ID: d.Id, LeaseID: d.LeaseId, Index: d.Index, Challenger: d.Challenger, Defender: d.Defender,
		Bond: d.Bond, Lo: d.Lo, LoHash: d.LoHash, Hi: d.Hi, HiHash: d.HiHash, Hashes: hs, Phase: phase,
		Deadline: d.Deadline, Moves: d.Moves, Outcome: d.Outcome, Reason: d.Reason, OpenedHeight: d.OpenedHeight,
		Slashed: d.Slashed, Refund: d.Refund, Reward: d.Reward}
}

// JobSampleView is a checkpoint validators must audit for an epoch: re-run
// step Step from the state after Step−1 (between checkpoints Index−1, at
// From steps, and Index, at To). DatasetID names the dataset of a
// compute-to-data run: only its auditors can re-execute it (the others
// skip it).
type JobSampleView struct {
	Provider  types.Address `json:"provider"`
	LeaseID   uint64        `json:"lease_id"`
	Index     uint64        `json:"index"`
	From      uint64        `json:"from"`
	To        uint64        `json:"to"`
	Step      uint64        `json:"step"`
	DatasetID uint64        `json:"dataset_id,omitempty"`
}
