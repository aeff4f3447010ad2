package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
	pjobs "github.com/agoranet/agora/protocol/jobs"
)

// Mount adds the executor's routes to mux: the blob paths (the owner's
// uploads; results and result lists for anyone), protocol/jobs LeasePath
// and StatePath (a compute-to-data lease's to its dataset's auditors only),
// and protocol/data's dataset and sealed-results paths (data.go).
func (e *Executor) Mount(mux *http.ServeMux) {
	// The generic blob routes refuse a hosted dataset's ID outright, so
	// its bytes leave only by the gated data routes (the datasets' store
	// is not behind these routes anyway; this says so plainly).
	blobs := http.NewServeMux()
	e.blobs.Register(blobs)
	guard := func(w http.ResponseWriter, r *http.Request) {
		if id, err := blob.ParseID(r.PathValue("id")); err == nil && e.datasets.Has(id) {
			jsonError(w, http.StatusForbidden, "blob "+id.String()+" is a dataset's data: it is served only on the data routes (/v1/data/ID), with a download grant")
			return
		}
		blobs.ServeHTTP(w, r)
	}
	for _, route := range []string{"GET " + blob.BlobRoute, "HEAD " + blob.BlobRoute, blob.ManifestRoute, blob.ChunkRoute} {
		mux.HandleFunc(route, guard)
	}
	mux.HandleFunc("PUT "+blob.BlobRoute, func(w http.ResponseWriter, r *http.Request) {
		blobs.ServeHTTP(w, r)
		e.notifyUpload()
	})
	mux.HandleFunc(pjobs.LeaseRoute, e.handleLease)
	mux.HandleFunc(pjobs.StateRoute, e.handleState)
	mux.HandleFunc("PUT "+pdata.DataRoute, e.handleDataPut)
	mux.HandleFunc("GET "+pdata.DataRoute, e.handleDataGet)
	mux.HandleFunc("HEAD "+pdata.DataRoute, e.handleDataGet)
	mux.HandleFunc(pdata.DataManifestRoute, e.handleDataManifest)
	mux.HandleFunc(pdata.SealedRoute, e.handleSealed)
}

// uploadSignal is a channel closed at the next upload.
func (e *Executor) uploadSignal() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.uploaded
}

func (e *Executor) notifyUpload() {
	e.mu.Lock()
	close(e.uploaded)
	e.uploaded = make(chan struct{})
	e.mu.Unlock()
}

func parseU64(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authorize admits an upload of id: the header's signature verifies, its
// signer owns the order, id is the order's module or an input, and the
// order has a lease to this provider.
func (e *Executor) authorize(r *http.Request, id blob.ID) error {
	h := r.Header.Get(pjobs.UploadHeader)
	if h == "" {
		return errors.New("uploads need an " + pjobs.UploadHeader + " header signed by the order's owner")
	}
	u, err := pjobs.ParseUpload(h)
	if err != nil {
		return err
	}
	if err := u.Verify(e.chainID, id); err != nil {
		return err
	}
	ctx := r.Context()
	o, err := e.chain.JobOrder(ctx, u.Order)
	if client.IsNotFound(err) {
		return fmt.Errorf("order %d does not exist", u.Order)
	}
	if err != nil {
		return fmt.Errorf("order %d: %w", u.Order, err)
	}
	if !bytes.Equal(o.Owner, u.Owner) {
		return fmt.Errorf("%s does not own order %d", u.Owner, o.ID)
	}
	if !bytes.Equal(o.ModuleHash, id[:]) && !slices.ContainsFunc(o.InputHashes, func(h types.HexBytes) bool { return bytes.Equal(h, id[:]) }) {
		return fmt.Errorf("blob %s is neither order %d's module nor one of its inputs", id, o.ID)
	}
	for _, lid := range o.LeaseIDs {
		l, err := e.chain.JobLease(ctx, lid)
		if err != nil {
			return fmt.Errorf("lease %d: %w", lid, err)
		}
		if bytes.Equal(l.Provider, e.addr) {
			return nil
		}
	}
	return fmt.Errorf("order %d has no lease to this provider (%s)", o.ID, e.addr)
}

func pathU64(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		jsonError(w, http.StatusBadRequest, name+": "+err.Error())
		return 0, false
	}
	return v, true
}

