package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
)

// Garbage collection: a provider's disk holds what its leases and hosted
// datasets still need, and nothing else. A blob is kept while
//   - a lease of this provider that is still challengeable (running, or
//     ended with its collateral not yet released) uses it as its module or
//     an input (a dispute may need the step replayed);
//   - a lease ended less than KeepResults blocks ago produced it (its
//     result list and outputs, and a compute-to-data run's sealed results,
//     for the owner to fetch);
//   - it is a dataset hosted here that is not retired, or a retired one a
//     running lease still reads.
// Anything else older than gcGrace is deleted: the grace covers a blob
// uploaded for a lease this executor has not polled yet.

const gcGrace = 10 * time.Minute

// GCStats reports one collection.
type GCStats struct {
	Blobs, Datasets, Sealed int    // deleted
	Bytes                   uint64 // freed (blobs and datasets)
}

// CollectGarbage deletes the blobs, datasets and sealed results nothing
// references any more (see above), as of chain height and wall time now.
func (e *Executor) CollectGarbage(ctx context.Context, height int64, now time.Time) (GCStats, error) {
	var st GCStats
	ls, err := e.chain.JobLeasesByProvider(ctx, e.addr)
	if err != nil {
		return st, fmt.Errorf("gc: leases: %w", err)
	}
	keep := map[blob.ID]bool{}
	keepData := map[blob.ID]bool{}
	keepSealed := map[uint64]bool{}
	orders := map[uint64]api.JobOrderView{}
	for _, l := range ls {
		challengeable := l.Status == "running" || !l.CollateralReleased || l.OpenDispute != 0
		fresh := l.Status == "running" || height < l.EndedHeight+e.cfg.KeepResults
		if !challengeable && !fresh {
			continue
		}
		o, ok := orders[l.OrderID]
		if !ok {
			if o, err = e.chain.JobOrder(ctx, l.OrderID); err != nil {
				return st, fmt.Errorf("gc: order %d: %w", l.OrderID, err)
			}
			orders[l.OrderID] = o
		}
		if challengeable {
			keep[blob.ID(o.ModuleHash)] = true
			for _, h := range o.InputHashes {
				keep[blob.ID(h)] = true
			}
		}
		if fresh {
			keepSealed[l.ID] = true
			if len(l.ResultHash) == len(blob.ID{}) {
				e.keepResults(blob.ID(l.ResultHash), keep)
			}
		}
		if l.Status == "running" && o.DatasetID != 0 {
			if d, err := e.chain.Dataset(ctx, o.DatasetID); err == nil {
				keepData[rootOf(d)] = true
			}
		}
	}
	ds, err := e.chain.Datasets(ctx)
	if err != nil {
		return st, fmt.Errorf("gc: datasets: %w", err)
	}
	for _, d := range ds {
		if !d.Retired && bytes.Equal(d.Host, e.addr) {
			keepData[rootOf(d)] = true
		}
	}

	n, freed, err := sweep(e.store, keep, now)
	st.Blobs, st.Bytes = n, freed
	if err != nil {
		return st, err
	}
	n, freed, err = sweep(e.datasets, keepData, now)
	st.Datasets, st.Bytes = n, st.Bytes+freed
	if err != nil {
		return st, err
	}
	st.Sealed, err = e.sweepSealed(keepSealed, now)
	return st, err
}

// keepResults marks a result list and the outputs it names (when stored).
func (e *Executor) keepResults(id blob.ID, keep map[blob.ID]bool) {
	keep[id] = true
	b, err := e.store.Get(id)
	if err != nil {
		return
	}
	res, err := pjobs.DecodeResults(b)
	if err != nil {
		return
	}
	for _, o := range res.Outputs {
		keep[o.ID] = true
	}
}

// sweep deletes the blobs of s not in keep and last written before now −
// gcGrace.
func sweep(s *blobstore.Store, keep map[blob.ID]bool, now time.Time) (n int, freed uint64, err error) {
	infos, err := s.List()
	if err != nil {
		return 0, 0, err
	}
	for _, in := range infos {
		if keep[in.ID] || now.Sub(in.ModTime) < gcGrace {
			continue
		}
		if err := s.Delete(in.ID); err != nil {
			return n, freed, err
		}
		n++
		freed += in.Size
	}
	return n, freed, nil
}

// sweepSealed deletes the sealed results of leases not in keep.
func (e *Executor) sweepSealed(keep map[uint64]bool, now time.Time) (int, error) {
	ents, err := os.ReadDir(e.sealedDir())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("gc: sealed results: %w", err)
	}
	n := 0
	for _, en := range ents {
		var lease uint64
		if _, err := fmt.Sscanf(en.Name(), "%d.sealed", &lease); err != nil || keep[lease] {
			continue
		}
		info, err := en.Info()
		if err != nil || now.Sub(info.ModTime()) < gcGrace {
			continue
		}
		if err := os.Remove(e.sealedPath(lease)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("gc: %w", err)
		}
		n++
	}
	return n, nil
}
