// Package dataclient is the data market's client side off chain
// (protocol/data): a dataset owner's upload of its bytes to the host, a
// grant holder's (or auditor's) download of them, checked chunk by chunk
// against the dataset's root, and a buyer's fetch of a compute-to-data
// run's sealed results, decrypted and checked against the chain.
package dataclient

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agoranet/agora/chain/api"
	chainjobs "github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/internal/jobowner"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
	"github.com/agoranet/agora/protocol/jobs"
)

// HostEndpoint is the registered endpoint of a dataset's host.
func HostEndpoint(ctx context.Context, c *client.Client, d api.DatasetView) (string, error) {
	pv, err := c.Provider(ctx, d.Host)
	if err != nil {
		return "", fmt.Errorf("dataset %d's host %s: %w", d.ID, d.Host, err)
	}
	if pv.Endpoint == "" {
		return "", fmt.Errorf("dataset %d's host %s registered no endpoint", d.ID, d.Host)
	}
	return strings.TrimRight(pv.Endpoint, "/"), nil
}

// signer signs each request with the access header.
type signer struct {
	key     ed25519.PrivateKey
	chainID string
	base    http.RoundTripper
}

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(pdata.AuthHeader, pdata.SignAuth(s.key, s.chainID, r.Method, r.URL.Path, time.Now()))
	base := s.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// HTTPClient is an HTTP client whose every request carries key's access
// header (for the chain chainID).
func HTTPClient(key ed25519.PrivateKey, chainID string) *http.Client {
	return &http.Client{Transport: &signer{key: key, chainID: chainID}}
}

func readErr(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(b))
	var e struct{ Error string }
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return fmt.Errorf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, msg)
}

// Upload sends a dataset's bytes (size bytes from r) to its host, signed by
// the owner's key.
func Upload(ctx context.Context, c *client.Client, key ed25519.PrivateKey, d api.DatasetView, r io.Reader, size int64) error {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return err
	}
	ep, err := HostEndpoint(ctx, c, d)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, ep+pdata.DataPath(d.ID), r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := HTTPClient(key, chainID).Do(req)
	if err != nil {
		return fmt.Errorf("upload dataset %d to %s: %w", d.ID, ep, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload dataset %d: %w", d.ID, readErr(resp))
	}
	return nil
}

// Download fetches a dataset's bytes from its host into dst (resumable:
// an interrupted download leaves dst+".part"), every chunk checked against
// the dataset's root on chain. key must hold a grant, own the dataset or
// audit it.
func Download(ctx context.Context, c *client.Client, key ed25519.PrivateKey, dataset uint64, dst string, progress func(done, total uint64)) (api.DatasetView, error) {
	d, err := c.Dataset(ctx, dataset)
	if err != nil {
		return d, err
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return d, err
	}
	ep, err := HostEndpoint(ctx, c, d)
	if err != nil {
		return d, err
	}
	var root blob.ID
	copy(root[:], d.Root)
	// blobstore.Client checks the manifest against the ID and each chunk
	// against the manifest; the host serves them on the data paths.
	bc := &blobstore.Client{HTTP: HTTPClient(key, chainID), Base: ep, Paths: func(blob.ID) (string, string) {
		return pdata.DataPath(d.ID), pdata.DataManifestPath(d.ID)
	}}
	if err := bc.Fetch(ctx, root, dst, progress); err != nil {
		return d, fmt.Errorf("download dataset %d from %s: %w", d.ID, ep, err)
	}
	return d, nil
}

// Fetched is a compute-to-data run's decrypted, checked results.
type Fetched = jobowner.Result

