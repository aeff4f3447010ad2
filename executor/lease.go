package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/protocol/blob"
	"github.com/agoranet/agora/protocol/jobs"
)

// lease is a lease this executor runs.
type lease struct {
	id     uint64
	order  api.JobOrderView
	cancel context.CancelFunc

	mu     sync.Mutex
	status jobs.LeaseStatus
}

func (l *lease) set(f func(s *jobs.LeaseStatus)) {
	l.mu.Lock()
	f(&l.status)
	l.mu.Unlock()
}

func (l *lease) snapshot() jobs.LeaseStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	s.Missing = append([]string(nil), s.Missing...)
	return s
}

func (l *lease) finished() bool {
	s := l.snapshot()
	return s.Phase == "done" || s.Phase == "failed" || s.Phase == "ended"
}

// end records that the chain ended the lease (cancelled, abandoned, a
// lost dispute, expired) and stops its job if it still runs.
func (l *lease) end(chainStatus string) {
	if chainStatus == "done" {
		return // our final checkpoint landed: the run is finishing by itself
	}
	l.set(func(s *jobs.LeaseStatus) {
		if s.Phase != "done" && s.Phase != "failed" {
			s.Phase = "ended"
			s.Error = "the chain ended the lease: " + chainStatus
		}
	})
	l.cancel()
}

// errEnded: the chain no longer takes this lease's checkpoints.
var errEnded = errors.New("lease ended on chain")

// startLease takes on a running lease: waits for its blobs and a slot, then
// runs it (from its last committed checkpoint).
func (e *Executor) startLease(ctx context.Context, lv api.JobLeaseView) {
	o, err := e.chain.JobOrder(ctx, lv.OrderID)
	if err != nil {
		e.log.Warn("lease's order", "lease", lv.ID, "err", err)
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	lz := &lease{id: lv.ID, order: o, cancel: cancel}
	lz.status = jobs.LeaseStatus{Lease: lv.ID, Order: o.ID, Phase: "waiting for blobs", Steps: lv.Steps, GasUsed: lv.GasUsed, Committed: lv.Checkpoints}
	e.mu.Lock()
	e.leases[lv.ID] = lz
	e.mu.Unlock()
	e.log.Info("lease won", "lease", lv.ID, "order", o.ID, "resume_at_step", lv.Steps)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		err := e.run(lctx, lz)
		switch {
		case err == nil:
		case lctx.Err() != nil || errors.Is(err, errEnded):
			e.log.Info("lease stopped", "lease", lz.id, "reason", err)
		default:
			e.log.Error("lease failed", "lease", lz.id, "err", err)
			lz.set(func(s *jobs.LeaseStatus) { s.Error = err.Error() })
		}
	}()
}

// blobIDs are the order's module and inputs.
func blobIDs(o api.JobOrderView) (blob.ID, []blob.ID) {
	var mod blob.ID
	copy(mod[:], o.ModuleHash)
	ins := make([]blob.ID, len(o.InputHashes))
	for i, h := range o.InputHashes {
		copy(ins[i][:], h)
	}
	return mod, ins
}

// run waits for the uploads and a slot, then executes the lease.
func (e *Executor) run(ctx context.Context, lz *lease) error {
	e.metrics.queued.Inc()
	queued := true
	defer func() {
		if queued {
			e.metrics.queued.Dec()
		}
	}()
	mod, ins := blobIDs(lz.order)
	for {
		var missing []string
		for _, id := range append([]blob.ID{mod}, ins...) {
			if !e.store.Has(id) {
				missing = append(missing, id.String())
			}
		}
		if lz.order.DatasetID != 0 {
			if why := e.datasetUnfit(ctx, lz.order); why != "" {
				missing = append(missing, why)
			}
		}
		lz.set(func(s *jobs.LeaseStatus) { s.Missing = missing })
		if len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.uploadSignal():
		case <-time.After(e.cfg.Tick):
		}
	}
	lz.set(func(s *jobs.LeaseStatus) { s.Phase = "queued" })
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-e.sem }()
	e.metrics.queued.Dec()
	queued = false
	e.metrics.running.Inc()
	defer e.metrics.running.Dec()
	lz.set(func(s *jobs.LeaseStatus) { s.Phase = "running" })
	return e.execute(ctx, lz)
}

