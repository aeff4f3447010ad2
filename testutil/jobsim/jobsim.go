// Package jobsim simulates compute-job providers for tests of the
// verification side: a small job module, honest and tampered runs of it
// computed with engine/wasm, an executor's HTTP surface (blobs and states)
// over those runs, and a defender that answers bisections on chain with
// its run's state hashes.
package jobsim

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chainjobs "github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/internal/blobstore"
	"github.com/agoranet/agora/protocol/jobs"
)

// CounterModule is a hand-assembled job-ABI module: each step adds 1 to an
// i64 global g, writes 7·g into memory at (g mod 1024)·8, and returns
// "more" while g < steps. Its state changes every step, so a wrong step
// shows in the state hash; a step costs a few dozen gas.
func CounterModule(steps int64) []byte { return counter(steps, []byte{0, 0x0b}) }

// TrapInitModule is CounterModule whose init traps (unreachable): a job
// that fails deterministically before its first step.
func TrapInitModule() []byte { return counter(1, []byte{0, 0x00, 0x0b}) }

func counter(steps int64, initBody []byte) []byte {
	leb := func(v uint32) []byte {
		var b []byte
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	sleb := func(v int64) []byte {
		var b []byte
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	sec := func(out []byte, id byte, payload []byte) []byte {
		return append(append(append(out, id), leb(uint32(len(payload)))...), payload...)
	}
	name := func(s string) []byte { return append(leb(uint32(len(s))), s...) }
	w := []byte("\x00asm\x01\x00\x00\x00")
	w = sec(w, 1, []byte{2, 0x60, 0, 0, 0x60, 0, 1, 0x7f})
	w = sec(w, 3, []byte{2, 0, 1})
	w = sec(w, 5, []byte{1, 0, 1})
	w = sec(w, 6, []byte{1, 0x7e, 1, 0x42, 0, 0x0b})
	exp := []byte{3}
	exp = append(append(exp, name("init")...), 0, 0)
	exp = append(append(exp, name("step")...), 0, 1)
	exp = append(append(exp, name("memory")...), 2, 0)
	w = sec(w, 7, exp)
	step := []byte{0,
		0x23, 0, 0x42, 1, 0x7c, 0x24, 0, // g = g + 1
		0x23, 0, 0xa7, 0x41, 0xff, 0x07, 0x71, 0x41, 3, 0x74, // addr = (i32(g) & 1023) << 3
		0x23, 0, 0x42, 7, 0x7e, // 7·g
		0x37, 3, 0, // i64.store
		0x23, 0, 0x42}
	step = append(append(step, sleb(steps)...), 0x54, 0x0b) // g <u steps
	code := []byte{2}
	code = append(append(code, leb(uint32(len(initBody)))...), initBody...)
	code = append(append(code, leb(uint32(len(step)))...), step...)
	return sec(w, 10, code)
}

// Run is a provider's run of a job: honest, or with the state after step
// Tamper altered (one memory byte flipped) and every later step run on
// from there. It keeps a snapshot every Every steps (a multiple or divisor
// of the checkpoint interval) and at the end, and
// answers the state at any step by re-running from the nearest one.
type Run struct {
	t      testing.TB
	Mod    *wasm.Module
	Job    wasm.Job
	Tamper uint64 // 0: honest
	Every  uint64
	Steps  uint64 // the job's length
	snaps  map[uint64]*wasm.State
}

// NewRun runs job to its end.
func NewRun(t testing.TB, mod *wasm.Module, job wasm.Job, tamper, every uint64) *Run {
	r := &Run{t: t, Mod: mod, Job: job, Tamper: tamper, Every: every, snaps: map[uint64]*wasm.State{}}
	ctx := context.Background()
	in, err := mod.Start(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	r.snaps[0] = in.Snapshot()
	for more := true; more; {
		if more, err = in.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if in.Steps() == tamper {
			s := tampered(in.Snapshot())
			in.Close(ctx)
			if in, err = mod.Restore(ctx, job, s); err != nil {
				t.Fatal(err)
			}
		}
		if in.Steps()%every == 0 || !more {
			r.snaps[in.Steps()] = in.Snapshot()
		}
	}
	r.Steps = in.Steps()
	in.Close(ctx)
	return r
}

// tampered flips the last byte of memory, which CounterModule never
// writes, so the alteration persists to the end of the job.
func tampered(s *wasm.State) *wasm.State {
	s.Memory = bytes.Clone(s.Memory)
	s.Memory[len(s.Memory)-1] ^= 0x5a
	return s
}

// State is the run's state after step steps.
func (r *Run) State(step uint64) *wasm.State {
	base := step - step%r.Every
	if s := r.snaps[step]; s != nil {
		return s
	}
	ctx := context.Background()
	in, err := r.Mod.Restore(ctx, r.Job, r.snaps[base])
	if err != nil {
		r.t.Error(err)
		return nil
	}
	defer in.Close(ctx)
	for in.Steps() < step {
		if _, err := in.Step(ctx); err != nil {
			r.t.Error(err)
			return nil
		}
		if in.Steps() == r.Tamper {
			s := tampered(in.Snapshot())
			if step == r.Tamper {
				return s
			}
			in.Close(ctx)
			if in, err = r.Mod.Restore(ctx, r.Job, s); err != nil {
				r.t.Error(err)
				return nil
			}
		}
	}
	return in.Snapshot()
}

// Hash is the run's state hash after step steps.
func (r *Run) Hash(step uint64) [32]byte { return r.State(step).Hash() }

// Checkpoint is the commit for checkpoint index (1, 2, ...): every
// Job.CheckpointEvery steps (Every when 0), the last one at the job's end.
func (r *Run) Checkpoint(lease, index uint64) *types.MsgCommitCheckpoint {
	every := r.Job.CheckpointEvery
	if every == 0 {
		every = r.Every
	}
	step := min(index*every, r.Steps)
	s := r.State(step)
	h := s.Hash()
	m := &types.MsgCommitCheckpoint{LeaseId: lease, Index: index, Steps: step, GasUsed: s.GasUsed, StateHash: h[:]}
	if step == r.Steps {
		res := (&jobs.Results{}).ID()
		m.Done, m.ResultHash = true, res[:]
	}
	return m
}

// Provider is an executor's HTTP surface for tests: protocol/blob's paths
// over a blob store, and protocol/jobs' state path over the runs set per
// lease.
type Provider struct {
	Store *blobstore.Store
	Srv   *httptest.Server

	mu   sync.Mutex
	runs map[uint64]*Run
	// Silent makes it serve no states.
	silent bool
}

// NewProvider starts a provider serving blobs (put them in Store).
func NewProvider(t testing.TB) *Provider {
	st, err := blobstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Store: st, runs: map[uint64]*Run{}}
	mux := http.NewServeMux()
	(&blobstore.Server{Store: st}).Register(mux)
	mux.HandleFunc(jobs.StateRoute, func(w http.ResponseWriter, req *http.Request) {
		lease, _ := strconv.ParseUint(req.PathValue("lease"), 10, 64)
		step, err := strconv.ParseUint(req.PathValue("step"), 10, 64)
		p.mu.Lock()
		r, silent := p.runs[lease], p.silent
		p.mu.Unlock()
		if r == nil || silent || err != nil || step > r.Steps {
			http.Error(w, "no such state", http.StatusNotFound)
			return
		}
		s := r.State(step)
		if s == nil {
			http.Error(w, "state failed", http.StatusInternalServerError)
			return
		}
		b, err := s.MarshalBinary()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	p.Srv = httptest.NewServer(mux)
	t.Cleanup(p.Srv.Close)
	return p
}

// Serve makes the provider serve run's states for lease.
func (p *Provider) Serve(lease uint64, run *Run) {
	p.mu.Lock()
	p.runs[lease] = run
	p.mu.Unlock()
}

// SetSilent makes the provider refuse (or serve again) every state.
func (p *Provider) SetSilent(silent bool) {
	p.mu.Lock()
	p.silent = silent
	p.mu.Unlock()
}

// Defender is a scripted defender's loop: Moves and Fees count its bisect
// txs and their fees (read them after Wait).
type Defender struct {
	Moves, Fees atomic.Uint64
	done        chan struct{}
}

// Wait waits for Defend's loop to stop.
func (d *Defender) Wait() { <-d.done }

// Defend answers, until ctx ends, every bisection asked of signer in a
// dispute over one of runs' leases with that run's state hashes at the
// boundaries (arity k), as an executor's defender does.
func Defend(ctx context.Context, t testing.TB, c *client.Client, signer *client.Signer, k uint32, runs map[uint64]*Run) *Defender {
	d := &Defender{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		moved := map[[2]uint64]bool{}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ds, err := c.JobOpenDisputes(ctx)
			if err != nil {
				continue
			}
			for _, v := range ds {
				r := runs[v.LeaseID]
				if v.Phase != "bisect" || r == nil || !bytes.Equal(v.Defender, signer.Address()) || moved[[2]uint64{v.ID, uint64(v.Moves)}] {
					continue
				}
				jd := &types.JobDispute{Lo: v.Lo, Hi: v.Hi}
				n := chainjobs.Parts(jd, k)
				m := &types.MsgBisect{DisputeId: v.ID}
				for j := uint64(1); j < n; j++ {
					h := r.Hash(chainjobs.Boundary(jd, j, n))
					m.Hashes = append(m.Hashes, h[:])
				}
				res, err := signer.Send(ctx, m)
				if res != nil {
					d.Fees.Add(res.Fee)
				}
				if err != nil {
					if ctx.Err() == nil {
						t.Logf("defender: bisect dispute %d: %v", v.ID, err)
					}
					continue
				}
				moved[[2]uint64{v.ID, uint64(v.Moves)}] = true
				d.Moves.Add(1)
			}
		}
	}()
	return d
}
