// Package jobowner is a job owner's side of the compute-job protocol:
// handing an order's module and inputs to the providers it was leased to,
// and fetching a finished order's results, checked against the chain.
package jobowner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/models"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
)

// WaitLeases waits until the order leaves bidding and returns it with its
// leases; an order that did not clear is an error carrying the chain's
// reason.
func WaitLeases(ctx context.Context, c *client.Client, order uint64, poll time.Duration) (api.JobOrderView, []api.JobLeaseView, error) {
	for {
		o, err := c.JobOrder(ctx, order)
		if err != nil {
			return o, nil, err
		}
		if o.Status != "bidding" {
			if len(o.LeaseIDs) == 0 {
				return o, nil, fmt.Errorf("order %d is %s: %s", order, o.Status, o.Reason)
			}
			var ls []api.JobLeaseView
			for _, id := range o.LeaseIDs {
				l, err := c.JobLease(ctx, id)
				if err != nil {
					return o, nil, err
				}
				ls = append(ls, l)
			}
			return o, ls, nil
		}
		select {
		case <-ctx.Done():
			return o, nil, fmt.Errorf("waiting for order %d to clear: %w", order, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Endpoint is a provider's registered endpoint.
func Endpoint(ctx context.Context, c *client.Client, l api.JobLeaseView) (string, error) {
	var pv api.ProviderView
	if err := c.Query(ctx, api.ProviderPath(l.Provider), 0, &pv); err != nil {
		return "", fmt.Errorf("provider %s: %w", l.Provider, err)
	}
	if pv.Endpoint == "" {
		return "", fmt.Errorf("provider %s registered no endpoint", l.Provider)
	}
	return strings.TrimRight(pv.Endpoint, "/"), nil
}

// Progress reports an upload: done of total bytes of blob id sent to
// provider (called as the bytes go, and with done = total once the
// provider accepted them).
type Progress func(provider string, id blob.ID, done, total int64)

// progressReader calls back every progressStep bytes.
type progressReader struct {
	r          io.Reader
	done, last int64
	report     func(done int64)
}

const progressStep = 1 << 20

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done-p.last >= progressStep {
		p.last = p.done
		p.report(p.done)
	}
	return n, err
}

// Upload sends each blob (by ID, the bytes) of the order to every leased
// provider, signed by the owner's key, reporting to progress if set.
func Upload(ctx context.Context, c *client.Client, key ed25519.PrivateKey, order uint64, leases []api.JobLeaseView, blobs map[blob.ID][]byte, progress Progress) error {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return err
	}
	for _, l := range leases {
		ep, err := Endpoint(ctx, c, l)
		if err != nil {
			return err
		}
		bc := &blobstore.Client{Base: ep, Header: func(r *http.Request, id blob.ID) error {
			r.Header.Set(jobs.UploadHeader, jobs.SignUpload(key, chainID, order, id))
			return nil
		}}
		for id, data := range blobs {
			total := int64(len(data))
			var r io.Reader = bytes.NewReader(data)
			if progress != nil {
				r = &progressReader{r: r, report: func(done int64) { progress(ep, id, min(done, total-1), total) }}
			}
			if err := bc.Upload(ctx, id, r, total); err != nil {
				return fmt.Errorf("upload %s to %s (lease %d): %w", id, ep, l.ID, err)
			}
			if progress != nil {
				progress(ep, id, total, total)
			}
		}
	}
	return nil
}

// Result is a finished lease's checked results.
type Result struct {
	Lease   uint64
	List    *jobs.Results
	Outputs map[string][]byte // by output name
	Failed  bool              // the job failed: Outputs[jobs.FailureOutput] says why
}

// WaitDone waits until a lease of the order committed its final
// checkpoint and returns that lease.
func WaitDone(ctx context.Context, c *client.Client, order uint64, poll time.Duration) (api.JobLeaseView, error) {
	for {
		o, err := c.JobOrder(ctx, order)
		if err != nil {
			return api.JobLeaseView{}, err
		}
		for _, id := range o.LeaseIDs {
			l, err := c.JobLease(ctx, id)
			if err != nil {
				return l, err
			}
			if l.Status == "done" && len(l.ResultHash) == 32 {
				return l, nil
			}
		}
		switch o.Status {
		case "unmatched", "cancelled", "ended":
			return api.JobLeaseView{}, fmt.Errorf("order %d is %s without a result: %s", order, o.Status, o.Reason)
		}
		select {
		case <-ctx.Done():
			return api.JobLeaseView{}, fmt.Errorf("waiting for order %d's result: %w", order, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Fetch downloads a done lease's result list and outputs from its
// provider into dir (every chunk checked against its blob ID, the list's
// ID against the lease's result hash on chain) and returns them.
func Fetch(ctx context.Context, c *client.Client, l api.JobLeaseView, dir string) (*Result, error) {
	if len(l.ResultHash) != 32 {
		return nil, fmt.Errorf("lease %d has no result on chain (status %s)", l.ID, l.Status)
	}
	var want blob.ID
	copy(want[:], l.ResultHash)
	ep, err := Endpoint(ctx, c, l)
	if err != nil {
		return nil, err
	}
	bc := &blobstore.Client{Base: ep}
	tmp, err := os.MkdirTemp("", "agora-result-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	get := func(id blob.ID) ([]byte, error) {
		p := filepath.Join(tmp, id.String())
		if err := bc.Fetch(ctx, id, p, nil); err != nil {
			return nil, err
		}
		return os.ReadFile(p)
	}
	enc, err := get(want) // Fetch checks every chunk against the ID the chain holds
	if err != nil {
		return nil, fmt.Errorf("result list %s from %s: %w", want, ep, err)
	}
	list, err := jobs.DecodeResults(enc)
	if err != nil {
		return nil, err
	}
	if list.ID() != want {
		return nil, errors.New("the result list does not re-encode to the committed ID")
	}
	res := &Result{Lease: l.ID, List: list, Outputs: map[string][]byte{}}
	for _, o := range list.Outputs {
		data, err := get(o.ID)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", o.Name, err)
		}
		if uint64(len(data)) != o.Size {
			return nil, fmt.Errorf("output %s: %d bytes, the list says %d", o.Name, len(data), o.Size)
		}
		res.Outputs[o.Name] = data
		if o.Name == jobs.FailureOutput {
			res.Failed = true
		}
		if dir != "" {
			p := filepath.Join(dir, filepath.FromSlash(o.Name))
			if !strings.HasPrefix(filepath.Clean(p), filepath.Clean(dir)+string(filepath.Separator)) {
				return nil, fmt.Errorf("output name %q leaves the output directory", o.Name)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// ModelRegistration is the message registering the model a fetched,
// succeeded lease wrote as output (chain/models): the result list and the
// job's own digest of the file (output + ".sha256"), which the chain
// checks against the lease's committed result hash.
func (r *Result) ModelRegistration(output, name string) (*types.MsgRegisterModel, error) {
	if r.Failed {
		return nil, fmt.Errorf("lease %d's job failed: %s", r.Lease, r.Outputs[jobs.FailureOutput])
	}
	if _, ok := r.Outputs[output]; !ok {
		return nil, fmt.Errorf("lease %d has no output %q (it has %s)", r.Lease, output, strings.Join(r.names(), ", "))
	}
	digest, ok := r.Outputs[output+models.DigestSuffix]
	if !ok {
		return nil, fmt.Errorf("lease %d has no %q beside %q: only a job that writes its model's sha256 there can register it", r.Lease, output+models.DigestSuffix, output)
	}
	sum, err := models.ParseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("lease %d's %s: %w", r.Lease, output+models.DigestSuffix, err)
	}
	if got := sha256.Sum256(r.Outputs[output]); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("lease %d's %s says %x, but the file's sha256 is %x", r.Lease, output+models.DigestSuffix, sum, got)
	}
	return &types.MsgRegisterModel{LeaseId: r.Lease, Results: r.List.Encode(), Output: output, Digest: digest, Name: name}, nil
}

func (r *Result) names() []string {
	var out []string
	for _, o := range r.List.Outputs {
		out = append(out, o.Name)
	}
	return out
}
