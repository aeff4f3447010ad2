package wasm

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/agoranet/agora/engine/wasm/internal/wasmgen"
)

// Random job-ABI modules: the compiler and the interpreter give the same
// outcome, gas and checkpoints, and replaying each step from a snapshot of
// its pre-state (on the other engine) reproduces the next checkpoint.
func TestGeneratedJobs(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	failed := 0
	for seed := uint64(0); seed < uint64(n); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			if checkGeneratedJob(t, seed) {
				failed++
			}
		})
	}
	if failed == n {
		t.Fatalf("all %d generated jobs failed", n)
	}
	t.Logf("%d of %d generated jobs failed (a trap in f0), identically on both engines", failed, n)
}

// checkGeneratedJob runs the property on one generated job and reports
// whether the job failed (identically on both engines).
func checkGeneratedJob(t *testing.T, seed uint64) bool {
	ctx := context.Background()
	wasm := wasmgen.Module(seed, true)
	job := Job{Gas: 1 << 30, CheckpointEvery: 1, Seed: [32]byte{byte(seed)}}
	mc, mi := compile(t, false, wasm), compile(t, true, wasm)
	a, err := mc.Run(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Run(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("compiler and interpreter differ:\n%+v\n%+v", a, b)
	}
	if a.Failure != nil {
		return true
	}
	in, err := mc.Start(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)
	for k := 0; k+1 < len(a.Checkpoints); k++ {
		pre := in.Snapshot()
		if pre.Hash() != a.Checkpoints[k].State {
			t.Fatalf("step %d: snapshot %x, checkpoint %x", k, pre.Hash(), a.Checkpoints[k].State)
		}
		sr, err := mi.ReplayStep(ctx, job, pre)
		if err != nil || sr.Failure != nil {
			t.Fatalf("replay %d: %v %v", k, err, sr.Failure)
		}
		if sr.Post != a.Checkpoints[k+1].State || sr.GasUsed != a.Checkpoints[k+1].GasUsed {
			t.Fatalf("replay of step %d: %x, checkpoint %x", k+1, sr.Post, a.Checkpoints[k+1].State)
		}
		if _, err := in.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return false
}

// FuzzGeneratedJobs checks the same property on fuzzed seeds.
func FuzzGeneratedJobs(f *testing.F) {
	f.Add(uint64(7))
	f.Fuzz(func(t *testing.T, seed uint64) { checkGeneratedJob(t, seed) })
}