// jobOf is the engine job an order describes (protocol/jobs SpecOf).
func (e *Executor) jobOf(ctx context.Context, o api.JobOrderView) (wasm.Job, error) {
	spec, err := jobs.SpecOf(e.chainID, o)
	if err != nil {
		return wasm.Job{}, err
	}
	job := wasm.Job{Args: spec.Args, Seed: spec.Seed, Gas: spec.Gas, MemoryPages: spec.MemoryPages, CheckpointEvery: spec.CheckpointEvery}
	for i, in := range spec.Inputs {
		data, err := e.store.Get(in.ID)
		if err != nil {
			return job, fmt.Errorf("input %d: %w", i, err)
		}
		job.Inputs = append(job.Inputs, wasm.Blob{Name: in.Name, Data: data})
	}
	if o.DatasetID != 0 {
		if job.Data, err = e.dataOf(ctx, o); err != nil {
			return job, err
		}
		if job.Data == nil {
			job.Data = []wasm.Blob{} // an empty dataset still mounts /data
		}
		job.OutputCap = o.OutputCap
	}
	return job, nil
}

// module compiles (once) the order's module; a refused module is the
// job's deterministic failure (a *compileError).
func (e *Executor) module(ctx context.Context, o api.JobOrderView) (*wasm.Module, error) {
	mod, _ := blobIDs(o)
	e.mu.Lock()
	m := e.modules[mod.String()]
	e.mu.Unlock()
	if m != nil {
		return m, nil
	}
	bin, err := e.store.Get(mod)
	if err != nil {
		return nil, err
	}
	m, err = e.engine.Compile(ctx, bin)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &compileError{err}
	}
	e.mu.Lock()
	if old := e.modules[mod.String()]; old != nil {
		m.Close(ctx)
		m = old
	} else {
		e.modules[mod.String()] = m
	}
	e.mu.Unlock()
	return m, nil
}

type compileError struct{ err error }

func (c *compileError) Error() string { return "module refused: " + c.err.Error() }

// tamper applies the test-only fault after step.
func (e *Executor) tamper(ctx context.Context, lease, step uint64, m *wasm.Module, job wasm.Job, in *wasm.Instance) (*wasm.Instance, error) {
	if e.cfg.Tamper == nil || !e.cfg.Tamper(lease, step) {
		return in, nil
	}
	s := in.Snapshot()
	if len(s.Memory) == 0 {
		return in, nil
	}
	s.Memory[len(s.Memory)-1] ^= 0xff
	in.Close(ctx)
	return m.Restore(ctx, job, s)
}

// otherData is the test-only OtherData fault's job: every input and data
// file with its bytes in reverse order (text stays text, other text).
func otherData(job wasm.Job) wasm.Job {
	flip := func(bs []wasm.Blob) []wasm.Blob {
		if bs == nil {
			return nil // no /data stays no /data
		}
		out := make([]wasm.Blob, len(bs))
		for i, b := range bs {
			d := make([]byte, len(b.Data))
			for j, c := range b.Data {
				d[len(d)-1-j] = c
			}
			out[i] = wasm.Blob{Name: b.Name, Data: d}
		}
		return out
	}
	job.Inputs, job.Data = flip(job.Inputs), flip(job.Data)
	return job
}

