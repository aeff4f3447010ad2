package native

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// topK then sort must give exactly the full sort truncated to k, ties included.
func TestTopKMatchesFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(500)
		cs := make([]cand, n)
		for i := range cs {
			cs[i] = cand{i, float32(rng.IntN(40)) / 4} // many ties
		}
		full := append([]cand(nil), cs...)
		sort.Slice(full, func(a, b int) bool { return full[a].before(full[b]) })
		for _, k := range []int{1, 2, 7, 40, n - 1} {
			if k < 1 || k >= n {
				continue
			}
			got := topK(cs, k)
			sort.Slice(got, func(a, b int) bool { return got[a].before(got[b]) })
			for i := 0; i < k; i++ {
				if got[i] != full[i] {
					t.Fatalf("n=%d k=%d: position %d is %+v, full sort has %+v", n, k, i, got[i], full[i])
				}
			}
		}
	}
}
