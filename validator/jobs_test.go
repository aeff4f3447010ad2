package validator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	chainjobs "github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/jobsim"
)

// serve is an executor over a run's states for lease 1 (nil: serving
// none).
func serve(t testing.TB, r *jobsim.Run) *httptest.Server {
	p := jobsim.NewProvider(t)
	if r != nil {
		p.Serve(1, r)
	}
	return p.Srv
}

func testVerifier(t testing.TB, o JobOptions) (*JobVerifier, *jobRun) {
	ctx := context.Background()
	v, err := NewJobVerifier(ctx, nil, nil, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	mod, err := v.eng.Compile(ctx, jobsim.CounterModule(200))
	if err != nil {
		t.Fatal(err)
	}
	job := wasm.Job{Seed: jobs.JobSeed("test", 1), Gas: 1 << 30, MemoryPages: 4, CheckpointEvery: 50}
	return v, &jobRun{lease: api.JobLeaseView{ID: 1, OrderID: 1}, order: api.JobOrderView{ID: 1, GasLimit: 1 << 30, MemoryPages: 4, CheckpointInterval: 50}, mod: mod, job: job}
}

func TestJobStateAtChecksServedStates(t *testing.T) {
	ctx := context.Background()
	v, r := testVerifier(t, JobOptions{})
	honest := jobsim.NewRun(t, r.mod, r.job, 0, 50)
	bad := jobsim.NewRun(t, r.mod, r.job, 70, 50)
	good, h100 := serve(t, honest), honest.Hash(100)
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
		{"silent, over the cap", []string{serve(t, nil).URL}, 99, "", "404 Not Found: no such state"},
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
	if err != nil || src != "initial" || s.Hash() != honest.Hash(0) {
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
	honest := jobsim.NewRun(t, r.mod, r.job, 0, 50)
	const bad = 73
	liar := jobsim.NewRun(t, r.mod, r.job, bad, 50)
	r.endpoint = serve(t, liar).URL // the defender serves its (tampered) states
	for _, k := range []uint32{2, 3, 8} {
		t.Run(fmt.Sprint("k=", k), func(t *testing.T) {
			clear(v.states)
			// The dispute over checkpoint 2 (steps 50..100) of the liar.
			d := api.JobDisputeView{ID: 1, LeaseID: 1, Lo: 50, Hi: 100}
			lo, hi := liar.Hash(50), liar.Hash(100)
			d.LoHash, d.HiHash = lo[:], hi[:]
			rounds := 0
			for d.Hi-d.Lo > 1 {
				cd := &types.JobDispute{Lo: d.Lo, Hi: d.Hi}
				n := chainjobs.Parts(cd, k)
				d.Hashes = nil
				for j := uint64(1); j < n; j++ {
					h := liar.Hash(chainjobs.Boundary(cd, j, n))
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
				lh, hh := liar.Hash(lo), liar.Hash(hi)
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
			if sr.Post != honest.Hash(bad) || sr.Post == liar.Hash(bad) {
				t.Fatalf("replayed step %d: %x, honest %x", bad, sr.Post[:8], honest.Hash(bad))
			}
		})
	}
	// Against an honest defender, a referee confirms the defender's step.
	r.endpoint = serve(t, honest).URL
	clear(v.states)
	lo, hi := honest.Hash(bad-1), honest.Hash(bad)
	sr, src, err := v.replay(ctx, r, api.JobDisputeView{ID: 2, LeaseID: 1, Lo: bad - 1, Hi: bad, LoHash: lo[:], HiHash: hi[:]}, r.endpoint)
	if err != nil || sr.Post != hi || src != "provider" {
		t.Fatalf("replay against the honest defender: %v %q", err, src)
	}
}

// BenchmarkJobReplay is a referee's cost for one step of the counter job
// (one 64 KiB page): the replay alone, and with the pre-state fetched
// over HTTP from the defender and checked against its hash.
func BenchmarkJobReplay(b *testing.B) {
	ctx := context.Background()
	v, r := testVerifier(b, JobOptions{})
	honest := jobsim.NewRun(b, r.mod, r.job, 0, 50)
	r.endpoint = serve(b, honest).URL
	lo, hi := honest.Hash(120), honest.Hash(121)
	d := api.JobDisputeView{ID: 1, LeaseID: 1, Lo: 120, Hi: 121, LoHash: lo[:], HiHash: hi[:]}
	pre := honest.State(120)
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			sr, err := r.mod.ReplayStep(ctx, r.job, pre)
			if err != nil || sr.Post != hi {
				b.Fatal(err)
			}
		}
	})
	b.Run("fetch+check+replay", func(b *testing.B) {
		for b.Loop() {
			clear(v.states)
			sr, _, err := v.replay(ctx, r, d, r.endpoint)
			if err != nil || sr.Post != hi {
				b.Fatal(err)
			}
		}
	})
}

// The worker serves its job verifier's findings.
func TestWorkerServesJobAudits(t *testing.T) {
	v, _ := testVerifier(t, JobOptions{})
	v.findings = append(v.findings, JobFinding{Epoch: 3, Lease: 7, Index: 2, Fault: JobFaultWrongState, Challenged: true})
	w := NewWorker(nil, nil, nil, nil, nil).WithJobs(v)
	rec := httptest.NewRecorder()
	w.Handler(prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/job-audits", nil))
	var got []JobFinding
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("GET /v1/job-audits: %d %s (%v)", rec.Code, rec.Body, err)
	}
	if len(got) != 1 || got[0].Lease != 7 || got[0].Index != 2 || got[0].Fault != JobFaultWrongState || !got[0].Challenged {
		t.Fatalf("job audits %+v", got)
	}
	rec = httptest.NewRecorder()
	NewWorker(nil, nil, nil, nil, nil).Handler(prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/job-audits", nil))
	if strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("without a job verifier: %s", rec.Body)
	}
}

// A job whose initialisation traps has no state after step 1 but the
// failed one (zero, what the executor commits): the referee's replay of
// step 1 says so, and the audit sees a failure before step 1.
func TestJobFailingBeforeStep1(t *testing.T) {
	ctx := context.Background()
	v, r := testVerifier(t, JobOptions{})
	mod, err := v.eng.Compile(ctx, jobsim.TrapInitModule())
	if err != nil {
		t.Fatal(err)
	}
	r.mod = mod
	sr, src, err := v.replay(ctx, r, api.JobDisputeView{ID: 1, LeaseID: 1, Lo: 0, Hi: 1})
	if err != nil || src != "failed" || sr.Failure == nil || sr.Post != ([32]byte{}) {
		t.Fatalf("replay of a trapping init: %+v %q %v", sr, src, err)
	}
	_, _, err = v.stateAt(ctx, r, 0, nil)
	if err == nil || !failsBeforeStep1(err) {
		t.Fatalf("initial state of a trapping init: %v", err)
	}
	if failsBeforeStep1(fmt.Errorf("GET: connection refused")) || !failsBeforeStep1(&refusedError{fmt.Errorf("bad module")}) {
		t.Fatal("failsBeforeStep1 must tell refusals and failures from fetch errors")
	}
}