// execute runs the job from the lease's last committed checkpoint to its
// end, committing each checkpoint.
func (e *Executor) execute(ctx context.Context, lz *lease) error {
	lv, err := e.chain.JobLease(ctx, lz.id)
	if err != nil {
		return err
	}
	if lv.Status != "running" {
		return errEnded
	}
	o := lz.order
	job, err := e.jobOf(ctx, o)
	if err != nil {
		return err
	}
	if e.cfg.OtherData != nil && e.cfg.OtherData(lz.id) {
		job = otherData(job)
	}
	m, err := e.module(ctx, o)
	var ce *compileError
	if errors.As(err, &ce) {
		return e.commitFailure(ctx, lz, lv.Checkpoints+1, lv.Steps+1, lv.GasUsed, nil, err.Error())
	}
	if err != nil {
		return err
	}
	var in *wasm.Instance
	if lv.Steps > 0 {
		s, err := e.loadState(lz.id, lv.Steps)
		if err != nil {
			return fmt.Errorf("resume lease %d at step %d: %w", lz.id, lv.Steps, err)
		}
		if h := s.Hash(); !hashEq(h, lv.StateHash) {
			return fmt.Errorf("resume lease %d: the stored state at step %d hashes to %x, the chain holds %x", lz.id, lv.Steps, h, []byte(lv.StateHash))
		}
		if in, err = m.Restore(ctx, job, s); err != nil {
			return err
		}
		lz.set(func(st *jobs.LeaseStatus) { st.ResumedAt = lv.Steps })
		e.log.Info("lease resumed", "lease", lz.id, "step", lv.Steps, "checkpoint", lv.Checkpoints)
	} else {
		if e.cfg.OnStart != nil {
			e.cfg.OnStart(lz.id)
		}
		in, err = m.Start(ctx, job)
		var f *wasm.Failure
		if errors.As(err, &f) {
			return e.commitFailure(ctx, lz, 1, 1, min(f.GasUsed, o.GasLimit), nil, f.Error())
		}
		if err != nil {
			return err
		}
		if err := e.saveState(lz.id, in.Snapshot()); err != nil {
			return err
		}
	}
	defer func() { in.Close(context.Background()) }()
	index := lv.Checkpoints
	gas0 := in.GasUsed()
	defer func() { e.metrics.gas.Add(float64(in.GasUsed() - gas0)) }()

	// Checkpoints are committed in order by one goroutine while the job
	// runs on (each waits for its block): the state is on disk before its
	// checkpoint is queued, so a restart resumes from whatever prefix the
	// chain took. A commit that fails stops the run.
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	queue := make(chan *types.MsgCommitCheckpoint, 256)
	cerr := make(chan error, 1)
	go func() {
		var err error
		for m := range queue {
			if err == nil {
				if err = e.commit(cctx, lz, m); err != nil {
					ccancel()
				}
			}
		}
		cerr <- err
	}()
	closed := false
	finish := func(err error) error {
		if !closed {
			closed = true
			close(queue)
			if cerr := <-cerr; cerr != nil {
				return cerr
			}
		}
		return err
	}
	defer finish(nil)
	send := func(m *types.MsgCommitCheckpoint) error {
		select {
		case queue <- m:
			return nil
		case <-cctx.Done():
			return finish(cctx.Err())
		}
	}
	for {
		more, err := in.Step(cctx)
		var f *wasm.Failure
		if errors.As(err, &f) {
			msg, id, err := e.failureMsg(lz, index+1, f.Step+1, min(f.GasUsed, o.GasLimit), in.Outputs(), f.Error())
			if err != nil {
				return finish(err)
			}
			if err := send(msg); err != nil {
				return err
			}
			if err := finish(nil); err != nil {
				return err
			}
			lz.set(func(s *jobs.LeaseStatus) {
				s.Phase, s.Results, s.Error, s.Steps = "failed", id.String(), f.Error(), msg.Steps
			})
			e.log.Info("job failed", "lease", lz.id, "reason", f.Error(), "results", id)
			return nil
		}
		if err != nil {
			return finish(err)
		}
		steps := in.Steps()
		if in, err = e.tamper(cctx, lz.id, steps, m, job, in); err != nil {
			return finish(err)
		}
		lz.set(func(s *jobs.LeaseStatus) { s.Steps, s.GasUsed = steps, in.GasUsed() })
		if more && steps%o.CheckpointInterval != 0 {
			continue
		}
		st := in.Snapshot()
		if err := e.saveState(lz.id, st); err != nil {
			return finish(err)
		}
		index++
		hash := st.Hash()
		msg := &types.MsgCommitCheckpoint{LeaseId: lz.id, Index: index, Steps: steps, GasUsed: in.GasUsed(), StateHash: hash[:]}
		if !more {
			id, err := e.results(lz, in.Outputs(), "")
			if err != nil {
				return finish(err)
			}
			msg.Done, msg.ResultHash = true, id[:]
			if err := send(msg); err != nil {
				return err
			}
			if err := finish(nil); err != nil {
				return err
			}
			lz.set(func(s *jobs.LeaseStatus) { s.Phase, s.Results = "done", id.String() })
			e.log.Info("job done", "lease", lz.id, "steps", steps, "gas", in.GasUsed(), "results", id)
			return nil
		}
		if err := send(msg); err != nil {
			return err
		}
	}
}

