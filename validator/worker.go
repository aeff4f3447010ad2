package validator

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/rewards"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
)

// Worker audits every epoch once its seed exists and, with a signer, reports
// the faults it finds on chain. It is the long-running form of `agora
// validator audit`.
type Worker struct {
	chain    *client.Client
	auditor  *Auditor
	signer   *client.Signer // nil: audit only, report nothing
	log      *slog.Logger
	interval time.Duration
	metrics  *workerMetrics
	jobs     *JobVerifier // nil: no job audits

	mu      sync.Mutex
	next    uint64 // the next epoch to audit
	results []EpochAudit

	// Run's goroutine only:
	recheck  map[uint64]api.EpochView // epochs to audit again after their opening deadline
	reported map[string]bool          // faults already reported (epoch/provider/index/fault)
	scored   map[uint64]bool          // epochs whose scores were sent
	disputed map[string]bool          // disputes already audited
}

// EpochAudit is the summary of one audited epoch.
type EpochAudit struct {
	Epoch    uint64    `json:"epoch"`
	Checked  int       `json:"checked"`  // sampled receipts checked
	Faults   int       `json:"faults"`   // of which faulty
	Reported int       `json:"reported"` // fault reports accepted on chain
	Findings []Finding `json:"findings"`
	Time     time.Time `json:"time"`
}

type workerMetrics struct {
	epochs   prometheus.Counter
	checked  prometheus.Counter
	faults   prometheus.Counter
	reported prometheus.Counter
}

// NewWorker returns a worker that audits with auditor and reports with
// signer (nil: audit only). reg may be nil.
func NewWorker(chain *client.Client, auditor *Auditor, signer *client.Signer, reg prometheus.Registerer, log *slog.Logger) *Worker {
	m := &workerMetrics{
		epochs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_validator_epochs_audited_total", Help: "Epochs audited."}),
		checked:  prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_validator_receipts_checked_total", Help: "Sampled receipts checked."}),
		faults:   prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_validator_faults_found_total", Help: "Sampled receipts found faulty."}),
		reported: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_validator_faults_reported_total", Help: "Fault reports accepted on chain."}),
	}
	if reg != nil {
		reg.MustRegister(m.epochs, m.checked, m.faults, m.reported)
	}
	return &Worker{chain: chain, auditor: auditor, signer: signer, log: log, interval: 2 * time.Second, metrics: m,
		recheck: map[uint64]api.EpochView{}, reported: map[string]bool{}, scored: map[uint64]bool{}, disputed: map[string]bool{}}
}

// WithJobs makes the worker also audit compute jobs' sampled checkpoints,
// play the challenger in the disputes it opens and referee one-step
// disputes, every step (JobVerifier.Step). It returns w.
func (w *Worker) WithJobs(v *JobVerifier) *Worker {
	w.jobs = v
	return w
}

// WithInterval sets how often the worker steps (default 2 s): a chain with
// short move windows needs its challenger and referees to look often. It
// returns w.
func (w *Worker) WithInterval(d time.Duration) *Worker {
	w.interval = d
	return w
}

// Recent returns the summaries of the epochs audited since start, newest first.
func (w *Worker) Recent() []EpochAudit {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]EpochAudit, len(w.results))
	for i, r := range w.results {
		out[len(w.results)-1-i] = r
	}
	return out
}

// Run audits epochs as their seeds appear until ctx ends. It starts with the
// latest ended epoch, so a restarted worker does not re-audit history.
func (w *Worker) Run(ctx context.Context) {
	var latest api.EpochView
	if err := w.chain.Query(ctx, api.LatestEpochPath, 0, &latest); err == nil {
		w.next = latest.Number
	}
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step runs the inference audits, then (with WithJobs) the job verifier's
// step: job audits, challenger moves and referee votes.
func (w *Worker) step(ctx context.Context) {
	w.stepInference(ctx)
	if w.jobs != nil && ctx.Err() == nil {
		w.jobs.Step(ctx)
	}
}

// stepInference audits every epoch from w.next whose seed exists, then
// re-audits the epochs whose openings could not be fetched once their
// opening deadline has passed.
func (w *Worker) stepInference(ctx context.Context) {
	st, err := w.chain.Status(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("validator: node status", "err", err)
		}
		return
	}
	h := st.SyncInfo.LatestBlockHeight
	for ctx.Err() == nil {
		var ep api.EpochView
		err := w.chain.Query(ctx, api.EpochPath(w.next), 0, &ep)
		if client.IsNotFound(err) || (err == nil && len(ep.Seed) == 0) {
			break // not ended, or its seed is not drawn yet
		}
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("validator: read epoch", "epoch", w.next, "err", err)
			}
			return
		}
		if !w.audit(ctx, ep, h) {
			return
		}
		w.next++
	}
	w.auditDisputes(ctx)
	for e, ep := range w.recheck {
		if h > ep.OpeningDeadline {
			if w.audit(ctx, ep, h) {
				delete(w.recheck, e)
			}
		}
	}
}

