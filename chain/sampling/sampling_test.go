package sampling

import (
	"crypto/sha256"
	"testing"
)

func TestRateAndCount(t *testing.T) {
	if r := Rate(100, 1000, 0); r != 1000 {
		t.Fatalf("no reputation: %d", r)
	}
	if r := Rate(100, 1000, 10000); r != 100 {
		t.Fatalf("full reputation: %d", r)
	}
	if r := Rate(100, 1000, 5000); r != 550 {
		t.Fatalf("half: %d", r)
	}
	for _, c := range []struct{ n, bps, want uint64 }{{0, 300, 0}, {1, 300, 1}, {100, 300, 3}, {101, 300, 4}, {10, 0, 0}, {5, 20000, 5}, {1 << 40, 2000, Max}, {^uint64(0), 10000, Max}} {
		if got := Count(c.n, c.bps); got != c.want {
			t.Errorf("Count(%d, %d) = %d, want %d", c.n, c.bps, got, c.want)
		}
	}
}

func TestIndices(t *testing.T) {
	seed := sha256.Sum256([]byte("seed"))
	prov := []byte("provider-address-20b")
	a := Indices(seed[:], prov, 1000, 30)
	b := Indices(seed[:], prov, 1000, 30)
	if len(a) != 30 {
		t.Fatalf("%d indices", len(a))
	}
	seen := map[uint64]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("not deterministic")
		}
		if a[i] >= 1000 || seen[a[i]] {
			t.Fatalf("index %d out of range or repeated", a[i])
		}
		seen[a[i]] = true
	}
	other := Indices(seed[:], []byte("another-provider-20b"), 1000, 30)
	same := 0
	for i := range a {
		if a[i] == other[i] {
			same++
		}
	}
	if same > 3 {
		t.Fatal("different providers get the same sample")
	}
	// all of a small log when k >= count
	all := Indices(seed[:], prov, 5, 10)
	if len(all) != 5 {
		t.Fatalf("k > count gave %d", len(all))
	}
	// roughly uniform: each of 10 indices drawn about 1/10 of the time over many seeds
	counts := make([]int, 10)
	for s := 0; s < 5000; s++ {
		sd := sha256.Sum256([]byte{byte(s), byte(s >> 8)})
		counts[Indices(sd[:], prov, 10, 1)[0]]++
	}
	for i, c := range counts {
		if c < 380 || c > 620 {
			t.Fatalf("index %d drawn %d times of 5000", i, c)
		}
	}
}

func TestSampleFollowsReputation(t *testing.T) {
	seed := sha256.Sum256([]byte("s"))
	prov := []byte("provider-address-20b")
	if got := len(Sample(seed[:], prov, 1000, 300, 2000, 0)); got != 200 {
		t.Fatalf("new provider: %d samples, want 200 (20 %%)", got)
	}
	if got := len(Sample(seed[:], prov, 1000, 300, 2000, 10000)); got != 30 {
		t.Fatalf("full reputation: %d samples, want 30 (3 %%)", got)
	}
	a, b := Sample(seed[:], prov, 1000, 300, 2000, 10000), Indices(seed[:], prov, 1000, 30)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("Sample differs from Indices at the same count")
		}
	}
}

// TestSampleVector pins the draws: they are consensus (the chain rejects a
// report of a receipt it did not sample), so a change of hashing, order or
// count would fork the network. Recorded from the rule before it moved
// here from package verify.
func TestSampleVector(t *testing.T) {
	seed := sha256.Sum256([]byte("golden"))
	got := Sample(seed[:], []byte("provider-address-20b"), 1000, 300, 2000, 5000)
	if len(got) != 115 { // ceil(1000 × 1150 / 10000)
		t.Fatalf("%d samples, want 115", len(got))
	}
	want := []uint64{635, 958, 46, 906, 38, 429, 165, 580, 703, 915, 881, 657}
	for i, w := range want {
		if got[i] != w {
			t.Fatalf("draw %d = %d, want %d (first draws %v)", i, got[i], w, got[:len(want)])
		}
	}
}