func (e *Executor) handleLease(w http.ResponseWriter, r *http.Request) {
	id, ok := pathU64(w, r, "lease")
	if !ok {
		return
	}
	e.mu.Lock()
	lz := e.leases[id]
	e.mu.Unlock()
	if lz == nil {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("lease %d is not run here", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(lz.snapshot())
}

// handleState serves a lease's state after a step: a stored checkpoint
// state, or, for a lease under dispute, any step of the disputed interval
// (recomputed).
func (e *Executor) handleState(w http.ResponseWriter, r *http.Request) {
	id, ok := pathU64(w, r, "lease")
	if !ok {
		return
	}
	step, ok := pathU64(w, r, "step")
	if !ok {
		return
	}
	if err := e.gateState(r, id); err != nil {
		writeErr(w, err)
		return
	}
	if b, err := os.ReadFile(e.statePath(id, step)); err == nil {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
		return
	}
	ctx := r.Context()
	lv, err := e.chain.JobLease(ctx, id)
	if err != nil || !bytes.Equal(lv.Provider, e.addr) {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("lease %d is not this provider's", id))
		return
	}
	if !e.disputed(ctx, id, step) {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("lease %d: step %d is not a checkpoint and not in a disputed interval", id, step))
		return
	}
	o, err := e.chain.JobOrder(ctx, lv.OrderID)
	if err != nil {
		jsonError(w, http.StatusBadGateway, err.Error())
		return
	}
	s, err := e.stateAt(ctx, id, o, step)
	if err != nil {
		jsonError(w, http.StatusNotFound, err.Error())
		return
	}
	b, err := s.MarshalBinary()
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

// disputed reports whether step lies in an unresolved dispute's interval
// over the lease.
func (e *Executor) disputed(ctx context.Context, lease, step uint64) bool {
	ds, err := e.chain.JobLeaseDisputes(ctx, lease)
	if err != nil {
		return false
	}
	for _, d := range ds {
		if d.Phase != "resolved" && d.Lo <= step && step <= d.Hi {
			return true
		}
	}
	return false
}

// defend plays the defender's moves of the lease's open dispute: the
// state hashes at the inner boundaries of the disputed interval, from the
// executor's own states, within the move window.
func (e *Executor) defend(ctx context.Context, l api.JobLeaseView) {
	d, err := e.chain.JobDispute(ctx, l.OpenDispute)
	if err != nil {
		e.log.Warn("dispute", "dispute", l.OpenDispute, "err", err)
		return
	}
	if d.Phase != "bisect" || !bytes.Equal(d.Defender, e.addr) {
		return
	}
	e.mu.Lock()
	done, seen := e.moved[d.ID]
	e.mu.Unlock()
	if seen && done >= d.Moves+1 {
		return // this move is sent
	}
	o, err := e.chain.JobOrder(ctx, l.OrderID)
	if err != nil {
		return
	}
	jd := &types.JobDispute{Lo: d.Lo, Hi: d.Hi}
	n := jobs.Parts(jd, e.params.Jobs.BisectionK)
	msg := &types.MsgBisect{DisputeId: d.ID}
	for j := uint64(1); j < n; j++ {
		step := jobs.Boundary(jd, j, n)
		s, err := e.stateAt(ctx, l.ID, o, step)
		if err != nil {
			e.log.Error("cannot compute a disputed state", "dispute", d.ID, "step", step, "err", err)
			return
		}
		h := s.Hash()
		msg.Hashes = append(msg.Hashes, h[:])
	}
	e.mu.Lock()
	e.moved[d.ID] = d.Moves + 1
	e.mu.Unlock()
	if _, err := e.signer.Send(ctx, msg); err != nil {
		e.log.Warn("bisect move refused", "dispute", d.ID, "err", err)
		e.mu.Lock()
		delete(e.moved, d.ID)
		e.mu.Unlock()
		return
	}
	e.metrics.disputeMoves.Inc()
	e.log.Info("bisect move", "dispute", d.ID, "lo", d.Lo, "hi", d.Hi, "parts", n)
}
