package native

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// TestDotF32x4: the four-row dot gives each row DotF32's bits, SIMD on and
// off, for lengths with and without a tail.
func TestDotF32x4(t *testing.T) {
	defer SetSIMD(SetSIMD(true))
	r := NewRNG(3)
	for _, n := range []int{1, 7, 8, 13, 64, 100} {
		w := make([]float32, n)
		x := make([]float32, 4*n)
		for i := range w {
			w[i] = float32(r.Float64()*2 - 1)
		}
		for i := range x {
			x[i] = float32(r.Float64()*2 - 1)
		}
		for _, simd := range []bool{true, false} {
			SetSIMD(simd)
			var out [4]float32
			DotF32x4(w, x, &out)
			SetSIMD(false)
			for k := 0; k < 4; k++ {
				if want := dotF32(w, x[k*n:(k+1)*n]); math.Float32bits(out[k]) != math.Float32bits(want) {
					t.Errorf("n %d simd %v row %d: %v, pure-Go one row %v", n, simd, k, out[k], want)
				}
			}
		}
	}
}

// TestGivenWeights: a model written from given weights refuses a missing
// or mis-sized tensor, and otherwise stores exactly the values given.
func TestGivenWeights(t *testing.T) {
	o := GenOptions{Dim: 32, Layers: 1, Heads: 2, FFN: 64, Vocab: 300, Context: 8, Type: gguf.F32, Tied: true}
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.gguf")
	if err := WriteRandomModel(ref, o); err != nil {
		t.Fatal(err)
	}
	m, err := Load(ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	weights := map[string][]float32{}
	for _, ti := range m.File.Tensors {
		v := make([]float32, ti.Elements())
		for i := range v {
			v[i] = float32(i%7) * 0.125
		}
		weights[ti.Name] = v
	}
	m.Close()
	o.Weights = weights
	path := filepath.Join(dir, "given.gguf")
	if err := WriteRandomModel(path, o); err != nil {
		t.Fatal(err)
	}
	m, err = Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, 32)
	m.tokEmbd.Row(5, row)
	m.Close()
	for i, v := range row {
		if want := weights["token_embd.weight"][5*32+i]; v != want {
			t.Fatalf("token_embd row 5 [%d] = %v, given %v", i, v, want)
		}
	}
	short := map[string][]float32{}
	for k, v := range weights {
		short[k] = v
	}
	short["blk.0.ffn_up.weight"] = short["blk.0.ffn_up.weight"][:10]
	delete(weights, "output_norm.weight")
	for _, tc := range []struct {
		w    map[string][]float32
		want string
	}{
		{weights, "no weights given for tensor output_norm.weight"},
		{short, "tensor blk.0.ffn_up.weight: 10 values given, want 2048"},
	} {
		o.Weights = tc.w
		if err := WriteRandomModel(filepath.Join(dir, "bad.gguf"), o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