// failureMsg stores a failed job's results (protocol/jobs FailureOutput)
// and returns its final checkpoint.
func (e *Executor) failureMsg(lz *lease, index, steps, gas uint64, outs []wasm.Blob, reason string) (*types.MsgCommitCheckpoint, blob.ID, error) {
	id, err := e.results(lz, outs, reason)
	if err != nil {
		return nil, blob.ID{}, err
	}
	return &types.MsgCommitCheckpoint{LeaseId: lz.id, Index: index, Steps: steps, GasUsed: gas, StateHash: jobs.FailedState[:], Done: true, ResultHash: id[:]}, id, nil
}

// commitFailure commits a failed job's final checkpoint (protocol/jobs
// FailureOutput) when nothing else is queued.
func (e *Executor) commitFailure(ctx context.Context, lz *lease, index, steps, gas uint64, outs []wasm.Blob, reason string) error {
	msg, id, err := e.failureMsg(lz, index, steps, gas, outs, reason)
	if err != nil {
		return err
	}
	if err := e.commit(ctx, lz, msg); err != nil {
		return err
	}
	lz.set(func(s *jobs.LeaseStatus) { s.Phase, s.Results, s.Error, s.Steps = "failed", id.String(), reason, steps })
	e.log.Info("job failed", "lease", lz.id, "reason", reason, "results", id)
	return nil
}

// results keeps a finished job's results and returns the result list's ID
// (the final checkpoint's result hash): public blobs, or for a
// compute-to-data run, sealed to the buyer (sealResults).
func (e *Executor) results(lz *lease, outs []wasm.Blob, failure string) (blob.ID, error) {
	if lz.order.DatasetID != 0 {
		return e.sealResults(lz, outs, failure)
	}
	res, err := e.storeResults(outs, failure)
	if err != nil {
		return blob.ID{}, err
	}
	return res.ID(), nil
}

// storeResults stores each output and the result list as blobs.
func (e *Executor) storeResults(outs []wasm.Blob, failure string) (*jobs.Results, error) {
	if failure != "" {
		outs = append(append([]wasm.Blob(nil), outs...), wasm.Blob{Name: jobs.FailureOutput, Data: []byte(failure)})
	}
	res := &jobs.Results{}
	for _, b := range outs {
		id, err := e.store.PutBytes(b.Data)
		if err != nil {
			return nil, fmt.Errorf("store result %s: %w", b.Name, err)
		}
		res.Outputs = append(res.Outputs, jobs.Output{Name: b.Name, ID: id, Size: uint64(len(b.Data))})
	}
	id, err := e.store.PutBytes(res.Encode())
	if err != nil {
		return nil, fmt.Errorf("store result list: %w", err)
	}
	if id != res.ID() {
		return nil, fmt.Errorf("result list stored as %s, not %s", id, res.ID())
	}
	return res, nil
}

