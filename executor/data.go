package executor

// Dataset hosting and compute-to-data (protocol/data).
//
// A dataset's bytes live in a blob store of their own (DataDir/datasets),
// which no generic blob route serves: they leave the executor only on the
// data routes, to an account the chain says may read them (a grant's buyer,
// the dataset's owner, one of its auditors), with protocol/data's access
// header. A compute-to-data lease runs like any job with the dataset's tar
// members under /data and the order's output cap; its results never enter
// the public blob store: the executor commits the plaintext result list's
// blob ID and keeps only the results sealed to the order's buyer key
// (DataDir/sealed), served to the order's owner.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
	pjobs "github.com/agoranet/agora/protocol/jobs"
)

// Datasets is the store of the datasets hosted here.
func (e *Executor) Datasets() *blobstore.Store { return e.datasets }

// PutDataset stores a dataset's bytes directly (the host's own dataset,
// e.g. agora up's sample); they must hash to the dataset's root.
func (e *Executor) PutDataset(root blob.ID, data []byte) error {
	if _, err := pdata.Files(data, ""); err != nil {
		return err
	}
	_, err := e.datasets.Put(root, bytes.NewReader(data), uint64(len(data)))
	return err
}

func rootOf(d api.DatasetView) blob.ID {
	var id blob.ID
	copy(id[:], d.Root)
	return id
}

// httpStatusError carries the status a refused request gets.
type httpStatusError struct {
	code int
	err  error
}

func (h *httpStatusError) Error() string { return h.err.Error() }
func (h *httpStatusError) Unwrap() error { return h.err }

func statusErr(code int, format string, args ...any) error {
	return &httpStatusError{code, fmt.Errorf(format, args...)}
}

func writeErr(w http.ResponseWriter, err error) {
	var h *httpStatusError
	if errors.As(err, &h) {
		jsonError(w, h.code, h.err.Error())
		return
	}
	jsonError(w, http.StatusBadGateway, err.Error())
}

// caller checks the request's access header against the signer's key on
// chain and returns the signer (401 for a missing or bad header).
func (e *Executor) caller(r *http.Request) (types.Address, error) {
	a, err := pdata.ParseAuth(r.Header.Get(pdata.AuthHeader))
	if err != nil {
		return nil, &httpStatusError{http.StatusUnauthorized, err}
	}
	acc, err := e.chain.Account(r.Context(), a.Addr)
	if err != nil && !client.IsNotFound(err) {
		return nil, err
	}
	if err := a.Verify(ed25519.PublicKey(acc.PubKey), e.chainID, r.Method, r.URL.Path, time.Now()); err != nil {
		return nil, &httpStatusError{http.StatusUnauthorized, err}
	}
	return a.Addr, nil
}

// hostedDataset reads the path's dataset and checks this executor hosts it.
func (e *Executor) hostedDataset(r *http.Request) (api.DatasetView, error) {
	id, err := parseU64(r.PathValue("dataset"))
	if err != nil {
		return api.DatasetView{}, statusErr(http.StatusBadRequest, "dataset id: %v", err)
	}
	d, err := e.chain.Dataset(r.Context(), id)
	if client.IsNotFound(err) {
		return d, statusErr(http.StatusNotFound, "dataset %d does not exist", id)
	}
	if err != nil {
		return d, err
	}
	if !bytes.Equal(d.Host, e.addr) {
		return d, statusErr(http.StatusNotFound, "dataset %d is hosted by %s, not here (%s)", id, d.Host, e.addr)
	}
	return d, nil
}

// mayRead says whether a may read dataset d's bytes: its owner, one of its
// auditors, or a buyer holding a download grant (403 otherwise).
func (e *Executor) mayRead(ctx context.Context, d api.DatasetView, a types.Address) error {
	if bytes.Equal(d.Owner, a) || d.IsAuditor(a) {
		return nil
	}
	ok, err := e.chain.HasGrant(ctx, d.ID, a)
	if err != nil {
		return err
	}
	if !ok {
		return statusErr(http.StatusForbidden, "%s holds no download grant on dataset %d (buy one: agora data buy %d)", a, d.ID, d.ID)
	}
	return nil
}

