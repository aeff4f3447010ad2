package data

import (
	"bytes"
	"slices"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/codec"
	"github.com/agoranet/agora/chain/registry"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// HostCapability is the provider capability a dataset's host must declare:
// compute-to-data runs are jobs (chain/jobs.Capability).
const HostCapability = "wasm"

var (
	prefixDataset = []byte("dset/")    // dset/<id>
	prefixByOwner = []byte("dsetown/") // dsetown/<owner>/<id>
	prefixGrant   = []byte("dgrant/")  // dgrant/<id>
	prefixGrantDS = []byte("dgrds/")   // dgrds/<dataset>/<buyer>/<grant>
	prefixGrantBy = []byte("dgrby/")   // dgrby/<buyer>/<grant>
	seqDataset    = []byte("seq/dataset")
	seqGrant      = []byte("seq/data_grant")
)

// ParamsOf returns the data market's params, or the error every message of
// a chain without one gets.
func ParamsOf(p types.Params) (*types.DataParams, error) {
	if p.Data == nil {
		return nil, types.Errorf(types.CodeInvalid, "this chain has no data market (its genesis has no params.data)")
	}
	return p.Data, nil
}

func next(kv store.KV, seq []byte) uint64 {
	id := codec.ReadU64(kv.Get(seq)) + 1
	kv.Set(seq, codec.U64(id))
	return id
}

// Get returns dataset id, or nil.
func Get(kv store.KV, id uint64) *types.Dataset {
	bz := kv.Get(codec.Key(prefixDataset, codec.U64(id)))
	if bz == nil {
		return nil
	}
	d := &types.Dataset{}
	codec.MustUnmarshal(bz, d)
	return d
}

func put(kv store.KV, d *types.Dataset) {
	kv.Set(codec.Key(prefixDataset, codec.U64(d.Id)), codec.Marshal(d))
}

// All lists every dataset, oldest first.
func All(kv store.KV) []*types.Dataset {
	var out []*types.Dataset
	kv.Iterate(prefixDataset, func(_, bz []byte) bool {
		d := &types.Dataset{}
		codec.MustUnmarshal(bz, d)
		out = append(out, d)
		return true
	})
	return out
}

// ByOwner lists the ids of owner's datasets, oldest first.
func ByOwner(kv store.KV, owner []byte) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixByOwner, owner))
}

// GetGrant returns grant id, or nil.
func GetGrant(kv store.KV, id uint64) *types.DataGrant {
	bz := kv.Get(codec.Key(prefixGrant, codec.U64(id)))
	if bz == nil {
		return nil
	}
	g := &types.DataGrant{}
	codec.MustUnmarshal(bz, g)
	return g
}

// Grants lists the ids of a dataset's grants (only buyer's when buyer is
// not empty), oldest first.
func Grants(kv store.KV, dataset uint64, buyer []byte) []uint64 {
	if len(buyer) == 0 {
		return store.IDsUnder(kv, codec.Key(prefixGrantDS, codec.U64(dataset)))
	}
	return store.IDsUnder(kv, codec.Key(prefixGrantDS, codec.U64(dataset), buyer))
}

// GrantsByBuyer lists the ids of buyer's grants on every dataset, oldest
// first.
func GrantsByBuyer(kv store.KV, buyer []byte) []uint64 {
	return store.IDsUnder(kv, codec.Key(prefixGrantBy, buyer))
}

// HasGrant reports whether buyer holds a download grant on dataset.
func HasGrant(kv store.KV, dataset uint64, buyer []byte) bool {
	found := false
	kv.Iterate(codec.Key(prefixGrantDS, codec.U64(dataset), buyer), func(_, _ []byte) bool {
		found = true
		return false
	})
	return found
}

// AllowsBuyer reports whether a may buy from d: anyone when its buyer
// list is empty, else the listed buyers.
func AllowsBuyer(d *types.Dataset, a []byte) bool {
	return len(d.Buyers) == 0 || slices.ContainsFunc(d.Buyers, func(b []byte) bool { return bytes.Equal(b, a) })
}

// AllowsModule reports whether module may run on d: any module when its
// allow-list is empty (its output cap is then an aggregate's), else the
// listed ones.
func AllowsModule(d *types.Dataset, module []byte) bool {
	return len(d.AllowedModules) == 0 || slices.ContainsFunc(d.AllowedModules, func(m []byte) bool { return bytes.Equal(m, module) })
}

