package merkle

import (
	"crypto/sha256"
	"slices"
	"testing"
)

func TestProofs(t *testing.T) {
	for n := 1; n <= 17; n++ {
		ids := make([][32]byte, n)
		for i := range ids {
			ids[i] = sha256.Sum256([]byte{byte(i), byte(n)})
		}
		root := Root(ids)
		for i := range ids {
			p, err := Prove(ids, i)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Verify(root, ids[i]) {
				t.Fatalf("n=%d: proof of %d fails", n, i)
			}
			if n > 1 && p.Verify(root, ids[(i+1)%n]) {
				t.Fatalf("n=%d: proof of %d verifies another id", n, i)
			}
			if !slices.Equal(LeftFlags(p.Index, p.Count), p.Left) {
				t.Fatalf("n=%d, %d: LeftFlags %v, proof %v", n, i, LeftFlags(p.Index, p.Count), p.Left)
			}
			bad := *p
			bad.Index = uint64((i + 1) % n)
			if n > 2 && bad.Verify(root, ids[i]) {
				t.Fatalf("n=%d: proof verifies at a wrong index", n)
			}
		}
	}
	if _, err := Prove(make([][32]byte, 3), 3); err == nil {
		t.Fatal("proved an index past the end")
	}
}

// TestRFC6962Hashing pins the hash form: commitments on chain and batched
// receipt signatures depend on it bit for bit.
func TestRFC6962Hashing(t *testing.T) {
	h := func(parts ...[]byte) [32]byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return sha256.Sum256(b)
	}
	a, b, c := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b")), sha256.Sum256([]byte("c"))
	la, lb, lc := h([]byte{0}, a[:]), h([]byte{0}, b[:]), h([]byte{0}, c[:])
	ab := h([]byte{1}, la[:], lb[:])
	for _, tc := range []struct {
		name string
		ids  [][32]byte
		want [32]byte
	}{
		{"empty", nil, sha256.Sum256(nil)},
		{"one leaf", [][32]byte{a}, la},
		{"two leaves", [][32]byte{a, b}, ab},
		{"odd last node promoted", [][32]byte{a, b, c}, h([]byte{1}, ab[:], lc[:])},
	} {
		if got := Root(tc.ids); got != tc.want {
			t.Errorf("%s: root %x, want %x", tc.name, got, tc.want)
		}
	}
}
