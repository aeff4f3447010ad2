package explorer

// A training job's loss curve on its page: the train example writes every
// step's loss to out/loss.json (train.LossLog); the explorer fetches it
// from the lease's provider like any owner fetches results — the result
// list checked against the lease's committed result hash, the output
// against its blob ID in the list — and draws it (train.LossChartSVG).
// Results are immutable, so a drawn chart is cached.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/train"
)

// LossOutput is the output a training job's loss curve is read from.
const LossOutput = "out/loss.json"

// maxLossBlob bounds what the explorer fetches for a chart (a result list
// or a loss log: a million steps' losses fit).
const maxLossBlob = 32 << 20

// lossCharts caches drawn charts by lease (a lease's results never change).
type lossCharts struct {
	sync.Mutex
	svg map[uint64][]byte
}

const maxLossCharts = 256

func (s *Server) leaseLoss(w http.ResponseWriter, r *http.Request) {
	svg, err := s.lossChart(r.Context(), r.PathValue("id"))
	if err != nil {
		status := http.StatusBadGateway
		if he, ok := err.(httpError); ok {
			status = he.status
		}
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": err.Error(), "code": status}})
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(svg)
}

func (s *Server) lossChart(ctx context.Context, idArg string) ([]byte, error) {
	var id uint64
	if _, err := fmt.Sscan(idArg, &id); err != nil || fmt.Sprint(id) != idArg {
		return nil, httpError{http.StatusBadRequest, fmt.Sprintf("lease id %q: want a number", idArg)}
	}
	s.losses.Lock()
	svg, ok := s.losses.svg[id]
	s.losses.Unlock()
	if ok {
		return svg, nil
	}
	var l api.JobLeaseView
	found, err := query(s.State, api.JobLeasePath(id), &l)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("lease %d does not exist", id)
	}
	if len(l.ResultHash) != 32 {
		return nil, notFound("lease %d has no results yet (%s)", id, l.Status)
	}
	var o api.JobOrderView
	if _, err := query(s.State, api.JobOrderPath(l.OrderID), &o); err != nil {
		return nil, err
	}
	if o.DatasetID != 0 {
		return nil, notFound("lease %d is a compute-to-data run: its results are sealed to the buyer", id)
	}
	var p api.ProviderView
	if _, err := query(s.State, api.ProviderPath(l.Provider), &p); err != nil {
		return nil, err
	}
	if p.Endpoint == "" {
		return nil, notFound("lease %d's provider %s has no endpoint", id, l.Provider)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var listID blob.ID
	copy(listID[:], l.ResultHash)
	enc, err := fetchBlob(ctx, p.Endpoint, listID)
	if err != nil {
		return nil, fmt.Errorf("lease %d's result list: %w", id, err)
	}
	list, err := pjobs.DecodeResults(enc)
	if err != nil {
		return nil, err
	}
	var out *pjobs.Output
	for i := range list.Outputs {
		if list.Outputs[i].Name == LossOutput {
			out = &list.Outputs[i]
		}
	}
	if out == nil {
		return nil, notFound("lease %d wrote no %s (not a training job)", id, LossOutput)
	}
	raw, err := fetchBlob(ctx, p.Endpoint, out.ID)
	if err != nil {
		return nil, fmt.Errorf("lease %d's %s: %w", id, LossOutput, err)
	}
	var lg train.LossLog
	if err := json.Unmarshal(raw, &lg); err != nil {
		return nil, fmt.Errorf("lease %d's %s: %w", id, LossOutput, err)
	}
	svg = lg.Chart(fmt.Sprintf("Training loss, lease %d (order %d); preset %s, %d steps, seed %d (checked against the chain)", id, l.OrderID, lg.Preset, lg.Steps, lg.Seed))
	s.losses.Lock()
	if s.losses.svg == nil || len(s.losses.svg) >= maxLossCharts {
		s.losses.svg = map[uint64][]byte{}
	}
	s.losses.svg[id] = svg
	s.losses.Unlock()
	return svg, nil
}

// fetchBlob GETs a whole blob from a provider and checks it against its ID.
func fetchBlob(ctx context.Context, endpoint string, id blob.ID) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+blob.BlobPath(id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLossBlob+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLossBlob {
		return nil, fmt.Errorf("blob %s: over %d bytes", id, maxLossBlob)
	}
	if got := blob.Of(b); got != id {
		return nil, fmt.Errorf("blob %s: the provider sent bytes of ID %s", id, got)
	}
	return b, nil
}