// IsAuditor reports whether a is one of d's auditors.
func IsAuditor(d *types.Dataset, a []byte) bool {
	return slices.ContainsFunc(d.Auditors, func(x []byte) bool { return bytes.Equal(x, a) })
}

// checkTerms applies the stateful rules shared by publish and update:
// without an allow-list only aggregates may leave (output_cap within
// max_aggregate_output), and auditors are validators.
func checkTerms(kv store.KV, dp *types.DataParams, modules [][]byte, outputCap uint64, auditors [][]byte) error {
	if len(modules) == 0 && outputCap > dp.MaxAggregateOutput {
		return types.Errorf(types.CodeInvalid, "a dataset open to any module (no allowed_modules) may release aggregates only: output_cap %d is above max_aggregate_output %d",
			outputCap, dp.MaxAggregateOutput)
	}
	for _, a := range auditors {
		if stake.GetValidator(kv, a) == nil {
			return types.Errorf(types.CodeInvalid, "auditor %s is not a validator", types.Address(a))
		}
	}
	return nil
}

// Publish records a dataset owned by owner and returns its id. Its host
// must be a registered provider declaring the wasm capability (it serves
// the bytes and runs the jobs on them).
func Publish(kv store.KV, p types.Params, height int64, owner []byte, m *types.MsgPublishDataset) (uint64, error) {
	dp, err := ParamsOf(p)
	if err != nil {
		return 0, err
	}
	pv := registry.Get(kv, m.Host)
	if pv == nil || !pv.Registered {
		return 0, types.Errorf(types.CodeInvalid, "host %s is not a registered provider", types.Address(m.Host))
	}
	if pv.Info == nil || !slices.Contains(pv.Info.Capabilities, HostCapability) {
		return 0, types.Errorf(types.CodeInvalid, "host %s does not declare the %q capability (it runs the dataset's jobs)", types.Address(m.Host), HostCapability)
	}
	if err := checkTerms(kv, dp, m.AllowedModules, m.OutputCap, m.Auditors); err != nil {
		return 0, err
	}
	d := &types.Dataset{
		Id: next(kv, seqDataset), Owner: owner, Root: m.Root, Size: m.Size, Name: m.Name, Description: m.Description,
		Licence: m.Licence, Host: m.Host, Download: m.Download, DownloadPrice: m.DownloadPrice, RunPrice: m.RunPrice,
		AllowedModules: m.AllowedModules, OutputCap: m.OutputCap, Buyers: m.Buyers, Auditors: m.Auditors,
		PublishedHeight: height, UpdatedHeight: height,
	}
	put(kv, d)
	kv.Set(codec.Key(prefixByOwner, owner, codec.U64(d.Id)), []byte{1})
	return d.Id, nil
}

// owned returns dataset id if signer owns it and it is not retired.
func owned(kv store.KV, signer []byte, id uint64) (*types.Dataset, error) {
	d := Get(kv, id)
	if d == nil {
		return nil, types.Errorf(types.CodeNotFound, "dataset %d does not exist", id)
	}
	if !bytes.Equal(signer, d.Owner) {
		return nil, types.Errorf(types.CodeUnauthorized, "only dataset %d's owner %s may change it", id, types.Address(d.Owner))
	}
	if d.Retired {
		return nil, types.Errorf(types.CodeInvalid, "dataset %d is retired", id)
	}
	return d, nil
}

// Update replaces a dataset's mutable terms (owner only). Orders already
// submitted keep the output cap and run price they were submitted with.
func Update(kv store.KV, p types.Params, height int64, signer []byte, m *types.MsgUpdateDataset) error {
	dp, err := ParamsOf(p)
	if err != nil {
		return err
	}
	d, err := owned(kv, signer, m.Id)
	if err != nil {
		return err
	}
	if err := checkTerms(kv, dp, m.AllowedModules, m.OutputCap, m.Auditors); err != nil {
		return err
	}
	d.Description, d.Licence, d.Download, d.DownloadPrice, d.RunPrice = m.Description, m.Licence, m.Download, m.DownloadPrice, m.RunPrice
	d.AllowedModules, d.OutputCap, d.Buyers, d.Auditors = m.AllowedModules, m.OutputCap, m.Buyers, m.Auditors
	d.UpdatedHeight = height
	put(kv, d)
	return nil
}