// FetchSealed fetches a done compute-to-data lease's sealed results from
// its provider, opens them with the buyer's key, checks every output
// against the list and the list's ID against the lease's result hash on
// chain, and writes the outputs under dir (if not empty).
func FetchSealed(ctx context.Context, c *client.Client, key ed25519.PrivateKey, l api.JobLeaseView, dir string) (*Fetched, error) {
	if len(l.ResultHash) != 32 {
		return nil, fmt.Errorf("lease %d has no result on chain (status %s)", l.ID, l.Status)
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := jobowner.Endpoint(ctx, c, l)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+pdata.SealedPath(l.ID), nil)
	if err != nil {
		return nil, err
	}
	resp, err := HTTPClient(key, chainID).Do(req)
	if err != nil {
		return nil, fmt.Errorf("sealed results of lease %d from %s: %w", l.ID, ep, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readErr(resp)
	}
	sealed, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, err
	}
	pt, err := pdata.Open(key, l.ID, sealed)
	if err != nil {
		return nil, fmt.Errorf("lease %d: %w", l.ID, err)
	}
	list, outs, err := pdata.UnpackResults(pt)
	if err != nil {
		return nil, fmt.Errorf("lease %d: %w", l.ID, err)
	}
	if id := list.ID(); string(id[:]) != string(l.ResultHash) {
		return nil, fmt.Errorf("lease %d: the decrypted result list is %s, the chain committed %s", l.ID, id, l.ResultHash)
	}
	res := &Fetched{Lease: l.ID, List: list, Outputs: outs}
	_, res.Failed = outs[jobs.FailureOutput]
	if dir != "" {
		for _, o := range list.Outputs {
			p := filepath.Join(dir, filepath.FromSlash(o.Name))
			if !strings.HasPrefix(filepath.Clean(p), filepath.Clean(dir)+string(filepath.Separator)) {
				return nil, fmt.Errorf("output name %q leaves the output directory", o.Name)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, outs[o.Name], 0o644); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// RunSpec is a compute-to-data order: a module run on a dataset.
type RunSpec struct {
	Dataset     uint64
	Module      []byte  // the module's bytes (uploaded to the host), or nil with ModuleID
	ModuleID    blob.ID // the module's blob ID (computed from Module when set)
	Args        []string
	Gas         uint64 // gas limit
	MaxPrice    uint64 // uagr per million gas
	MaxRunPrice uint64 // refuse the order if the dataset's run price is above (0: any)
	MemoryPages uint32
	Collateral  uint64
	BidWindow   int64
	DeadlineIn  int64  // blocks from now
	Interval    uint64 // steps between checkpoints
	Liveness    int64  // blocks without a checkpoint before abandonment (0: the chain's default)
	Poll        time.Duration
}

// Order builds the order's message; height is the chain's current height.
// The buyer key is the X25519 form of the signing account's key.
func (s *RunSpec) Order(key ed25519.PrivateKey, height int64) (*types.MsgSubmitJob, error) {
	if s.Module != nil {
		s.ModuleID = blob.Of(s.Module)
	}
	bk, err := pdata.BuyerKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	per, err := chainjobs.Budget(s.Gas, s.MaxPrice)
	if err != nil {
		return nil, err
	}
	return &types.MsgSubmitJob{
		ModuleHash: s.ModuleID[:], GasLimit: s.Gas, MemoryPages: s.MemoryPages, MaxPrice: s.MaxPrice,
		Deadline: height + s.DeadlineIn, Collateral: s.Collateral, Replication: 1, BidWindow: s.BidWindow,
		CheckpointInterval: s.Interval, Escrow: per, Args: s.Args,
		DatasetId: s.Dataset, BuyerKey: bk, MaxRunPrice: s.MaxRunPrice, LivenessBlocks: s.Liveness,
	}, nil
}

// Submitted is a posted compute-to-data order and its lease.
type Submitted struct {
	Tx    *client.TxResult
	Order uint64
	Lease api.JobLeaseView
}

// Submit posts the order, waits for the host's lease and uploads the
// module to it (unless the host holds it already; a module given by ID
// only must be there).
func Submit(ctx context.Context, c *client.Client, key ed25519.PrivateKey, s *RunSpec) (*Submitted, error) {
	d, err := c.Dataset(ctx, s.Dataset)
	if err != nil {
		return nil, fmt.Errorf("dataset %d: %w", s.Dataset, err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := s.Order(key, st.SyncInfo.LatestBlockHeight)
	if err != nil {
		return nil, err
	}
	if !d.AllowsModule(msg.ModuleHash) {
		return nil, fmt.Errorf("module %s is not on dataset %d's allow-list %v", s.ModuleID, d.ID, d.AllowedModules)
	}
	ep, err := HostEndpoint(ctx, c, d)
	if err != nil {
		return nil, err
	}
	bc := &blobstore.Client{Base: ep}
	hostHas := func() bool { _, err := bc.Manifest(ctx, s.ModuleID); return err == nil }
	if s.Module == nil && !hostHas() {
		return nil, fmt.Errorf("dataset %d's host %s does not hold module %s: give the module's file", d.ID, ep, s.ModuleID)
	}
	res, err := c.NewSigner(key).Send(ctx, msg)
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(res.Events["order_id"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("the submit tx %s named no order: %w", res.Hash, err)
	}
	poll := s.Poll
	if poll == 0 {
		poll = 200 * time.Millisecond
	}
	_, leases, err := jobowner.WaitLeases(ctx, c, id, poll)
	if err != nil {
		return nil, err
	}
	sub := &Submitted{Tx: res, Order: id, Lease: leases[0]}
	if s.Module != nil && !hostHas() {
		if err := jobowner.Upload(ctx, c, key, id, leases, map[blob.ID][]byte{s.ModuleID: s.Module}, nil); err != nil {
			return sub, err
		}
	}
	return sub, nil
}

// Wait waits for the order's final checkpoint and fetches its sealed
// results (FetchSealed).
func Wait(ctx context.Context, c *client.Client, key ed25519.PrivateKey, order uint64, dir string, poll time.Duration) (*Fetched, api.JobLeaseView, error) {
	if poll == 0 {
		poll = 200 * time.Millisecond
	}
	l, err := jobowner.WaitDone(ctx, c, order, poll)
	if err != nil {
		return nil, l, err
	}
	res, err := FetchSealed(ctx, c, key, l, dir)
	return res, l, err
}
