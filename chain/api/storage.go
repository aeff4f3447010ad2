package api

import (
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
)

// The storage market's query paths (chain/storage), all under /storage/.
func StorageDealPath(id uint64) string { return "/storage/deal/" + u(id) } // StorageDealView

// StorageDealsPath lists every deal, newest first (at most
// MaxStorageDeals).
const StorageDealsPath = "/storage/deals" // []StorageDealView

// MaxStorageDeals bounds the deals one list query returns.
const MaxStorageDeals = 500

func StorageDealsByClientPath(a types.Address) string {
	return "/storage/deals/client/" + a.String() // []StorageDealView, oldest first
}
func StorageDealsByProviderPath(a types.Address) string {
	return "/storage/deals/provider/" + a.String() // []StorageDealView: every deal it accepted, oldest first
}
func StorageDealsByStatusPath(status string) string {
	return "/storage/deals/status/" + status // []StorageDealView; status: open, active, done, cancelled
}
func StorageEpochsPath(deal uint64) string { return "/storage/epochs/" + u(deal) } // []StorageEpochView
func StorageFaultsPath(deal uint64) string { return "/storage/faults/" + u(deal) } // []StorageFaultView

// StorageRecentFaultsPath lists the latest faults of every deal, newest
// first (at most MaxStorageDeals).
const StorageRecentFaultsPath = "/storage/faults" // []StorageFaultView

// StorageChallengePath is an active deal's open challenge.
func StorageChallengePath(deal uint64) string { return "/storage/challenge/" + u(deal) } // StorageChallengeView

// DealStatusName is a deal status's name in views and paths ("active", ...).
func DealStatusName(s types.DealStatus) string {
	n, ok := types.DealStatus_name[int32(s)]
	if !ok {
		return strconv.Itoa(int(s))
	}
	return strings.ToLower(strings.TrimPrefix(n, "DEAL_STATUS_"))
}

// ParseDealStatus is DealStatusName's inverse.
func ParseDealStatus(name string) (types.DealStatus, bool) {
	v, ok := types.DealStatus_value["DEAL_STATUS_"+strings.ToUpper(name)]
	if !ok || v == 0 {
		return 0, false
	}
	return types.DealStatus(v), true
}

type StorageDealView struct {
	ID                uint64          `json:"id"`
	Client            types.Address   `json:"client"`
	BlobID            types.HexBytes  `json:"blob_id"`
	Size              uint64          `json:"size"`
	Epochs            uint64          `json:"epochs"`
	PricePerEpoch     uint64          `json:"price_per_epoch"`
	Collateral        uint64          `json:"collateral"`
	Challenges        uint32          `json:"challenges"`
	NamedProvider     types.Address   `json:"named_provider,omitempty"`
	Status            string          `json:"status"`
	Provider          types.Address   `json:"provider,omitempty"`
	ReplicaRoot       types.HexBytes  `json:"replica_root,omitempty"`
	Escrow            uint64          `json:"escrow"`
	Locked            uint64          `json:"locked"`
	EpochsDone        uint64          `json:"epochs_done"`
	Proved            uint64          `json:"proved"`
	Missed            uint64          `json:"missed"`
	ConsecutiveMisses uint32          `json:"consecutive_misses"`
	NextEpoch         uint64          `json:"next_epoch,omitempty"`
	CreatedHeight     int64           `json:"created_height"`
	AcceptedHeight    int64           `json:"accepted_height,omitempty"`
	EndedHeight       int64           `json:"ended_height,omitempty"`
	Paid              uint64          `json:"paid"`
	Fees              uint64          `json:"fees"`
	Refunded          uint64          `json:"refunded"`
	Slashed           uint64          `json:"slashed"`
	Score             uint64          `json:"score"` // basis points
	Dropped           []types.Address `json:"dropped,omitempty"`
	Reopened          uint32          `json:"reopened,omitempty"`
}

func StorageDealViewOf(d *types.StorageDeal) StorageDealView {
	var dropped []types.Address
	for _, a := range d.Dropped {
		dropped = append(dropped, a)
	}
	return StorageDealView{ID: d.Id, Client: d.Client, BlobID: d.BlobId, Size: d.Size, Epochs: d.Epochs,
		PricePerEpoch: d.PricePerEpoch, Collateral: d.Collateral, Challenges: d.Challenges, NamedProvider: d.NamedProvider,
		Status: DealStatusName(d.Status), Provider: d.Provider, ReplicaRoot: d.ReplicaRoot, Escrow: d.Escrow, Locked: d.Locked,
		EpochsDone: d.EpochsDone, Proved: d.Proved, Missed: d.Missed, ConsecutiveMisses: d.ConsecutiveMisses,
		NextEpoch: d.NextEpoch, CreatedHeight: d.CreatedHeight, AcceptedHeight: d.AcceptedHeight, EndedHeight: d.EndedHeight,
		Paid: d.Paid, Fees: d.Fees, Refunded: d.Refunded, Slashed: d.Slashed, Score: d.Score, Dropped: dropped, Reopened: d.Reopened}
}

// StorageEpochView is the outcome of one challenged epoch of a deal.
type StorageEpochView struct {
	DealID   uint64        `json:"deal_id"`
	Epoch    uint64        `json:"epoch"`
	Provider types.Address `json:"provider"`
	Proved   bool          `json:"proved"`
	Height   int64         `json:"height"`
	Paid     uint64        `json:"paid"`
	Fee      uint64        `json:"fee"`
	Slashed  uint64        `json:"slashed"`
}

func StorageEpochViewOf(e *types.StorageEpoch) StorageEpochView {
	return StorageEpochView{DealID: e.DealId, Epoch: e.Epoch, Provider: e.Provider, Proved: e.Proved, Height: e.Height,
		Paid: e.Paid, Fee: e.Fee, Slashed: e.Slashed}
}

// StorageFaultView is one missed epoch of a deal.
type StorageFaultView struct {
	ID          uint64        `json:"id"`
	DealID      uint64        `json:"deal_id"`
	Provider    types.Address `json:"provider"`
	Epoch       uint64        `json:"epoch"`
	Height      int64         `json:"height"`
	Slashed     uint64        `json:"slashed"`
	Refunded    uint64        `json:"refunded"`
	Consecutive uint32        `json:"consecutive"`
	Dropped     bool          `json:"dropped"`
	Forfeited   uint64        `json:"forfeited"`
	Score       uint64        `json:"score"`
}

func StorageFaultViewOf(f *types.StorageFault) StorageFaultView {
	return StorageFaultView{ID: f.Id, DealID: f.DealId, Provider: f.Provider, Epoch: f.Epoch, Height: f.Height,
		Slashed: f.Slashed, Refunded: f.Refunded, Consecutive: f.Consecutive, Dropped: f.Dropped, Forfeited: f.Forfeited, Score: f.Score}
}

// StorageChallengeView is an active deal's open challenge: the segments
// of the blob its provider must prove for Epoch (empty until the seed is
// drawn at the end of SeedHeight), by the end of Deadline.
type StorageChallengeView struct {
	DealID     uint64         `json:"deal_id"`
	Epoch      uint64         `json:"epoch"`
	SeedHeight int64          `json:"seed_height"`
	Deadline   int64          `json:"deadline"`
	Seed       types.HexBytes `json:"seed,omitempty"`
	Indices    []uint64       `json:"indices"`
}
