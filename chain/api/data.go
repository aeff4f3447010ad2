package api

import (
	"github.com/agoranet/agora/chain/types"
)

// The data market's query paths (chain/data), all under /data/.
func DatasetPath(id uint64) string   { return "/data/dataset/" + u(id) } // DatasetView
func DatasetsPath() string           { return "/data/datasets" }         // []DatasetView, oldest first
func DataGrantPath(id uint64) string { return "/data/grant/" + u(id) }   // DataGrantView

// DataGrantsPath lists a dataset's grants, oldest first: all of them when
// buyer is empty, else the buyer's ([]DataGrantView).
func DataGrantsPath(dataset uint64, buyer types.Address) string {
	if len(buyer) == 0 {
		return "/data/grants/" + u(dataset)
	}
	return "/data/grants/" + u(dataset) + "/" + buyer.String()
}

// DatasetsByOwnerPath lists an owner's datasets, oldest first ([]DatasetView).
func DatasetsByOwnerPath(owner types.Address) string { return "/data/datasets/owner/" + owner.String() }

// DataGrantsByBuyerPath lists a buyer's grants on every dataset, oldest
// first ([]DataGrantView).
func DataGrantsByBuyerPath(buyer types.Address) string { return "/data/grants/buyer/" + buyer.String() }

// JobOrdersByDatasetPath lists the compute-to-data orders on a dataset,
// oldest first ([]JobOrderView; answered by the jobs module).
func JobOrdersByDatasetPath(dataset uint64) string { return "/job/orders/dataset/" + u(dataset) }

type DatasetView struct {
	ID              uint64           `json:"id"`
	Owner           types.Address    `json:"owner"`
	Root            types.HexBytes   `json:"root"`
	Size            uint64           `json:"size"`
	Name            string           `json:"name"`
	Description     string           `json:"description,omitempty"`
	Licence         string           `json:"licence,omitempty"`
	Host            types.Address    `json:"host"`
	Download        bool             `json:"download"`
	DownloadPrice   uint64           `json:"download_price"`
	RunPrice        uint64           `json:"run_price"`
	AllowedModules  []types.HexBytes `json:"allowed_modules"` // empty: any module (aggregate output only)
	OutputCap       uint64           `json:"output_cap"`
	Buyers          []types.Address  `json:"buyers"` // empty: anyone
	Auditors        []types.Address  `json:"auditors"`
	Retired         bool             `json:"retired"`
	PublishedHeight int64            `json:"published_height"`
	UpdatedHeight   int64            `json:"updated_height"`
	Grants          uint64           `json:"grants"`
	Runs            uint64           `json:"runs"`
	Earned          uint64           `json:"earned"`
}

func DatasetViewOf(d *types.Dataset) DatasetView {
	mods := make([]types.HexBytes, len(d.AllowedModules))
	for i, m := range d.AllowedModules {
		mods[i] = m
	}
	return DatasetView{ID: d.Id, Owner: d.Owner, Root: d.Root, Size: d.Size, Name: d.Name, Description: d.Description,
		Licence: d.Licence, Host: d.Host, Download: d.Download, DownloadPrice: d.DownloadPrice, RunPrice: d.RunPrice,
		AllowedModules: mods, OutputCap: d.OutputCap, Buyers: addrs(d.Buyers), Auditors: addrs(d.Auditors),
		Retired: d.Retired, PublishedHeight: d.PublishedHeight, UpdatedHeight: d.UpdatedHeight, Grants: d.Grants,
		Runs: d.Runs, Earned: d.Earned}
}

// AllowsModule reports whether module may run on the dataset (an empty
// allow-list lets any module run, under the aggregate output cap).
func (d DatasetView) AllowsModule(module []byte) bool {
	if len(d.AllowedModules) == 0 {
		return true
	}
	for _, m := range d.AllowedModules {
		if string(m) == string(module) {
			return true
		}
	}
	return false
}

// AllowsBuyer reports whether a may buy from the dataset.
func (d DatasetView) AllowsBuyer(a types.Address) bool {
	return len(d.Buyers) == 0 || hasAddr(d.Buyers, a)
}

// IsAuditor reports whether a is one of the dataset's auditors.
func (d DatasetView) IsAuditor(a types.Address) bool { return hasAddr(d.Auditors, a) }

type DataGrantView struct {
	ID        uint64        `json:"id"`
	DatasetID uint64        `json:"dataset_id"`
	Buyer     types.Address `json:"buyer"`
	Price     uint64        `json:"price"`
	Height    int64         `json:"height"`
}

func DataGrantViewOf(g *types.DataGrant) DataGrantView {
	return DataGrantView{ID: g.Id, DatasetID: g.DatasetId, Buyer: g.Buyer, Price: g.Price, Height: g.Height}
}

func addrs(bs [][]byte) []types.Address {
	out := make([]types.Address, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}

func hasAddr(list []types.Address, a types.Address) bool {
	for _, x := range list {
		if string(x) == string(a) {
			return true
		}
	}
	return false
}