// Retire stops a dataset's sales (owner only): no new grants or runs;
// grants already bought stay valid, runs already ordered finish.
func Retire(kv store.KV, p types.Params, height int64, signer []byte, id uint64) error {
	if _, err := ParamsOf(p); err != nil {
		return err
	}
	d, err := owned(kv, signer, id)
	if err != nil {
		return err
	}
	d.Retired, d.UpdatedHeight = true, height
	put(kv, d)
	return nil
}

// BuyAccess sells buyer a download grant on a dataset at its
// download_price: fee_bps of it to the fee pool, the rest to the owner.
func BuyAccess(kv store.KV, p types.Params, height int64, buyer []byte, m *types.MsgBuyAccess) (*types.DataGrant, uint64, error) {
	dp, err := ParamsOf(p)
	if err != nil {
		return nil, 0, err
	}
	d := Get(kv, m.DatasetId)
	switch {
	case d == nil:
		return nil, 0, types.Errorf(types.CodeNotFound, "dataset %d does not exist", m.DatasetId)
	case d.Retired:
		return nil, 0, types.Errorf(types.CodeInvalid, "dataset %d is retired: it sells no more grants", d.Id)
	case !d.Download:
		return nil, 0, types.Errorf(types.CodeInvalid, "dataset %d does not sell downloads (compute-to-data runs only)", d.Id)
	case bytes.Equal(buyer, d.Owner):
		return nil, 0, types.Errorf(types.CodeInvalid, "the owner of dataset %d reads it without a grant", d.Id)
	case !AllowsBuyer(d, buyer):
		return nil, 0, types.Errorf(types.CodeUnauthorized, "%s is not among dataset %d's allowed buyers", types.Address(buyer), d.Id)
	case d.DownloadPrice > m.MaxPrice:
		return nil, 0, types.Errorf(types.CodeInvalid, "dataset %d's download_price %d is above max_price %d", d.Id, d.DownloadPrice, m.MaxPrice)
	}
	if ids := Grants(kv, d.Id, buyer); len(ids) > 0 {
		return nil, 0, types.Errorf(types.CodeInvalid, "%s already holds grant %d on dataset %d", types.Address(buyer), ids[0], d.Id)
	}
	fee, err := pay(kv, dp, d, buyer, d.DownloadPrice)
	if err != nil {
		return nil, 0, err
	}
	g := &types.DataGrant{Id: next(kv, seqGrant), DatasetId: d.Id, Buyer: buyer, Price: d.DownloadPrice, Height: height}
	kv.Set(codec.Key(prefixGrant, codec.U64(g.Id)), codec.Marshal(g))
	kv.Set(codec.Key(prefixGrantDS, codec.U64(d.Id), buyer, codec.U64(g.Id)), []byte{1})
	kv.Set(codec.Key(prefixGrantBy, buyer, codec.U64(g.Id)), []byte{1})
	d.Grants++
	put(kv, d)
	return g, fee, nil
}

// Fee is the fee pool's share of amount: floor(amount × fee_bps / 10^4).
func Fee(dp *types.DataParams, amount uint64) uint64 {
	return types.MulDivU64(amount, dp.FeeBps, 10000) // fee_bps <= 10^4: fits
}

// pay moves amount from `from` to d's owner, minus the fee to the fee pool,
// adds the owner's share to d.Earned (the caller stores d) and returns the
// fee.
func pay(kv store.KV, dp *types.DataParams, d *types.Dataset, from []byte, amount uint64) (uint64, error) {
	fee := Fee(dp, amount)
	if err := bank.Send(kv, from, d.Owner, amount-fee); err != nil {
		return 0, err
	}
	if err := bank.Send(kv, from, bank.FeePool, fee); err != nil {
		return 0, err
	}
	earned, err := types.AddU64(d.Earned, amount-fee)
	if err != nil {
		return 0, err
	}
	d.Earned = earned
	return fee, nil
}

// PayRun pays a successful compute-to-data run's price, held by the jobs
// module in account from, to the dataset's owner (minus the fee) and
// counts the run. It returns the fee.
func PayRun(kv store.KV, p types.Params, dataset uint64, from []byte, amount uint64) (uint64, error) {
	dp, err := ParamsOf(p)
	if err != nil {
		return 0, err
	}
	d := Get(kv, dataset)
	if d == nil {
		return 0, types.Errorf(types.CodeInternal, "dataset %d of a paid run does not exist", dataset)
	}
	fee, err := pay(kv, dp, d, from, amount)
	if err != nil {
		return 0, err
	}
	d.Runs++
	put(kv, d)
	return fee, nil
}
