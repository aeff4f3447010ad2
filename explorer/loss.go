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
	"errors"
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
// or a loss log: ≈ 200,000 steps' losses fit).
const maxLossBlob = 4 << 20

// lossRetry is how long a chart that could not be drawn is not fetched
// again: any visitor can ask for any lease's chart, and each miss would
// otherwise make the explorer download from the lease's provider.
const lossRetry = time.Minute

// lossCharts caches drawn charts by lease (a lease's results never
// change) and recent failures; one fetch runs at a time.
type lossCharts struct {
	sync.Mutex
	svg    map[uint64][]byte
	failed map[uint64]lossFailure
	fetch  sync.Mutex
}

type lossFailure struct {
	at  time.Time
	err error
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
	cached := func() ([]byte, error, bool) {
		s.losses.Lock()
		defer s.losses.Unlock()
		if svg, ok := s.losses.svg[id]; ok {
			return svg, nil, true
		}
		if f, ok := s.losses.failed[id]; ok && time.Since(f.at) < lossRetry {
			return nil, f.err, true
		}
		return nil, nil, false
	}
	if svg, err, ok := cached(); ok {
		return svg, err
	}
	s.losses.fetch.Lock()
	defer s.losses.fetch.Unlock()
	if svg, err, ok := cached(); ok { // drawn or refused while this request waited
		return svg, err
	}
	svg, err := s.drawLoss(ctx, id)
	s.losses.Lock()
	defer s.losses.Unlock()
	if err != nil {
		var he httpError
		if !errors.As(err, &he) || he.status == http.StatusNotFound || he.status == http.StatusBadGateway {
			if s.losses.failed == nil || len(s.losses.failed) >= maxLossCharts {
				s.losses.failed = map[uint64]lossFailure{}
			}
			s.losses.failed[id] = lossFailure{time.Now(), err}
		}
		return nil, err
	}
	if s.losses.svg == nil || len(s.losses.svg) >= maxLossCharts {
		s.losses.svg = map[uint64][]byte{}
	}
	s.losses.svg[id] = svg
	return svg, nil
}

// drawLoss fetches and draws a lease's loss chart.
func (s *Server) drawLoss(ctx context.Context, id uint64) ([]byte, error) {
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
	return lg.Chart(fmt.Sprintf("Training loss, lease %d (order %d); preset %s, %d steps, seed %d (checked against the chain)", id, l.OrderID, lg.Preset, lg.Steps, lg.Seed)), nil
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
