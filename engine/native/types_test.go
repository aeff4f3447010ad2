package native

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// typeModel writes a small random model with every matrix in typ (K-quants
// need rows of 256: dim 256, ffn 768).
func typeModel(t testing.TB, typ gguf.TensorType, seed uint64) string {
	t.Helper()
	o := GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: seed, Type: typ}
	if elems, _, _ := typ.BlockSize(); elems == qkK {
		o.Dim, o.FFN = 256, 768
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%s.gguf", typ))
	if err := WriteRandomModel(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAllTypesPrefillReproducesDecode: for every weight type, one prefill
// over prompt+output gives the decode steps' logits and log-probs bit for
// bit, with the SIMD kernels and with the portable ones.
func TestAllTypesPrefillReproducesDecode(t *testing.T) {
	for _, typ := range supportedTypes {
		for _, simd := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/simd=%v", typ, simd), func(t *testing.T) {
				defer func(old bool) { useSIMD = old }(useSIMD)
				useSIMD = simd
				m, tok := load(t, typeModel(t, typ, 7), 2)
				checkPrefillMatchesDecode(t, typ.String(), m, tok.Encode("tell me a story about a small robot", true, false), tok,
					SampleParams{Temperature: 0.9, Seed: 3, MaxTokens: 14})
			})
		}
	}
}

// TestAllTypesSIMDMatchesGoAndThreads: the logits of a prefill are the same
// bits with the SIMD kernels and the portable Go kernels, and with 1, 2 and
// 3 threads under GOMAXPROCS 1 and 2.
func TestAllTypesSIMDMatchesGoAndThreads(t *testing.T) {
	for _, typ := range supportedTypes {
		path := typeModel(t, typ, 5)
		run := func(simd bool, procs, threads int) [][]float32 {
			defer func(old bool) { useSIMD = old }(useSIMD)
			useSIMD = simd
			old := runtime.GOMAXPROCS(procs)
			defer runtime.GOMAXPROCS(old)
			m, tok := load(t, path, threads)
			out, err := m.NewSession().Forward(tok.Encode("the quick brown fox jumps over the lazy dog", true, false), true)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		want := run(true, 2, 2)
		for _, c := range []struct {
			simd           bool
			procs, threads int
		}{{false, 2, 2}, {true, 1, 1}, {false, 1, 1}, {true, 2, 3}} {
			got := run(c.simd, c.procs, c.threads)
			for p := range want {
				if !sameBits(want[p], got[p]) {
					t.Fatalf("%s: position %d logits differ with simd=%v GOMAXPROCS=%d threads=%d", typ, p, c.simd, c.procs, c.threads)
				}
			}
		}
	}
}

// TestReferenceForwardAllTypes compares the engine with the float64
// reference forward pass on each type's dequantized weights: the remaining
// difference is the activations' 8-bit quantization (none for the float
// types).
func TestReferenceForwardAllTypes(t *testing.T) {
	tol := map[gguf.TensorType]float64{gguf.F32: 1e-4, gguf.F16: 1e-4, gguf.BF16: 1e-4}
	for _, typ := range supportedTypes {
		m, tok := load(t, typeModel(t, typ, 7), 2)
		ids := tok.Encode("the quick brown fox", true, false)
		got, err := m.NewSession().Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceForward(m, ids)
		var maxErr, maxAbs float64
		for p := range ids {
			for v := range want[p] {
				maxErr = math.Max(maxErr, math.Abs(float64(got[p][v])-want[p][v]))
				maxAbs = math.Max(maxAbs, math.Abs(want[p][v]))
			}
		}
		limit, ok := tol[typ]
		if !ok {
			limit = 3e-2
		}
		if maxErr > limit*math.Max(1, maxAbs) {
			t.Fatalf("%s: max |engine - reference| = %g (logits up to %g)", typ, maxErr, maxAbs)
		}
		t.Logf("%s: max error %.3g over logits up to %.3g", typ, maxErr, maxAbs)
	}
}

// TestAllTypesBadInput: for every weight type, a file cut inside its tensor
// data is refused, a corrupted tensor loads and runs without a panic, and a
// type the engine does not run is refused with an error naming it.
func TestAllTypesBadInput(t *testing.T) {
	for _, typ := range supportedTypes {
		path := typeModel(t, typ, 3)
		full, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, frac := range []int{2, 3, 5} {
			cut := len(full) - len(full)/frac/4
			p := filepath.Join(t.TempDir(), "cut.gguf")
			if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(p, Options{}); err == nil {
				t.Fatalf("%s: model truncated to %d of %d bytes loaded", typ, cut, len(full))
			}
		}
		// corrupt the tensor data (scales included) with random bytes
		g, err := gguf.Parse(full)
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), full...)
		rng := NewRNG(uint64(typ))
		for i := int(g.DataOffset); i < len(bad); i += 1 + int(rng.Uint64()%7) {
			bad[i] = byte(rng.Uint64())
		}
		g2, err := gguf.Parse(bad)
		if err != nil {
			t.Fatal(err)
		}
		m, err := FromFile(g2, Options{ContextLen: 16})
		if err != nil {
			t.Fatalf("%s: corrupted weights refused: %v", typ, err)
		}
		if _, err := m.NewSession().Forward([]int{1, 5, 9}, true); err != nil {
			t.Fatalf("%s: forward on corrupted weights: %v", typ, err)
		}
	}
	// Q8_K is a known ggml type no weight uses; the refusal names it.
	var w gguf.Writer
	if err := w.AddTensor("x", gguf.Q8_K, []uint64{256, 2}, make([]byte, 2*292)); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Parse(func() []byte { var b bytes.Buffer; w.Write(&b); return b.Bytes() }())
	if err != nil {
		t.Fatal(err)
	}
	ti, data, _ := g.Tensor("x")
	if _, err := newMatrix("x", ti, data); err == nil || !strings.Contains(err.Error(), "Q8_K") {
		t.Fatalf("Q8_K tensor: %v", err)
	}
}
