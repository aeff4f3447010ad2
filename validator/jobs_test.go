package validator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
	chainjobs "github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/protocol/jobs"
)

// counterModule is a hand-assembled job-ABI module: each step adds 1 to an
// i64 global g, writes 7·g into memory at (g mod 1024)·8, and returns
// "more" while g < steps. Its state changes every step, so a wrong step
// shows in the state hash.
func counterModule(steps int64) []byte {
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
	initBody := []byte{0, 0x0b}
	code := []byte{2}
	code = append(append(code, leb(uint32(len(initBody)))...), initBody...)
	code = append(append(code, leb(uint32(len(step)))...), step...)
	return sec(w, 10, code)
}

// run is a provider's run of a job: honest, or with step tamper's state
// altered (one memory byte flipped after it) and every later step run on
// from there. It answers states at any step by re-running from its nearest
// snapshot.
type run struct {
	t      testing.TB
	mod    *wasm.Module
	job    wasm.Job
	tamper uint64 // 0: honest
	snaps  map[uint64]*wasm.State
	every  uint64
}

func newRun(t testing.TB, mod *wasm.Module, job wasm.Job, tamper, every uint64) *run {
	r := &run{t: t, mod: mod, job: job, tamper: tamper, every: every, snaps: map[uint64]*wasm.State{}}
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
			s := in.Snapshot()
			s.Memory = append([]byte(nil), s.Memory...)
			s.Memory[100] ^= 0x5a
			in.Close(ctx)
			if in, err = mod.Restore(ctx, job, s); err != nil {
				t.Fatal(err)
			}
		}
		if in.Steps()%every == 0 || !more {
			r.snaps[in.Steps()] = in.Snapshot()
		}
	}
	in.Close(ctx)
	return r
}

// state is the run's state after step steps.
func (r *run) state(step uint64) *wasm.State {
	base := step - step%r.every
	s := r.snaps[base]
	if base == step {
		return s
	}
	ctx := context.Background()
	in, err := r.mod.Restore(ctx, r.job, s)
	if err != nil {
		r.t.Fatal(err)
	}
	defer in.Close(ctx)
	for in.Steps() < step {
		if _, err := in.Step(ctx); err != nil {
			r.t.Fatal(err)
		}
		if in.Steps() == r.tamper {
			st := in.Snapshot()
			st.Memory = append([]byte(nil), st.Memory...)
			st.Memory[100] ^= 0x5a
			return st
		}
	}
	return in.Snapshot()
}

func (r *run) hash(step uint64) [32]byte { return r.state(step).Hash() }