// handleDataPut takes a dataset's bytes from its owner.
func (e *Executor) handleDataPut(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		d, err := e.hostedDataset(r)
		if err != nil {
			return err
		}
		who, err := e.caller(r)
		if err != nil {
			return err
		}
		switch {
		case !bytes.Equal(who, d.Owner):
			return statusErr(http.StatusForbidden, "only dataset %d's owner %s uploads its bytes, not %s", d.ID, d.Owner, who)
		case d.Retired:
			return statusErr(http.StatusGone, "dataset %d is retired", d.ID)
		case d.Size > e.cfg.MaxUpload:
			return statusErr(http.StatusRequestEntityTooLarge, "dataset %d is %d bytes, over this host's upload cap of %d", d.ID, d.Size, e.cfg.MaxUpload)
		case r.ContentLength >= 0 && uint64(r.ContentLength) != d.Size:
			return statusErr(http.StatusBadRequest, "dataset %d is %d bytes on chain, the upload %d", d.ID, d.Size, r.ContentLength)
		}
		_, err = e.datasets.Put(rootOf(d), r.Body, d.Size)
		var mismatch *blobstore.MismatchError
		var tooLarge *blobstore.TooLargeError
		switch {
		case errors.As(err, &mismatch):
			return statusErr(http.StatusBadRequest, "upload refused: the bytes are not dataset %d's: %v", d.ID, err)
		case errors.As(err, &tooLarge):
			return statusErr(http.StatusRequestEntityTooLarge, "upload refused: over dataset %d's %d bytes", d.ID, d.Size)
		case err != nil:
			return statusErr(http.StatusInternalServerError, "store dataset %d: %v", d.ID, err)
		}
		// A dataset a job could not be given (a tar with links, escaping
		// names, ...) is refused now: held, it would make every run on it
		// fail here and nowhere on chain.
		if b, err := e.datasets.Get(rootOf(d)); err != nil {
			return statusErr(http.StatusInternalServerError, "read back dataset %d: %v", d.ID, err)
		} else if _, err := pdata.Files(b, d.Name); err != nil {
			e.datasets.Delete(rootOf(d))
			return statusErr(http.StatusBadRequest, "upload refused: dataset %d cannot be a job's /data: %v", d.ID, err)
		}
		e.log.Info("dataset stored", "dataset", d.ID, "root", rootOf(d), "size", d.Size)
		e.notifyUpload()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "{\"dataset\":%d,\"root\":%q,\"size\":%d}\n", d.ID, rootOf(d), d.Size)
		return nil
	}()
	if err != nil {
		writeErr(w, err)
	}
}

// readableDataset is the common gate of the data reads.
func (e *Executor) readableDataset(r *http.Request) (api.DatasetView, error) {
	d, err := e.hostedDataset(r)
	if err != nil {
		return d, err
	}
	who, err := e.caller(r)
	if err != nil {
		return d, err
	}
	if err := e.mayRead(r.Context(), d, who); err != nil {
		return d, err
	}
	if !e.datasets.Has(rootOf(d)) {
		return d, statusErr(http.StatusNotFound, "dataset %d's bytes were not uploaded here yet", d.ID)
	}
	return d, nil
}

