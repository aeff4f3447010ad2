package validator

// Models from the trained-model registry (chain/models). A provider may
// serve a model the network trained; an auditor that does not hold it
// fetches it the first time a sampled receipt names it: the registry's
// records give the leases, each lease's executor serves the job's outputs
// as blobs, every chunk is checked against the record's blob ID and the
// whole file against its sha256. The same bytes may have several records
// (one per lease that registered them: the trainer's, a copier's): they
// are tried in lease order until one provider serves the bytes, so a
// record whose provider is gone, or whose blob is other bytes, does not
// hide the others. Compute-to-data models are sealed to their buyer and
// cannot be fetched this way.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/verify"
)

// registryRetry is how long a model that could not be fetched is not
// asked for again.
const registryRetry = 5 * time.Minute

// FetchRegistered lets the auditor fetch models registered on chain into
// dir (files named by their sha256), up to maxBytes each.
func (a *Auditor) FetchRegistered(dir string, maxBytes uint64) *Auditor {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fetchDir, a.fetchMax = dir, maxBytes
	return a
}

// model returns the model with file hash mh: one the auditor holds, or one
// it fetched from the registry (see FetchRegistered); why not otherwise.
func (a *Auditor) model(ctx context.Context, mh [32]byte) (*native.Model, *verify.Vocab, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m, ok := a.models[mh]; ok {
		return m, a.vocabs[mh], ""
	}
	why := fmt.Sprintf("model %x not held by this auditor", mh[:8])
	if a.fetchDir == "" {
		return nil, nil, why
	}
	if at, ok := a.fetchFailed[mh]; ok && time.Since(at) < registryRetry {
		return nil, nil, why + " (not fetchable from the registry, retried after " + registryRetry.String() + ")"
	}
	m, err := a.fetchRegistered(ctx, mh)
	if err != nil {
		a.fetchFailed[mh] = time.Now()
		return nil, nil, why + ": " + err.Error()
	}
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		m.Close()
		a.fetchFailed[mh] = time.Now()
		return nil, nil, fmt.Sprintf("%s: the registered model's tokenizer: %v", why, err)
	}
	a.models[mh], a.vocabs[mh] = m, verify.NewVocab(tok)
	return m, a.vocabs[mh], ""
}

func (a *Auditor) fetchRegistered(ctx context.Context, mh [32]byte) (*native.Model, error) {
	path := filepath.Join(a.fetchDir, hex.EncodeToString(mh[:])+".gguf")
	if sum, err := fileSum(path); err == nil && sum == mh {
		return native.Load(path, native.Options{})
	}
	recs, err := a.chain.TrainedModelRecords(ctx, mh[:])
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := os.MkdirAll(a.fetchDir, 0o755); err != nil {
		return nil, err
	}
	srcs := make([]source, 0, len(recs))
	for _, rec := range recs {
		srcs = append(srcs, source{rec: rec, endpoint: func(ctx context.Context) (string, error) {
			l, err := a.chain.JobLease(ctx, rec.LeaseID)
			if err != nil {
				return "", fmt.Errorf("lease %d: %w", rec.LeaseID, err)
			}
			return jobowner.Endpoint(ctx, a.chain, l)
		}})
	}
	if err := fetchFirst(ctx, srcs, mh, a.fetchMax, path); err != nil {
		return nil, err
	}
	return native.Load(path, native.Options{})
}

// source is one record of a model and how to find its lease's executor.
type source struct {
	rec      api.TrainedModelView
	endpoint func(context.Context) (string, error)
}

// fetchFirst fetches the model with sha256 mh into path from the first
// source, in order, whose provider serves bytes matching its record's blob
// ID (every chunk checked) and mh; why each failed otherwise.
func fetchFirst(ctx context.Context, srcs []source, mh [32]byte, maxBytes uint64, path string) error {
	var whys []string
	for _, s := range srcs {
		err := fetchOne(ctx, s, mh, maxBytes, path)
		if err == nil {
			return nil
		}
		whys = append(whys, fmt.Sprintf("lease %d: %v", s.rec.LeaseID, err))
	}
	if len(whys) == 0 {
		return fmt.Errorf("no record of %x", mh[:8])
	}
	return fmt.Errorf("none of its %d record(s) could be fetched: %s", len(srcs), strings.Join(whys, "; "))
}

func fetchOne(ctx context.Context, s source, mh [32]byte, maxBytes uint64, path string) error {
	rec := s.rec
	switch {
	case rec.DatasetID != 0:
		return fmt.Errorf("trained on dataset %d: its results are sealed to the buyer", rec.DatasetID)
	case maxBytes > 0 && rec.Size > maxBytes:
		return fmt.Errorf("%d bytes, above this auditor's limit of %d", rec.Size, maxBytes)
	case len(rec.BlobID) != len(blob.ID{}):
		return fmt.Errorf("the record has no blob ID")
	}
	ep, err := s.endpoint(ctx)
	if err != nil {
		return err
	}
	// A partial download is named by the blob it holds: another record's
	// blob (other bytes under the same sha256) never resumes it.
	var id blob.ID
	copy(id[:], rec.BlobID)
	tmp := path + "." + id.String()[:16]
	defer os.Remove(tmp)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := (&blobstore.Client{Base: ep}).Fetch(ctx, id, tmp, nil); err != nil { // every chunk checked against the ID
		return fmt.Errorf("fetch from %s: %w", ep, err)
	}
	if sum, err := fileSum(tmp); err != nil || sum != mh {
		return fmt.Errorf("the fetched file's sha256 %x is not the registered %x (%v)", sum, mh, err)
	}
	return os.Rename(tmp, path)
}

// fileSum is a file's sha256, streamed (a model may be gigabytes).
func fileSum(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