// commit sends a checkpoint and waits for its block. A checkpoint the
// chain already holds (a previous run's tx landing late) counts as sent;
// while a dispute holds the lease, it waits.
func (e *Executor) commit(ctx context.Context, lz *lease, m *types.MsgCommitCheckpoint) error {
	for {
		_, err := e.signer.Send(ctx, m)
		if err == nil {
			e.metrics.checkpoints.Inc()
			lz.set(func(s *jobs.LeaseStatus) { s.Committed = m.Index })
			e.log.Debug("checkpoint committed", "lease", m.LeaseId, "index", m.Index, "steps", m.Steps, "gas", m.GasUsed, "done", m.Done)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lv, lerr := e.chain.JobLease(ctx, m.LeaseId)
		switch {
		case lerr != nil:
		case lv.Checkpoints >= m.Index:
			lz.set(func(s *jobs.LeaseStatus) { s.Committed = lv.Checkpoints })
			return nil
		case lv.Status != "running":
			return errEnded
		case lv.OpenDispute != 0:
			err = fmt.Errorf("waiting: dispute %d holds the lease", lv.OpenDispute)
		}
		if strings.Contains(err.Error(), "deadline") {
			return fmt.Errorf("checkpoint %d: %w", m.Index, err)
		}
		e.log.Warn("checkpoint not committed; retrying", "lease", m.LeaseId, "index", m.Index, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.cfg.Tick):
		}
	}
}

func hashEq(h [32]byte, b []byte) bool { return len(b) == 32 && string(h[:]) == string(b) }

// saveState writes a state to the lease's directory (atomically: a crash
// leaves the previous states and no torn file).
func (e *Executor) saveState(lease uint64, s *wasm.State) error {
	if err := os.MkdirAll(e.leaseDir(lease), 0o700); err != nil {
		return err
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	p := e.statePath(lease, s.Steps)
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

func (e *Executor) loadState(lease, step uint64) (*wasm.State, error) {
	b, err := os.ReadFile(e.statePath(lease, step))
	if err != nil {
		return nil, err
	}
	var s wasm.State
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("state %d of lease %d: %w", step, lease, err)
	}
	if s.Steps != step {
		return nil, fmt.Errorf("state file of step %d holds step %d", step, s.Steps)
	}
	return &s, nil
}

// stateAt computes the lease's state after step steps: the nearest stored
// state at or before it, stepped forward (the Tamper fault included, as
// the run applied it).
func (e *Executor) stateAt(ctx context.Context, lease uint64, o api.JobOrderView, step uint64) (*wasm.State, error) {
	var from uint64
	found := false
	for _, s := range e.storedSteps(lease) {
		if s <= step {
			from, found = s, true
		}
	}
	if !found {
		return nil, fmt.Errorf("lease %d: no stored state at or before step %d", lease, step)
	}
	s, err := e.loadState(lease, from)
	if err != nil || from == step {
		return s, err
	}
	m, err := e.module(ctx, o)
	if err != nil {
		return nil, err
	}
	job, err := e.jobOf(ctx, o)
	if err != nil {
		return nil, err
	}
	in, err := m.Restore(ctx, job, s)
	if err != nil {
		return nil, err
	}
	defer func() { in.Close(context.Background()) }()
	gas0 := in.GasUsed()
	defer func() { e.metrics.gas.Add(float64(in.GasUsed() - gas0)) }()
	for in.Steps() < step {
		more, err := in.Step(ctx)
		if err != nil {
			return nil, fmt.Errorf("lease %d: step %d: %w", lease, in.Steps()+1, err)
		}
		if in, err = e.tamper(ctx, lease, in.Steps(), m, job, in); err != nil {
			return nil, err
		}
		if !more && in.Steps() < step {
			return nil, fmt.Errorf("lease %d: the job ends at step %d, before %d", lease, in.Steps(), step)
		}
	}
	return in.Snapshot(), nil
}
