package validator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	chainjobs "github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
)

// Job audit faults.
const (
	JobFaultWrongState = "wrong_state" // re-execution reached another state than the committed one
	JobFaultUnserved   = "unserved"    // the pre-state was neither served nor recomputable under the caps
	JobFaultTooLong    = "too_long"    // the checkpoint's interval is over the re-execution cap
)

// JobOptions bound what the job verifier re-executes.
type JobOptions struct {
	// BlobDir keeps the modules and inputs it fetched ("": a temp dir,
	// removed by Close).
	BlobDir string
	// MaxSteps caps the steps re-executed for one audit, one bisection
	// move, or the recomputation of a state a party did not serve
	// (0: 1<<20).
	MaxSteps uint64
	// MaxGas caps the gas limit of an order whose states the verifier
	// recomputes from step 0 when no party serves them (0: 1<<36).
	MaxGas uint64
	// Interpreter runs wazero's interpreter (same results, slower).
	Interpreter bool
	// CacheDir keeps compiled modules on disk (engine/wasm Options.CacheDir;
	// "": compile in memory each time the process starts).
	CacheDir string
	// HTTP fetches blobs and states (nil: a client with a 60 s timeout).
	HTTP *http.Client
}

// JobFinding is the audit of one sampled checkpoint.
type JobFinding struct {
	Epoch    uint64 `json:"epoch"`
	Provider string `json:"provider"`
	Lease    uint64 `json:"lease"`
	Index    uint64 `json:"index"`
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	Step     uint64 `json:"step"` // the step the chain drew (inside From..To, all re-executed)
	OK       bool   `json:"ok"`
	Fault    string `json:"fault,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// PreSource says where the pre-state came from: "initial", "provider",
	// "recomputed".
	PreSource  string `json:"pre_source,omitempty"`
	Challenged bool   `json:"challenged,omitempty"`
}

// JobVerifier is the validator's side of compute jobs: it audits the
// checkpoints each epoch's seed samples, challenges the wrong ones and plays
// the challenger in the bisection, and referees every dispute that reached
// one step by replaying that step.
type JobVerifier struct {
	chain  *client.Client
	signer *client.Signer // nil: audit only, send nothing
	log    *slog.Logger
	opt    JobOptions
	eng    *wasm.Engine
	blobs  *blobstore.Store
	tmp    string
	m      *jobMetrics
	fees   atomic.Uint64

	mu       sync.Mutex
	next     uint64 // the next epoch to audit; 0 with !started: from the latest
	started  bool
	mods     map[blob.ID]*wasm.Module
	states   map[[32]byte]*wasm.State // states this verifier trusts, by hash (its own computations, checked fetches)
	voted    map[uint64]bool          // disputes voted on
	replicas map[[2]uint64]bool       // (lease, index) audited for a replica mismatch
	moved    map[uint64]uint32        // disputes picked in, at their move count
	findings []JobFinding
}

type jobMetrics struct {
	audits, mismatches, unverified, challenges, picks, votes prometheus.Counter
	steps                                                    prometheus.Counter
}

// NewJobVerifier starts a verifier; signer nil only audits. reg may be nil.
func NewJobVerifier(ctx context.Context, chain *client.Client, signer *client.Signer, opt JobOptions, reg prometheus.Registerer, log *slog.Logger) (*JobVerifier, error) {
	if opt.MaxSteps == 0 {
		opt.MaxSteps = 1 << 20
	}
	if opt.MaxGas == 0 {
		opt.MaxGas = 1 << 36
	}
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &JobVerifier{chain: chain, signer: signer, log: log, opt: opt,
		mods: map[blob.ID]*wasm.Module{}, states: map[[32]byte]*wasm.State{}, voted: map[uint64]bool{}, replicas: map[[2]uint64]bool{}, moved: map[uint64]uint32{}}
	dir := opt.BlobDir
	if dir == "" {
		d, err := os.MkdirTemp("", "agora-validator-blobs-")
		if err != nil {
			return nil, fmt.Errorf("job verifier: blob dir: %w", err)
		}
		dir, v.tmp = d, d
	}
	var err error
	if v.blobs, err = blobstore.Open(dir); err != nil {
		return nil, fmt.Errorf("job verifier: %w", err)
	}
	if v.eng, err = wasm.NewEngine(ctx, wasm.Options{Interpreter: opt.Interpreter, CacheDir: opt.CacheDir}); err != nil {
		return nil, fmt.Errorf("job verifier: %w", err)
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_validator_jobs_" + name, Help: help})
	}
	v.m = &jobMetrics{
		audits:     c("checkpoints_audited_total", "Sampled job checkpoints re-executed."),
		mismatches: c("mismatches_total", "Sampled job checkpoints whose re-execution reached another state."),
		unverified: c("unverifiable_total", "Sampled job checkpoints that could not be re-executed (state not served, over the caps)."),
		challenges: c("disputes_opened_total", "Job checkpoints challenged on chain."),
		picks:      c("picks_total", "Bisection picks sent as challenger."),
		votes:      c("votes_total", "Referee votes sent on one-step disputes."),
		steps:      c("steps_executed_total", "Job steps re-executed."),
	}
	if reg != nil {
		reg.MustRegister(v.m.audits, v.m.mismatches, v.m.unverified, v.m.challenges, v.m.picks, v.m.votes, v.m.steps)
	}
	return v, nil
}

// Close releases the engine and a temp blob dir.
func (v *JobVerifier) Close(ctx context.Context) error {
	err := v.eng.Close(ctx)
	if v.tmp != "" {
		os.RemoveAll(v.tmp)
	}
	return err
}

// Findings returns the most recent audit findings, newest last.
func (v *JobVerifier) Findings() []JobFinding {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]JobFinding(nil), v.findings...)
}

// Step audits every epoch whose seed appeared since the last call, then
// moves in the disputes it is the challenger of and votes on those that
// reached one step. Errors are logged; the next Step retries.
func (v *JobVerifier) Step(ctx context.Context) {
	if !v.started {
		var latest api.EpochView
		if err := v.chain.Query(ctx, api.LatestEpochPath, 0, &latest); err != nil {
			return
		}
		v.next, v.started = latest.Number, true
	}
	for ctx.Err() == nil {
		fs, err := v.AuditEpoch(ctx, v.next)
		if client.IsNotFound(err) {
			break // the epoch has no seed yet
		}
		if err != nil {
			v.log.Warn("validator: job audit", "epoch", v.next, "err", err)
			break
		}
		v.next++
		bad := 0
		for _, f := range fs {
			if !f.OK {
				bad++
			}
		}
		level := slog.LevelInfo
		switch {
		case bad > 0:
			level = slog.LevelWarn
		case len(fs) == 0:
			level = slog.LevelDebug
		}
		v.log.Log(ctx, level, "job checkpoints audited", "epoch", v.next-1, "checked", len(fs), "failed", bad)
	}
	if err := v.Replicas(ctx); err != nil && ctx.Err() == nil {
		v.log.Warn("validator: job replicas", "err", err)
	}
	if err := v.Disputes(ctx); err != nil && ctx.Err() == nil {
		v.log.Warn("validator: job disputes", "err", err)
	}
}

// AuditEpoch re-executes the checkpoints the chain samples for epoch and
// challenges (with a signer) those whose committed state is wrong. The
// error is client.IsNotFound while the epoch has no seed.
func (v *JobVerifier) AuditEpoch(ctx context.Context, epoch uint64) ([]JobFinding, error) {
	sample, err := v.chain.JobSample(ctx, epoch)
	if err != nil {
		return nil, err
	}
	var out []JobFinding
	for _, s := range sample {
		if s.DatasetID != 0 && !v.auditsDataset(ctx, s.DatasetID) {
			v.log.Debug("job checkpoint skipped: a dataset this validator does not audit", "lease", s.LeaseID, "index", s.Index)
			continue
		}
		f := v.AuditCheckpoint(ctx, s)
		f.Epoch = epoch
		out = append(out, f)
		v.mu.Lock()
		v.findings = append(v.findings, f)
		if len(v.findings) > 1000 {
			v.findings = v.findings[len(v.findings)-1000:]
		}
		v.mu.Unlock()
	}
	return out, nil
}

// AuditCheckpoint re-executes one sampled checkpoint: from the state at the
// previous checkpoint (served by the provider and checked against that
// checkpoint's hash; the initial state for the first) through every step
// to the checkpoint, comparing the state hash reached with the committed
// one. The executor serves states at its checkpoints only, so the drawn
// step is checked by re-executing its whole interval (bounded by MaxSteps).
func (v *JobVerifier) AuditCheckpoint(ctx context.Context, s api.JobSampleView) JobFinding {
	f := JobFinding{Provider: s.Provider.String(), Lease: s.LeaseID, Index: s.Index, From: s.From, To: s.To, Step: s.Step}
	v.m.audits.Inc()
	fail := func(fault, format string, args ...any) JobFinding {
		f.Fault, f.Reason = fault, fmt.Sprintf(format, args...)
		if fault == JobFaultWrongState {
			v.m.mismatches.Inc()
		} else {
			v.m.unverified.Inc()
		}
		v.log.Warn("job checkpoint audit", "lease", s.LeaseID, "index", s.Index, "fault", fault, "reason", f.Reason)
		return f
	}
	if s.To-s.From > v.opt.MaxSteps {
		return fail(JobFaultTooLong, "checkpoint %d of lease %d spans %d steps, over the cap of %d", s.Index, s.LeaseID, s.To-s.From, v.opt.MaxSteps)
	}
	cps, err := v.chain.JobCheckpoints(ctx, s.LeaseID)
	if err != nil || uint64(len(cps)) < s.Index || s.Index == 0 {
		return fail(JobFaultUnserved, "lease %d's checkpoints: %v (%d of them)", s.LeaseID, err, len(cps))
	}
	cp := cps[s.Index-1]
	var prev []byte
	if s.Index > 1 {
		prev = cps[s.Index-2].StateHash
	}
	var got [32]byte // a job that fails before its first step ends in the zero state
	r, err := v.load(ctx, s.LeaseID)
	if err == nil {
		var pre *wasm.State
		pre, f.PreSource, err = v.stateAt(ctx, r, s.From, prev, r.endpoint)
		if err == nil {
			got, _, err = v.advance(ctx, r, pre, s.To, nil)
		}
	}
	switch {
	case err != nil && s.From == 0 && failsBeforeStep1(err):
		f.PreSource = "failed: " + err.Error()
		if s.To != 1 {
			got = [32]byte{1} // it has no state after step 1: any claim of more steps is wrong
		}
	case err != nil:
		return fail(JobFaultUnserved, "lease %d steps %d..%d: %v", s.LeaseID, s.From, s.To, err)
	}
	if bytes.Equal(got[:], cp.StateHash) {
		f.OK = true
		return f
	}
	f = fail(JobFaultWrongState, "lease %d checkpoint %d: steps %d..%d re-executed reach state %x, the provider committed %x", s.LeaseID, s.Index, s.From, s.To, got[:8], []byte(cp.StateHash)[:min(8, len(cp.StateHash))])
	if v.signer == nil {
		return f
	}
	l, err := v.chain.JobLease(ctx, s.LeaseID)
	if err != nil || l.OpenDispute != 0 || l.CollateralReleased {
		f.Reason += "; not challenged (lease under dispute or out of its challenge window)"
		return f
	}
	if _, err := v.send(ctx, &types.MsgChallengeCheckpoint{LeaseId: s.LeaseID, Index: s.Index}); err != nil {
		f.Reason += "; challenge: " + err.Error()
		return f
	}
	f.Challenged = true
	v.m.challenges.Inc()
	v.log.Warn("job checkpoint challenged", "lease", s.LeaseID, "index", s.Index, "provider", f.Provider)
	return f
}

// Replicas audits, once, the first checkpoint on which an order's replicas
// disagree (the chain records its index as the order's mismatch index), in
// every lease of the order: at most one of two different states is right,
// so a replicated order needs no sampling luck to catch a wrong provider.
func (v *JobVerifier) Replicas(ctx context.Context) error {
	var errs []error
	for _, status := range []string{"running", "done"} {
		orders, err := v.chain.JobOrdersByStatus(ctx, status)
		if err != nil {
			return err
		}
		for _, o := range orders {
			if o.MismatchIndex == 0 {
				continue
			}
			for _, id := range o.LeaseIDs {
				k := [2]uint64{id, o.MismatchIndex}
				if v.replicas[k] {
					continue
				}
				cps, err := v.chain.JobCheckpoints(ctx, id)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if uint64(len(cps)) < o.MismatchIndex {
					continue // this replica has not got there yet
				}
				l, err := v.chain.JobLease(ctx, id)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				s := api.JobSampleView{Provider: l.Provider, LeaseID: id, Index: o.MismatchIndex, To: cps[o.MismatchIndex-1].Steps}
				if o.MismatchIndex > 1 {
					s.From = cps[o.MismatchIndex-2].Steps
				}
				s.Step = s.To
				f := v.AuditCheckpoint(ctx, s)
				if f.Fault == JobFaultUnserved {
					errs = append(errs, errors.New(f.Reason))
					continue // retry at the next step
				}
				v.replicas[k] = true
				v.mu.Lock()
				v.findings = append(v.findings, f)
				v.mu.Unlock()
				v.log.Log(ctx, map[bool]slog.Level{true: slog.LevelInfo, false: slog.LevelWarn}[f.OK], "job replica mismatch audited",
					"order", o.ID, "lease", id, "index", o.MismatchIndex, "ok", f.OK, "challenged", f.Challenged)
			}
		}
	}
	return errors.Join(errs...)
}

// Disputes moves in every open dispute this verifier is the challenger of
// (a pick, within the move window) and votes once on every dispute that
// reached one step and it is not a party to.
func (v *JobVerifier) Disputes(ctx context.Context) error {
	ds, err := v.chain.JobOpenDisputes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range ds {
		switch {
		case d.Phase == "pick" && v.signer != nil && bytes.Equal(d.Challenger, v.signer.Address()):
			if m, ok := v.moved[d.ID]; ok && m == d.Moves {
				continue
			}
			if err := v.pick(ctx, d); err != nil {
				errs = append(errs, fmt.Errorf("dispute %d pick: %w", d.ID, err))
			}
		case d.Phase == "vote" && v.signer != nil && !v.voted[d.ID] &&
			!bytes.Equal(d.Challenger, v.signer.Address()) && !bytes.Equal(d.Defender, v.signer.Address()):
			if v.skipLease(ctx, d.LeaseID) {
				v.voted[d.ID] = true // only the dataset's auditors referee it
				continue
			}
			if err := v.vote(ctx, d); err != nil {
				errs = append(errs, fmt.Errorf("dispute %d vote: %w", d.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// pick sends the challenger's move: the part choosePart finds.
func (v *JobVerifier) pick(ctx context.Context, d api.JobDisputeView) error {
	r, err := v.load(ctx, d.LeaseID)
	if err != nil {
		return err
	}
	part, err := v.choosePart(ctx, r, d)
	if err != nil {
		return err
	}
	if _, err := v.send(ctx, &types.MsgPickInterval{DisputeId: d.ID, Part: part}); err != nil {
		return err
	}
	v.moved[d.ID] = d.Moves
	v.m.picks.Inc()
	v.log.Info("job dispute: picked", "dispute", d.ID, "part", part, "of", len(d.Hashes)+1, "lo", d.Lo, "hi", d.Hi)
	return nil
}

// choosePart recomputes the verifier's own states at the defender's posted
// boundaries (from the agreed state at lo) and returns the first part
// whose end it disagrees with; the last part when it agrees with every
// inner boundary (it disagrees with hi: that is the dispute).
func (v *JobVerifier) choosePart(ctx context.Context, r *jobRun, d api.JobDisputeView) (uint32, error) {
	if d.Hi-d.Lo > v.opt.MaxSteps {
		return 0, fmt.Errorf("interval %d..%d is over the %d-step cap", d.Lo, d.Hi, v.opt.MaxSteps)
	}
	pre, _, err := v.stateAt(ctx, r, d.Lo, d.LoHash, r.endpoint)
	if err != nil {
		return 0, err
	}
	n := uint64(len(d.Hashes)) + 1
	cd := &types.JobDispute{Lo: d.Lo, Hi: d.Hi}
	part := n - 1
	var stops []uint64
	for j := uint64(1); j < n; j++ {
		stops = append(stops, chainjobs.Boundary(cd, j, n))
	}
	if len(stops) == 0 {
		return 0, nil
	}
	hashes, states, _, err := v.run(ctx, r, pre, stops[len(stops)-1], stops, true)
	if err != nil {
		return 0, err
	}
	for j := range stops {
		if !bytes.Equal(hashes[j][:], d.Hashes[j]) {
			part = uint64(j)
			break
		}
	}
	// The picked part starts at a state both sides agree on: keep it for
	// the next round (and the vote).
	if part > 0 && hashes[part-1] != ([32]byte{}) {
		v.keep(states[part-1], hashes[part-1])
	}
	return uint32(part), nil
}

// vote replays the dispute's single step from the agreed pre-state and
// votes the post-state's hash. The pre-state comes from the defender
// (checked against lo_hash), else from the challenger when it is a
// provider serving the lease's job (a replica), else by recomputation
// under the caps.
func (v *JobVerifier) vote(ctx context.Context, d api.JobDisputeView) error {
	r, err := v.load(ctx, d.LeaseID)
	var re *refusedError
	if errors.As(err, &re) && d.Lo == 0 {
		// The module is refused: step 1 fails, its post-state is zero.
		return v.sendVote(ctx, d, &wasm.StepResult{}, "refused module")
	}
	if err != nil {
		return err
	}
	eps := []string{r.endpoint}
	if p, err := v.chain.Provider(ctx, d.Challenger); err == nil && p.Endpoint != "" {
		eps = append(eps, p.Endpoint)
	}
	sr, src, err := v.replay(ctx, r, d, eps...)
	if err != nil {
		return err
	}
	return v.sendVote(ctx, d, sr, src)
}

func (v *JobVerifier) sendVote(ctx context.Context, d api.JobDisputeView, sr *wasm.StepResult, src string) error {
	if _, err := v.send(ctx, &types.MsgVoteStep{DisputeId: d.ID, PostStateHash: sr.Post[:]}); err != nil {
		// A refusal that will not change (a vote cast before a restart,
		// a key that is not a bonded validator) is not retried.
		if msg := err.Error(); strings.Contains(msg, "already voted") || strings.Contains(msg, "only bonded validators") {
			v.voted[d.ID] = true
		}
		return err
	}
	v.voted[d.ID] = true
	v.m.votes.Inc()
	v.log.Info("job dispute: voted", "dispute", d.ID, "step", d.Hi, "post", fmt.Sprintf("%x", sr.Post[:8]),
		"agrees_with_defender", bytes.Equal(sr.Post[:], d.HiHash), "pre_from", src)
	return nil
}

// replay re-executes a one-step dispute's step from the agreed state at lo,
// fetched from the first of endpoints that serves it with lo_hash (or
// recomputed under the caps).
func (v *JobVerifier) replay(ctx context.Context, r *jobRun, d api.JobDisputeView, endpoints ...string) (*wasm.StepResult, string, error) {
	if d.Hi != d.Lo+1 {
		return nil, "", fmt.Errorf("dispute %d spans steps %d..%d, not one step", d.ID, d.Lo, d.Hi)
	}
	pre, src, err := v.stateAt(ctx, r, d.Lo, d.LoHash, endpoints...)
	if err != nil {
		var f *wasm.Failure
		if d.Lo == 0 && errors.As(err, &f) {
			return failedStep(f), "failed", nil
		}
		return nil, "", err
	}
	sr, err := r.mod.ReplayStep(ctx, r.job, pre)
	if err != nil {
		return nil, "", fmt.Errorf("replay step %d of lease %d: %w", d.Hi, r.lease.ID, err)
	}
	v.m.steps.Inc()
	return sr, src, nil
}

// send signs and sends msg, counting the fees paid.
func (v *JobVerifier) send(ctx context.Context, msg any) (*client.TxResult, error) {
	res, err := v.signer.Send(ctx, msg)
	if res != nil {
		v.fees.Add(res.Fee)
	}
	return res, err
}

// FeesPaid is the total of the fees of the txs the verifier sent.
func (v *JobVerifier) FeesPaid() uint64 { return v.fees.Load() }

// failedStep is a step that failed: its post-state is zero.
func failedStep(f *wasm.Failure) *wasm.StepResult {
	return &wasm.StepResult{Failure: f, GasUsed: f.GasUsed}
}

// refusedError is a module the engine refuses: the job fails
// deterministically before its first step.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// failsBeforeStep1 reports whether err says the job fails before its
// first step (its module refused, or its initialisation failed): then
// the state after step 1 is the failed state, 32 zero bytes, which is
// what an executor commits (protocol/jobs FailedState) and what a referee
// votes.
func failsBeforeStep1(err error) bool {
	var re *refusedError
	var f *wasm.Failure
	return errors.As(err, &re) || errors.As(err, &f)
}

// jobRun is a lease's job, ready to run.
type jobRun struct {
	lease    api.JobLeaseView
	order    api.JobOrderView
	mod      *wasm.Module
	job      wasm.Job
	endpoint string // the lease's provider's
}

// load reads a lease's order, fetches its module and inputs (checked against
// their blob IDs) from the lease's provider into the local blob store, and
// compiles the module.
func (v *JobVerifier) load(ctx context.Context, lease uint64) (*jobRun, error) {
	l, err := v.chain.JobLease(ctx, lease)
	if err != nil {
		return nil, fmt.Errorf("lease %d: %w", lease, err)
	}
	o, err := v.chain.JobOrder(ctx, l.OrderID)
	if err != nil {
		return nil, fmt.Errorf("order %d: %w", l.OrderID, err)
	}
	chainID, err := v.chain.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	spec, err := jobs.SpecOf(chainID, o)
	if err != nil {
		return nil, err
	}
	d, err := v.datasetAudit(ctx, o)
	if err != nil {
		return nil, err
	}
	p, err := v.chain.Provider(ctx, l.Provider)
	if err != nil {
		return nil, fmt.Errorf("lease %d's provider %s: %w", lease, l.Provider, err)
	}
	r := &jobRun{lease: l, order: o, endpoint: strings.TrimRight(p.Endpoint, "/")}
	get := func(id blob.ID) ([]byte, error) {
		if !v.blobs.Has(id) {
			bc := &blobstore.Client{HTTP: v.opt.HTTP, Base: r.endpoint}
			if err := bc.FetchInto(ctx, v.blobs, id, nil); err != nil {
				return nil, fmt.Errorf("fetch blob %s of order %d from %s: %w", id, o.ID, r.endpoint, err)
			}
		}
		return v.blobs.Get(id)
	}
	v.mu.Lock()
	mod := v.mods[spec.Module]
	v.mu.Unlock()
	if mod == nil {
		bin, err := get(spec.Module)
		if err != nil {
			return nil, err
		}
		if mod, err = v.eng.Compile(ctx, bin); err != nil {
			return nil, &refusedError{fmt.Errorf("order %d's module: %w", o.ID, err)}
		}
		v.mu.Lock()
		v.mods[spec.Module] = mod
		v.mu.Unlock()
	}
	r.mod = mod
	r.job = wasm.Job{Args: spec.Args, Seed: spec.Seed, Gas: spec.Gas, MemoryPages: spec.MemoryPages, CheckpointEvery: spec.CheckpointEvery}
	for _, in := range spec.Inputs {
		data, err := get(in.ID)
		if err != nil {
			return nil, err
		}
		r.job.Inputs = append(r.job.Inputs, wasm.Blob{Name: in.Name, Data: data})
	}
	if o.DatasetID != 0 {
		if r.job.Data, err = v.loadData(ctx, d); err != nil {
			return nil, err
		}
		if r.job.Data == nil {
			r.job.Data = []wasm.Blob{}
		}
		r.job.OutputCap = o.OutputCap
	}
	return r, nil
}

// stateAt returns the job's state after step steps whose hash is want (nil:
// step 0, the initial state, which no checkpoint commits): one this
// verifier computed or checked before, else the first endpoint's that
// serves it with that hash, else recomputed from the start when the job is
// within the caps. source says which.
func (v *JobVerifier) stateAt(ctx context.Context, r *jobRun, step uint64, want []byte, endpoints ...string) (*wasm.State, string, error) {
	if step == 0 && len(want) == 0 {
		in, err := r.mod.Start(ctx, r.job)
		if err != nil {
			return nil, "", fmt.Errorf("initial state of order %d: %w", r.order.ID, err)
		}
		defer in.Close(ctx)
		return in.Snapshot(), "initial", nil
	}
	var h [32]byte
	if len(want) != len(h) {
		return nil, "", fmt.Errorf("state hash at step %d is %d bytes", step, len(want))
	}
	copy(h[:], want)
	v.mu.Lock()
	s := v.states[h]
	v.mu.Unlock()
	if s != nil && s.Steps == step {
		return s, "cache", nil
	}
	var errs []error
	for _, ep := range endpoints {
		s, err := v.fetchState(ctx, ep, r, step, h)
		if err == nil {
			v.keep(s, h)
			return s, "provider", nil
		}
		errs = append(errs, err)
	}
	// No party served it (the chain has no "refused opening" for jobs):
	// recompute from the start when that is cheap enough.
	if step > v.opt.MaxSteps || r.order.GasLimit > v.opt.MaxGas {
		return nil, "", fmt.Errorf("state of lease %d at step %d: not served (%w) and over the recomputation caps (%d steps, gas limit %d)",
			r.lease.ID, step, errors.Join(errs...), v.opt.MaxSteps, v.opt.MaxGas)
	}
	init, _, err := v.stateAt(ctx, r, 0, nil)
	if err != nil {
		return nil, "", err
	}
	_, snaps, got, err := v.run(ctx, r, init, step, []uint64{step}, true)
	if err != nil {
		return nil, "", err
	}
	if got != h {
		return nil, "", fmt.Errorf("state of lease %d at step %d: not served (%w), and recomputed it hashes to %x, not the agreed %x",
			r.lease.ID, step, errors.Join(errs...), got[:8], h[:8])
	}
	v.keep(snaps[0], h)
	return snaps[0], "recomputed", nil
}

// keep caches a trusted state. The cache holds a few states and at most
// maxCachedState bytes of memory (a job's memory may be 4 GiB): it serves
// the next bisection round and the vote, not history.
func (v *JobVerifier) keep(s *wasm.State, h [32]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	size := len(s.Memory)
	for _, o := range v.states {
		size += len(o.Memory)
	}
	if len(v.states) >= 16 || size > maxCachedState {
		clear(v.states)
	}
	if len(s.Memory) <= maxCachedState {
		v.states[h] = s
	}
}

const maxCachedState = 1 << 30

// fetchState GETs a lease's state at step from an executor and checks it
// hashes to want.
func (v *JobVerifier) fetchState(ctx context.Context, endpoint string, r *jobRun, step uint64, want [32]byte) (*wasm.State, error) {
	url := strings.TrimRight(endpoint, "/") + jobs.StatePath(r.lease.ID, step)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if err := v.authorize(ctx, r, req); err != nil {
		return nil, err
	}
	res, err := v.opt.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, res.Status, bytes.TrimSpace(msg))
	}
	pages := uint64(r.order.MemoryPages)
	if pages == 0 {
		pages = wasm.DefaultMemoryPages
	}
	limit := int64(pages*wasm.PageSize) + 2*wasm.MaxOutputBytes + 64<<20
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: state over %d bytes", url, limit)
	}
	s := new(wasm.State)
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if s.Steps != step {
		return nil, fmt.Errorf("GET %s: a state after %d steps, not %d", url, s.Steps, step)
	}
	if got := s.Hash(); got != want {
		return nil, fmt.Errorf("GET %s: the state hashes to %x, not the agreed %x", url, got[:8], want[:8])
	}
	return s, nil
}

// advance runs the job on from pre to step to (or its end, or its
// failure: the state hash after a failure is zero, as ReplayStep's) and
// returns the hash there and the hash at each of stops (ascending, within
// pre.Steps+1..to).
func (v *JobVerifier) advance(ctx context.Context, r *jobRun, pre *wasm.State, to uint64, stops []uint64) ([32]byte, [][32]byte, error) {
	hashes, _, h, err := v.run(ctx, r, pre, to, stops, false)
	return h, hashes, err
}

// run is advance that also returns, with snap, the states at stops.

func (v *JobVerifier) run(ctx context.Context, r *jobRun, pre *wasm.State, to uint64, stops []uint64, snap bool) ([][32]byte, []*wasm.State, [32]byte, error) {
	in, err := r.mod.Restore(ctx, r.job, pre)
	if err != nil {
		return nil, nil, [32]byte{}, err
	}
	defer in.Close(ctx)
	var hashes [][32]byte
	var states []*wasm.State
	failed, done := false, false
	record := func() {
		for len(stops) > 0 && (stops[0] <= in.Steps() || failed || done) {
			var h [32]byte
			if !failed {
				h = in.StateHash()
			}
			hashes = append(hashes, h)
			if snap {
				states = append(states, in.Snapshot())
			}
			stops = stops[1:]
		}
	}
	for in.Steps() < to && !failed && !done {
		more, err := in.Step(ctx)
		v.m.steps.Inc()
		var f *wasm.Failure
		switch {
		case errors.As(err, &f):
			failed = true
		case err != nil:
			return nil, nil, [32]byte{}, err
		case !more:
			done = true
		}
		record()
	}
	record()
	var h [32]byte
	if !failed {
		h = in.StateHash()
	}
	return hashes, states, h, nil
}