// handleDataGet serves a dataset's bytes (Range requests work).
func (e *Executor) handleDataGet(w http.ResponseWriter, r *http.Request) {
	d, err := e.readableDataset(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	f, _, err := e.datasets.Open(rootOf(d))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// handleDataManifest serves a dataset's manifest.
func (e *Executor) handleDataManifest(w http.ResponseWriter, r *http.Request) {
	d, err := e.readableDataset(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	m, err := e.datasets.Manifest(rootOf(d))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	enc, _ := m.MarshalBinary()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(enc)
}

// leaseOrder is a lease's order (from the lease this executor runs, else
// the chain), checked to be this provider's.
func (e *Executor) leaseOrder(ctx context.Context, lease uint64) (api.JobOrderView, error) {
	e.mu.Lock()
	lz := e.leases[lease]
	e.mu.Unlock()
	if lz != nil {
		return lz.order, nil
	}
	lv, err := e.chain.JobLease(ctx, lease)
	if client.IsNotFound(err) || (err == nil && !bytes.Equal(lv.Provider, e.addr)) {
		return api.JobOrderView{}, statusErr(http.StatusNotFound, "lease %d is not this provider's", lease)
	}
	if err != nil {
		return api.JobOrderView{}, err
	}
	return e.chain.JobOrder(ctx, lv.OrderID)
}

func (e *Executor) sealedDir() string { return filepath.Join(e.cfg.DataDir, "sealed") }

func (e *Executor) sealedPath(lease uint64) string {
	return filepath.Join(e.sealedDir(), fmt.Sprintf("%d.sealed", lease))
}

// handleSealed serves a compute-to-data lease's sealed results to the
// order's owner.
func (e *Executor) handleSealed(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		lease, err := parseU64(r.PathValue("lease"))
		if err != nil {
			return statusErr(http.StatusBadRequest, "lease id: %v", err)
		}
		o, err := e.leaseOrder(r.Context(), lease)
		if err != nil {
			return err
		}
		if o.DatasetID == 0 {
			return statusErr(http.StatusNotFound, "lease %d is not a compute-to-data run (its results are plain blobs)", lease)
		}
		who, err := e.caller(r)
		if err != nil {
			return err
		}
		if !bytes.Equal(who, o.Owner) {
			return statusErr(http.StatusForbidden, "lease %d's results are sealed to order %d's owner %s, not %s", lease, o.ID, o.Owner, who)
		}
		b, err := os.ReadFile(e.sealedPath(lease))
		if errors.Is(err, os.ErrNotExist) {
			return statusErr(http.StatusNotFound, "lease %d has no results yet", lease)
		}
		if err != nil {
			return statusErr(http.StatusInternalServerError, "%v", err)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
		return nil
	}()
	if err != nil {
		writeErr(w, err)
	}
}

// gateState lets a compute-to-data lease's states out only to its
// dataset's auditors (a state holds the job's memory: the data).
func (e *Executor) gateState(r *http.Request, lease uint64) error {
	o, err := e.leaseOrder(r.Context(), lease)
	var h *httpStatusError
	if errors.As(err, &h) {
		return nil // not ours: the state handler says so
	}
	if err != nil {
		return err
	}
	if o.DatasetID == 0 {
		return nil
	}
	who, err := e.caller(r)
	if err != nil {
		return err
	}
	d, err := e.chain.Dataset(r.Context(), o.DatasetID)
	if err != nil {
		return err
	}
	if !d.IsAuditor(who) {
		return statusErr(http.StatusForbidden, "lease %d runs on dataset %d: its states go to the dataset's auditors only, not %s", lease, d.ID, who)
	}
	return nil
}

// datasetOf checks a compute-to-data order against its dataset for the
// bid: hosted here, bytes held.
func (e *Executor) datasetUnfit(ctx context.Context, o api.JobOrderView) string {
	d, err := e.chain.Dataset(ctx, o.DatasetID)
	if err != nil {
		return fmt.Sprintf("dataset %d: %v", o.DatasetID, err)
	}
	if !bytes.Equal(d.Host, e.addr) {
		return fmt.Sprintf("dataset %d is hosted by %s", d.ID, d.Host)
	}
	if !e.datasets.Has(rootOf(d)) {
		return fmt.Sprintf("dataset %d's bytes were not uploaded here", d.ID)
	}
	return ""
}

// dataOf is what a compute-to-data job sees under /data.
func (e *Executor) dataOf(ctx context.Context, o api.JobOrderView) ([]wasm.Blob, error) {
	d, err := e.chain.Dataset(ctx, o.DatasetID)
	if err != nil {
		return nil, fmt.Errorf("dataset %d: %w", o.DatasetID, err)
	}
	root := rootOf(d)
	e.mu.Lock()
	for _, c := range e.dataFiles {
		if c.root == root && c.name == d.Name {
			e.mu.Unlock()
			return c.files, nil
		}
	}
	e.mu.Unlock()
	b, err := e.datasets.Get(root)
	if err != nil {
		return nil, fmt.Errorf("dataset %d: %w", d.ID, err)
	}
	files, err := DataFiles(b, d.Name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.dataFiles = append([]cachedData{{root, d.Name, files}}, e.dataFiles...)
	if len(e.dataFiles) > maxCachedData {
		e.dataFiles = e.dataFiles[:maxCachedData]
	}
	e.mu.Unlock()
	return files, nil
}

// cachedData is a dataset's /data files, kept for the next run (the
// engine only reads them).
type cachedData struct {
	root  blob.ID
	name  string
	files []wasm.Blob
}

// maxCachedData is how many datasets' files stay in memory.
const maxCachedData = 2

// DataFiles is a dataset blob as a job's /data files (protocol/data
// Files): what the executor and the dataset's auditors run on.
func DataFiles(b []byte, name string) ([]wasm.Blob, error) {
	ms, err := pdata.Files(b, name)
	if err != nil {
		return nil, err
	}
	out := make([]wasm.Blob, len(ms))
	for i, m := range ms {
		out[i] = wasm.Blob{Name: m.Name, Data: m.Data}
	}
	return out, nil
}

// sealResults makes a compute-to-data run's result list (a failure's
// reason added; only the reason when the outputs with it are over the
// order's cap, so nothing over the cap is delivered), seals it with its
// outputs to the order's buyer key and keeps the sealed blob. It returns
// the plaintext list's ID, which the final checkpoint commits.
func (e *Executor) sealResults(lz *lease, outs []wasm.Blob, failure string) (blob.ID, error) {
	o := lz.order
	if failure != "" {
		all := append(append([]wasm.Blob(nil), outs...), wasm.Blob{Name: pjobs.FailureOutput, Data: []byte(failure)})
		if o.OutputCap > 0 && wasm.ResultsSize(all) > o.OutputCap {
			all = all[len(all)-1:]
		}
		outs = all
	}
	list := &pjobs.Results{}
	byName := map[string][]byte{}
	for _, b := range outs {
		list.Outputs = append(list.Outputs, pjobs.Output{Name: b.Name, ID: blob.Of(b.Data), Size: uint64(len(b.Data))})
		byName[b.Name] = b.Data
	}
	pt, err := pdata.PackResults(list, byName)
	if err != nil {
		return blob.ID{}, err
	}
	sealed, err := pdata.Seal(o.BuyerKey, lz.id, pt, rand.Reader)
	if err != nil {
		return blob.ID{}, fmt.Errorf("lease %d: %w", lz.id, err)
	}
	p := e.sealedPath(lz.id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return blob.ID{}, err
	}
	if err := writeFileSync(p, sealed); err != nil {
		return blob.ID{}, fmt.Errorf("keep lease %d's sealed results: %w", lz.id, err)
	}
	return list.ID(), nil
}

// writeFileSync writes a file atomically (temp, sync, rename).
func writeFileSync(p string, b []byte) error {
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
