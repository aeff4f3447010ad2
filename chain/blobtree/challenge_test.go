package blobtree

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
)

func TestChallengesDeterministicAndInRange(t *testing.T) {
	seed := []byte("epoch seed")
	for _, segs := range []uint64{1, 2, 3, 64, 1000, 1 << 20, 1<<20 + 1} {
		a := Challenges(seed, 7, 9, segs, 16)
		b := Challenges(seed, 7, 9, segs, 16)
		if len(a) != 16 || !slices.Equal(a, b) {
			t.Fatalf("%d segments: %v then %v", segs, a, b)
		}
		for _, v := range a {
			if v >= segs {
				t.Fatalf("%d segments: challenge %d out of range", segs, v)
			}
		}
		if segs == 1 && !slices.Equal(a, make([]uint64, 16)) {
			t.Fatalf("one segment: %v, want all 0", a)
		}
	}
	base := Challenges(seed, 7, 9, 1<<20, 16)
	for name, other := range map[string][]uint64{
		"seed":  Challenges([]byte("epoch seee"), 7, 9, 1<<20, 16),
		"deal":  Challenges(seed, 8, 9, 1<<20, 16),
		"epoch": Challenges(seed, 7, 10, 1<<20, 16),
	} {
		if slices.Equal(base, other) {
			t.Errorf("another %s gives the same challenges", name)
		}
	}
	// A shorter draw is a prefix of a longer one (one stream per deal and
	// epoch).
	if !slices.Equal(Challenges(seed, 7, 9, 1<<20, 5), base[:5]) {
		t.Error("k=5 is not a prefix of k=16")
	}
	if Challenges(seed, 7, 9, 100, 0) != nil || Challenges(seed, 7, 9, 100, -1) != nil || Challenges(seed, 7, 9, 0, 16) != nil {
		t.Error("k <= 0 or no segments must give no challenges")
	}
}

// The stream is the documented one: block 0 of sha256 counter mode, read as
// big-endian uint64s, for a range where nothing is rejected (a power of
// two).
func TestChallengesStream(t *testing.T) {
	seed := []byte{1, 2, 3}
	b := []byte("agora-storage-challenge/v1")
	b = append(b, seed...)
	b = binary.BigEndian.AppendUint64(b, 5)
	b = binary.BigEndian.AppendUint64(b, 6)
	var want []uint64
	for j := uint64(0); j < 2; j++ {
		blk := sha256.Sum256(binary.BigEndian.AppendUint64(append([]byte(nil), b...), j))
		for i := 0; i < 4; i++ {
			want = append(want, binary.BigEndian.Uint64(blk[8*i:])%(1<<20))
		}
	}
	if got := Challenges(seed, 5, 6, 1<<20, 8); !slices.Equal(got, want) {
		t.Fatalf("challenges %v, want %v", got, want)
	}
}

// pick rejects the draws below 2^64 mod n, the ones a plain modulo would
// fold onto the low values.
func TestPickRejects(t *testing.T) {
	n := uint64(1<<63 + 1) // 2^64 mod n = 2^63 - 1
	src := []uint64{5, 1<<63 - 2, 1<<63 - 1 + 42}
	next := func() uint64 { v := src[0]; src = src[1:]; return v }
	if got := pick(next, n); got != (1<<63-1+42)%n {
		t.Fatalf("pick = %d, want the third draw mod n", got)
	}
	if len(src) != 0 {
		t.Fatal("pick did not consume the rejected draws")
	}
	// Powers of two reject nothing.
	src = []uint64{0}
	if got := pick(next, 1024); got != 0 {
		t.Fatalf("pick(0, 1024) = %d", got)
	}
}

// With segments = 3·2^62, 2^64 mod segments = 2^62: a biased modulo would
// put half the draws in the first third of the range; rejection sampling
// puts a third there.
func TestChallengesNoModuloBias(t *testing.T) {
	segs := uint64(3) << 62
	low, total := 0, 0
	for deal := uint64(0); deal < 600; deal++ {
		for _, v := range Challenges([]byte("bias"), deal, 1, segs, 16) {
			total++
			if v < 1<<62 {
				low++
			}
		}
	}
	// 9,600 draws: a third is 3,200 ± 46 (one sigma); a half is 4,800.
	if low < 2950 || low > 3450 {
		t.Fatalf("%d of %d draws in the first third, want about %d", low, total, total/3)
	}
}