// audit audits epoch ep at height h and reports its faults. An opening
// that could not be fetched is a fault only once the opening deadline has
// passed (the provider may be briefly unreachable, and validators must
// agree on the fault to apply it), so before that the epoch is kept for a
// second audit. It returns false when the audit itself failed.
func (w *Worker) audit(ctx context.Context, ep api.EpochView, h int64) bool {
	fs, err := w.auditor.AuditEpoch(ctx, ep.Number)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("validator: audit", "epoch", ep.Number, "err", err)
		}
		return false
	}
	sum := EpochAudit{Epoch: ep.Number, Checked: len(fs), Findings: fs, Time: time.Now().UTC()}
	var report []Finding
	for _, f := range fs {
		if f.OK {
			continue
		}
		sum.Faults++
		w.log.Info("audit finding", "epoch", f.Epoch, "provider", f.Provider, "index", f.Index, "fault", f.Fault, "reason", f.Reason)
		if f.Report == nil {
			continue
		}
		if (f.Fault == FaultRefused || f.Fault == FaultMissing) && h <= ep.OpeningDeadline {
			w.recheck[ep.Number] = ep // decide after the deadline
			continue
		}
		k := fmt.Sprintf("%d/%s/%d/%d", f.Epoch, f.Provider, f.Index, f.Report.Fault)
		if w.reported[k] {
			continue
		}
		w.reported[k] = true
		report = append(report, f)
	}
	if w.signer != nil && len(report) > 0 {
		n, err := Report(ctx, w.signer, report)
		sum.Reported = n
		if err != nil {
			w.log.Warn("validator: report faults", "epoch", ep.Number, "err", err)
		}
	}
	if w.signer != nil && !w.scored[ep.Number] {
		w.scored[ep.Number] = true
		// A validator restarted after scoring finds its scores on chain.
		res, err := w.chain.QueryStore(ctx, rewards.ScoreKey(ep.Number, w.signer.Address()), 0, false)
		onChain := err == nil && len(res.Value) > 0
		if m := Scores(ep.Number, fs); m != nil && !onChain {
			if _, err := w.signer.Send(ctx, m); err != nil {
				w.log.Warn("validator: submit scores", "epoch", ep.Number, "err", err)
			}
		}
	}
	w.metrics.epochs.Inc()
	w.metrics.checked.Add(float64(sum.Checked))
	w.metrics.faults.Add(float64(sum.Faults))
	w.metrics.reported.Add(float64(sum.Reported))
	level := slog.LevelInfo
	switch {
	case sum.Faults > 0:
		level = slog.LevelWarn
	case sum.Checked == 0:
		level = slog.LevelDebug // nothing was committed: not worth a line per epoch
	}
	w.log.Log(ctx, level, "epoch audited", "epoch", ep.Number, "receipts_checked", sum.Checked, "faults", sum.Faults, "reported", sum.Reported)
	w.mu.Lock()
	w.results = append(w.results, sum)
	if len(w.results) > 100 {
		w.results = w.results[1:]
	}
	w.mu.Unlock()
	return true
}

// Handler serves the worker's recent audits (GET /v1/audits), /healthz and
// /metrics from gatherer.
func (w *Worker) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) { rw.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /v1/audits", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(w.Recent())
	})
	mux.HandleFunc("GET /v1/job-audits", func(rw http.ResponseWriter, r *http.Request) {
		fs := []JobFinding{}
		if w.jobs != nil {
			fs = append(fs, w.jobs.Findings()...)
		}
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(fs)
	})
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusNotFound)
		json.NewEncoder(rw).Encode(map[string]any{"error": map[string]any{"message": "unknown route " + r.Method + " " + r.URL.Path + "; try GET /v1/audits or GET /v1/job-audits", "code": 404}})
	})
	return mux
}

// Scores turns an epoch's findings into the validator's quality scores: for
// each provider, the share of its sampled receipts that passed (receipts the
// auditor could not re-execute do not count; a provider with none is not
// scored). Nil when there is nothing to score.
func Scores(epoch uint64, fs []Finding) *types.MsgSubmitScores {
	type tally struct{ ok, n uint64 }
	t := map[string]*tally{}
	for _, f := range fs {
		if f.Fault == Unverifiable {
			continue
		}
		x := t[f.Provider]
		if x == nil {
			x = &tally{}
			t[f.Provider] = x
		}
		x.n++
		if f.OK {
			x.ok++
		}
	}
	m := &types.MsgSubmitScores{Epoch: epoch}
	for prov, x := range t {
		a, err := types.ParseAddress(prov)
		if err != nil || x.n == 0 {
			continue
		}
		m.Scores = append(m.Scores, &types.ProviderScore{Provider: a, ScoreBps: uint32(10000 * x.ok / x.n)})
	}
	if len(m.Scores) == 0 {
		return nil
	}
	sort.Slice(m.Scores, func(i, j int) bool { return string(m.Scores[i].Provider) < string(m.Scores[j].Provider) })
	return m
}

// auditDisputes re-executes every receipt a client disputes on chain (once)
// and reports the fault it finds.
func (w *Worker) auditDisputes(ctx context.Context) {
	var ds []api.DisputeView
	if err := w.chain.Query(ctx, api.DisputesPath, 0, &ds); err != nil {
		return
	}
	for _, d := range ds {
		k := fmt.Sprintf("%d/%s/%d", d.Epoch, d.Provider, d.Index)
		if w.disputed[k] {
			continue
		}
		f, err := w.auditor.AuditReceipt(ctx, d.Epoch, d.Provider, d.Index)
		if err != nil {
			continue // try again at the next step
		}
		w.disputed[k] = true
		level := slog.LevelInfo
		if !f.OK {
			level = slog.LevelWarn
		}
		w.log.Log(ctx, level, "disputed receipt audited", "epoch", d.Epoch, "provider", d.Provider, "index", d.Index, "ok", f.OK, "fault", f.Fault, "reason", f.Reason)
		if f.OK || f.Report == nil || w.signer == nil {
			continue
		}
		rk := fmt.Sprintf("%d/%s/%d/%d", f.Epoch, f.Provider, f.Index, f.Report.Fault)
		if w.reported[rk] {
			continue
		}
		w.reported[rk] = true
		if _, err := Report(ctx, w.signer, []Finding{f}); err != nil {
			w.log.Warn("validator: report disputed fault", "epoch", d.Epoch, "index", d.Index, "err", err)
		}
	}
}
