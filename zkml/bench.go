package zkml

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// BenchResult is one batch size's measurement.
type BenchResult struct {
	Batch       int           `json:"batch"`
	Constraints int           `json:"constraints"`
	Compile     time.Duration `json:"compile_ns"`
	Setup       time.Duration `json:"setup_ns"`
	Prove       time.Duration `json:"prove_ns"`
	PerItem     time.Duration `json:"prove_per_inference_ns"`
	ProofBytes  int           `json:"proof_bytes"`
	Verify      time.Duration `json:"verify_ns"`
	ProverHeap  uint64        `json:"prover_peak_heap_bytes"`
}

// Bench compiles, sets up (single party), proves and verifies one batch of
// the given inputs, and reports the costs. Verification is timed as the
// median of verifyRuns runs.
func Bench(m *Model, inputs [][]int8, verifyRuns int) (*BenchResult, error) {
	r := &BenchResult{Batch: len(inputs)}
	t0 := time.Now()
	cs, err := Compile(m, len(inputs))
	if err != nil {
		return nil, err
	}
	r.Compile = time.Since(t0)
	r.Constraints = cs.GetNbConstraints()
	t0 = time.Now()
	pk, vk, err := SetupSingleParty(cs)
	if err != nil {
		return nil, err
	}
	r.Setup = time.Since(t0)
	runtime.GC()
	stop := sampleHeap(&r.ProverHeap)
	t0 = time.Now()
	p, err := Prove(cs, pk, m, inputs)
	r.Prove = time.Since(t0)
	stop()
	if err != nil {
		return nil, err
	}
	r.PerItem = r.Prove / time.Duration(len(inputs))
	b, err := p.ProofBytes()
	if err != nil {
		return nil, err
	}
	r.ProofBytes = len(b)
	ds := make([]time.Duration, max(verifyRuns, 1))
	for i := range ds {
		t0 = time.Now()
		if err := Verify(vk, p.Proof, &p.Statement, m.InLen(), m.OutLen()); err != nil {
			return nil, fmt.Errorf("verify own proof: %w", err)
		}
		ds[i] = time.Since(t0)
	}
	r.Verify = median(ds)
	return r, nil
}

// sampleHeap records the largest HeapInuse seen every 10 ms until stopped.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}
