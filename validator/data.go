package validator

// Compute-to-data orders (protocol/data): a run on a private dataset is
// audited and refereed only by the dataset's auditors, the validators its
// owner named; they read the dataset and the run's states from the host
// with the access header. Other validators skip such orders: they could
// not get the data, and the chain counts only the auditors' votes.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/internal/dataclient"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
)

// errNotAuditor: the lease is a compute-to-data run on a dataset this
// verifier does not audit.
var errNotAuditor = errors.New("a compute-to-data run on a dataset this validator does not audit")

// datasetAudit says, for a lease's order, whether this verifier may audit
// it: nil for an ordinary order or a dataset it audits, errNotAuditor
// (wrapped) otherwise.
func (v *JobVerifier) datasetAudit(ctx context.Context, o api.JobOrderView) (api.DatasetView, error) {
	if o.DatasetID == 0 {
		return api.DatasetView{}, nil
	}
	d, err := v.chain.Dataset(ctx, o.DatasetID)
	if err != nil {
		return d, fmt.Errorf("order %d's dataset %d: %w", o.ID, o.DatasetID, err)
	}
	if v.signer == nil || !d.IsAuditor(v.signer.Address()) {
		return d, fmt.Errorf("order %d, dataset %d: %w", o.ID, d.ID, errNotAuditor)
	}
	return d, nil
}

// skipLease reports whether a lease is a dataset run this verifier does
// not audit (lookup errors are not skips: the audit reports them).
func (v *JobVerifier) skipLease(ctx context.Context, lease uint64) bool {
	l, err := v.chain.JobLease(ctx, lease)
	if err != nil {
		return false
	}
	o, err := v.chain.JobOrder(ctx, l.OrderID)
	if err != nil {
		return false
	}
	_, err = v.datasetAudit(ctx, o)
	return errors.Is(err, errNotAuditor)
}

// auditsDataset reports whether this verifier is one of a dataset's
// auditors (a sampled checkpoint names its run's dataset). A failed lookup
// counts as yes: the audit then reports the error rather than skipping.
func (v *JobVerifier) auditsDataset(ctx context.Context, dataset uint64) bool {
	if v.signer == nil {
		return false
	}
	d, err := v.chain.Dataset(ctx, dataset)
	return err != nil || d.IsAuditor(v.signer.Address())
}

// loadData fetches an audited dataset from its host (checked against its
// root) into the verifier's private blob store and returns the job's /data
// files. The store is the verifier's own: nothing serves it.
func (v *JobVerifier) loadData(ctx context.Context, d api.DatasetView) ([]wasm.Blob, error) {
	var root blob.ID
	copy(root[:], d.Root)
	if !v.blobs.Has(root) {
		dir, err := os.MkdirTemp("", "agora-audit-data-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "data")
		if _, err := dataclient.Download(ctx, v.chain, v.signer.PrivKey(), d.ID, p, nil); err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		_, err = v.blobs.Put(root, f, d.Size)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("dataset %d: %w", d.ID, err)
		}
	}
	b, err := v.blobs.Get(root)
	if err != nil {
		return nil, err
	}
	ms, err := pdata.Files(b, d.Name)
	if err != nil {
		return nil, fmt.Errorf("dataset %d: %w", d.ID, err)
	}
	out := make([]wasm.Blob, len(ms))
	for i, m := range ms {
		out[i] = wasm.Blob{Name: m.Name, Data: m.Data}
	}
	return out, nil
}

// authorize adds the access header to a state request of a dataset run.
func (v *JobVerifier) authorize(ctx context.Context, r *jobRun, req *http.Request) error {
	if r.order.DatasetID == 0 {
		return nil
	}
	chainID, err := v.chain.ChainID(ctx)
	if err != nil {
		return err
	}
	req.Header.Set(pdata.AuthHeader, pdata.SignAuth(v.signer.PrivKey(), chainID, req.Method, req.URL.Path, time.Now()))
	return nil
}
