package native

import (
	"os"
	"strconv"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// BenchmarkDecode measures one-token decode steps on a generated model
// (AGORA_BENCH_MODEL overrides it with any GGUF file).
func BenchmarkDecode(b *testing.B) {
	path := os.Getenv("AGORA_BENCH_MODEL")
	if path == "" {
		path = tinyModel(b, gguf.F32, "llama")
	}
	m, err := Load(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	s := m.NewSession()
	if _, err := s.Forward([]int{1, 5, 9, 12}, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Pos() >= m.Config.ContextLen-1 {
			s.Truncate(4)
		}
		if _, err := s.Forward([]int{(i * 7) % m.Config.Vocab}, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrompt measures a 100-token prefill (AGORA_BENCH_MODEL for any
// GGUF file; AGORA_BENCH_THREADS for the thread count; AGORA_BENCH_TOKENS
// for another length, e.g. 256: a validator's re-execution of a receipt).
func BenchmarkPrompt(b *testing.B) {
	path := os.Getenv("AGORA_BENCH_MODEL")
	if path == "" {
		path = tinyModel(b, gguf.Q8_0, "llama")
	}
	threads := 0
	if v := os.Getenv("AGORA_BENCH_THREADS"); v != "" {
		threads, _ = strconv.Atoi(v)
	}
	if os.Getenv("AGORA_BENCH_NOVNNI") != "" { // compare the AVX2-only kernels
		defer func(v bool) { useVNNI = v }(useVNNI)
		useVNNI = false
	}
	n := 100
	if v := os.Getenv("AGORA_BENCH_TOKENS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	m, err := Load(path, Options{Threads: threads, ContextLen: n})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7919 + 3) % m.Config.Vocab
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.NewSession().Forward(ids, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "tok/s")
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/prefill")
}

// BenchmarkKernel times one matmul of a 2048×768 matrix against 100 tokens
// per weight type (AGORA_BENCH_NOVNNI for the AVX2-only kernels), kernel
// throughput apart from the rest of the forward pass.
func BenchmarkKernel(b *testing.B) {
	for _, typ := range supportedTypes {
		b.Run(typ.String(), func(b *testing.B) {
			if os.Getenv("AGORA_BENCH_NOVNNI") != "" {
				defer func(v bool) { useVNNI = v }(useVNNI)
				useVNNI = false
			}
			const rows, cols, T = 2048, 768, 100
			rng := NewRNG(1)
			vals := make([]float32, rows*cols)
			for i := range vals {
				vals[i] = float32(rng.Float64()*2 - 1)
			}
			data, err := encode(typ, vals, cols)
			if err != nil {
				b.Fatal(err)
			}
			w, err := newMatrix("w", gguf.TensorInfo{Dims: []uint64{cols, rows}, Type: typ}, data)
			if err != nil {
				b.Fatal(err)
			}
			x := make([]float32, T*cols)
			for i := range x {
				x[i] = float32(rng.Float64()*2 - 1)
			}
			out := make([]float32, T*rows)
			m := &Model{threads: 1}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.matmul(w, out, x, T, nil)
			}
			b.ReportMetric(float64(rows*cols*T*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