// serve is an executor's state endpoint over a run (lease 1). A nil run
// serves nothing.
func serve(t testing.TB, r *run) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc(jobs.StateRoute, func(w http.ResponseWriter, req *http.Request) {
		if r == nil || req.PathValue("lease") != "1" {
			http.Error(w, "no such lease", http.StatusNotFound)
			return
		}
		step, _ := strconv.ParseUint(req.PathValue("step"), 10, 64)
		b, err := r.state(step).MarshalBinary()
		if err != nil {
			t.Error(err)
		}
		w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func testVerifier(t testing.TB, o JobOptions) (*JobVerifier, *jobRun) {
	ctx := context.Background()
	v, err := NewJobVerifier(ctx, nil, nil, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	mod, err := v.eng.Compile(ctx, counterModule(200))
	if err != nil {
		t.Fatal(err)
	}
	job := wasm.Job{Seed: jobs.JobSeed("test", 1), Gas: 1 << 30, MemoryPages: 4, CheckpointEvery: 50}
	return v, &jobRun{lease: api.JobLeaseView{ID: 1, OrderID: 1}, order: api.JobOrderView{ID: 1, GasLimit: 1 << 30, MemoryPages: 4, CheckpointInterval: 50}, mod: mod, job: job}
}

func TestJobStateAtChecksServedStates(t *testing.T) {
	ctx := context.Background()
	v, r := testVerifier(t, JobOptions{})
	honest := newRun(t, r.mod, r.job, 0, 50)
	bad := newRun(t, r.mod, r.job, 70, 50)
	good, h100 := serve(t, honest), honest.hash(100)
	cases := []struct {
		name     string
		eps      []string
		maxSteps uint64
		src      string
		err      string
	}{
		{"honest provider", []string{good.URL}, 0, "provider", ""},
		{"tampered provider, recomputed", []string{serve(t, bad).URL}, 0, "recomputed", ""},
		{"silent provider, recomputed", []string{serve(t, nil).URL}, 0, "recomputed", ""},
		{"tampered then honest", []string{serve(t, bad).URL, good.URL}, 0, "provider", ""},
		{"tampered, over the cap", []string{serve(t, bad).URL}, 99, "", "not the agreed"},
		{"silent, over the cap", []string{serve(t, nil).URL}, 99, "", "404 Not Found: no such lease"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clear(v.states)
			v.opt.MaxSteps = c.maxSteps
			if v.opt.MaxSteps == 0 {
				v.opt.MaxSteps = 1 << 20
			}
			s, src, err := v.stateAt(ctx, r, 100, h100[:], c.eps...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "over the recomputation caps") {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || src != c.src || s.Hash() != h100 || s.Steps != 100 {
				t.Fatalf("state from %q (err %v), want %q with hash %x", src, err, c.src, h100[:8])
			}
		})
	}
	// The initial state (no checkpoint commits it) is computed locally.
	s, src, err := v.stateAt(ctx, r, 0, nil)
	if err != nil || src != "initial" || s.Hash() != honest.hash(0) {
		t.Fatalf("initial state: %v %q", err, src)
	}
}

// The challenger's bisection against a defender that altered step 70
// narrows to exactly that step, whatever the arity; the referee's replay
// of it from the agreed state gives the honest post-state, not the
// defender's.
func TestJobBisectionFindsTheAlteredStep(t *testing.T) {
	ctx := context.Background()
	v, r := testVerifier(t, JobOptions{})
	honest := newRun(t, r.mod, r.job, 0, 50)
	const bad = 73
	liar := newRun(t, r.mod, r.job, bad, 50)
	r.endpoint = serve(t, liar).URL // the defender serves its (tampered) states
	for _, k := range []uint32{2, 3, 8} {
		t.Run(fmt.Sprint("k=", k), func(t *testing.T) {
			clear(v.states)
			// The dispute over checkpoint 2 (steps 50..100) of the liar.
			d := api.JobDisputeView{ID: 1, LeaseID: 1, Lo: 50, Hi: 100}
			lo, hi := liar.hash(50), liar.hash(100)
			d.LoHash, d.HiHash = lo[:], hi[:]
			rounds := 0
			for d.Hi-d.Lo > 1 {
				cd := &types.JobDispute{Lo: d.Lo, Hi: d.Hi}
				n := chainjobs.Parts(cd, k)
				d.Hashes = nil
				for j := uint64(1); j < n; j++ {
					h := liar.hash(chainjobs.Boundary(cd, j, n))
					d.Hashes = append(d.Hashes, h[:])
				}
				part, err := v.choosePart(ctx, r, d)
				if err != nil {
					t.Fatal(err)
				}
				p := uint64(part)
				lo, hi := chainjobs.Boundary(cd, p, n), chainjobs.Boundary(cd, p+1, n)
				if lo >= bad || hi < bad {
					t.Fatalf("round %d picked part %d = steps %d..%d, which does not hold step %d", rounds, part, lo, hi, bad)
				}
				lh, hh := liar.hash(lo), liar.hash(hi)
				d.Lo, d.Hi, d.LoHash, d.HiHash = lo, hi, lh[:], hh[:]
				rounds++
			}
			if d.Lo != bad-1 || rounds > 8 {
				t.Fatalf("narrowed to %d..%d in %d rounds", d.Lo, d.Hi, rounds)
			}
			sr, _, err := v.replay(ctx, r, d, r.endpoint)
			if err != nil {
				t.Fatal(err)
			}
			if sr.Post != honest.hash(bad) || sr.Post == liar.hash(bad) {
				t.Fatalf("replayed step %d: %x, honest %x", bad, sr.Post[:8], honest.hash(bad))
			}
		})
	}
	// Against an honest defender, a referee confirms the defender's step.
	r.endpoint = serve(t, honest).URL
	clear(v.states)
	lo, hi := honest.hash(bad-1), honest.hash(bad)
	sr, src, err := v.replay(ctx, r, api.JobDisputeView{ID: 2, LeaseID: 1, Lo: bad - 1, Hi: bad, LoHash: lo[:], HiHash: hi[:]}, r.endpoint)
	if err != nil || sr.Post != hi || src != "provider" {
		t.Fatalf("replay against the honest defender: %v %q", err, src)
	}
}
