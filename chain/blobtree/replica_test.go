package blobtree

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

var (
	provA = bytes.Repeat([]byte{0xaa}, 20)
	provB = bytes.Repeat([]byte{0xbb}, 20)
)

func TestSealUnseal(t *testing.T) {
	for _, size := range []int{0, 1, 1024, 1025, ChunkSize + 7} {
		data := testData(size, uint64(size)+5)
		r := NewReplica(data, provA)
		if r.ID != BlobID(uint64(size), RootOfChunks(chunkRoots(data))) {
			t.Fatalf("size %d: replica's blob id is not the blob's", size)
		}
		rep, root := Seal(r.ID, provA, data)
		if !bytes.Equal(rep, r.Data) || root != r.Root() || root != mth(segments(rep)) {
			t.Fatalf("size %d: Seal differs from NewReplica or its root from the RFC 6962 MTH of the replica", size)
		}
		if got := Unseal(r.ID, provA, rep); !bytes.Equal(got, data) {
			t.Fatalf("size %d: Unseal does not give the data back", size)
		}
		if size >= 16 {
			if bytes.Equal(rep, data) {
				t.Fatalf("size %d: the replica is the plain data", size)
			}
			repB, rootB := Seal(r.ID, provB, data)
			if bytes.Equal(repB[:16], rep[:16]) || rootB == root {
				t.Fatalf("size %d: two providers' replicas agree", size)
			}
			if bytes.Equal(Unseal(r.ID, provB, rep), data) {
				t.Fatalf("size %d: A's replica decodes for B", size)
			}
		}
	}
}

// Encoding is chained: changing one data segment changes that replica
// segment and every one after it (through prevLeaf), none before.
func TestReplicaChaining(t *testing.T) {
	data := testData(8*1024, 11)
	id := BlobID(uint64(len(data)), Root(SegmentLeaves(data)))
	rep, _ := Seal(id, provA, data)
	data2 := append([]byte(nil), data...)
	data2[3*1024+5] ^= 1
	rep2, _ := Seal(id, provA, data2)
	for i := 0; i < 8; i++ {
		same := bytes.Equal(rep[i*1024:(i+1)*1024], rep2[i*1024:(i+1)*1024])
		if same != (i < 3) {
			t.Errorf("segment %d: replica unchanged = %v after changing data segment 3", i, same)
		}
	}
	// ReplicaSegment decodes one segment from the replica alone.
	prev := LeafHash(rep[4*1024 : 5*1024])
	if got := ReplicaSegment(id, provA, 5, prev, rep[5*1024:6*1024]); !bytes.Equal(got, data[5*1024:6*1024]) {
		t.Error("ReplicaSegment does not decode segment 5 from the replica")
	}
}

func TestReplicaProofsEveryIndex(t *testing.T) {
	for _, size := range []int{1, 1000, 1024, 3*1024 + 1, 9 * 1024, 2*ChunkSize + 2049} {
		data := testData(size, uint64(size)+17)
		r := NewReplica(data, provA)
		for i := uint64(0); i < SegmentCount(uint64(size)); i++ {
			p, err := r.Prove(i)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyReplica(r.ID, r.Size, provA, r.Root(), p); err != nil {
				t.Fatalf("size %d segment %d: %v", size, i, err)
			}
		}
		if _, err := r.Prove(SegmentCount(uint64(size))); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("size %d: proving past the end: %v", size, err)
		}
	}
}

func cloneProof(p *ReplicaProof) *ReplicaProof {
	q := *p
	q.Segment = append([]byte(nil), p.Segment...)
	q.ReplicaPath = append([][32]byte(nil), p.ReplicaPath...)
	q.PrevPath = append([][32]byte(nil), p.PrevPath...)
	q.DataPath = append([][32]byte(nil), p.DataPath...)
	return &q
}

func TestVerifyReplicaRefuses(t *testing.T) {
	data := testData(5*1024+300, 21) // 6 segments, the last short
	a := NewReplica(data, provA)
	b := NewReplica(data, provB)
	good, err := a.Prove(3)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.Prove(0)
	other := NewReplica(testData(len(data), 22), provA)
	otherProof, _ := other.Prove(3)

	type mut struct {
		name     string
		provider []byte
		root     [32]byte
		size     uint64
		p        *ReplicaProof
		want     string
	}
	with := func(base *ReplicaProof, f func(*ReplicaProof)) *ReplicaProof {
		q := cloneProof(base)
		f(q)
		return q
	}
	cases := []mut{
		{"good", provA, a.Root(), a.Size, good, ""},
		{"good index 0", provA, a.Root(), a.Size, first, ""},
		{"nil proof", provA, a.Root(), a.Size, nil, "replica proof: missing"},
		{"short provider", provA[:19], a.Root(), a.Size, good, "provider address is 19 bytes, want 20"},
		{"flipped segment byte", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.Segment[100] ^= 1 }), "segment 3: replica segment is not in replica root"},
		{"truncated segment", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.Segment = q.Segment[:1000] }), "segment 3 is 1000 bytes, want 1024"},
		{"flipped prev leaf", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.PrevLeaf[5] ^= 1 }), "previous leaf is not leaf 2 of replica root"},
		{"prev leaf on index 0", provA, a.Root(), a.Size, with(first, func(q *ReplicaProof) { q.PrevLeaf[0] = 1 }), "segment 0 has no previous leaf"},
		{"index past end", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.Index = 6 }), "segment 6 out of range"},
		{"wrong index", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.Index = 2 }), "segment 2: replica segment is not in replica root"},
		{"wrong index (path shape)", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.Index = 4 }), "segment 4: replica path: path has 3 hashes, index 4 of 6 needs 2"},
		{"replica path too long", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.ReplicaPath = append(q.ReplicaPath, q.ReplicaPath[0]) }), "replica path: path has 4 hashes, index 3 of 6 needs 3"},
		{"prev path too short", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.PrevPath = q.PrevPath[1:] }), "previous leaf path: path has 2 hashes"},
		{"data path too short", provA, a.Root(), a.Size, with(good, func(q *ReplicaProof) { q.DataPath = nil }), "decoded for provider aaaa"},
		{"wrong provider", provB, a.Root(), a.Size, good, "segment 3 decoded for provider bbbb"},
		{"wrong size", provA, a.Root(), a.Size - 1, good, "decoded for provider"},
		{"wrong replica root", provA, b.Root(), a.Size, good, "replica segment is not in replica root"},
		// Sharing one copy: B answers with A's replica under A's root (or
		// posted A's root as its own): the decoding under B's key fails.
		{"B answers with A's replica", provB, a.Root(), a.Size, good, "segment 3 decoded for provider bbbb"},
		// A replica of other data under its own root does not decode to
		// this blob.
		{"replica of other data", provA, other.Root(), a.Size, otherProof, "does not belong to blob"},
	}
	for i := range good.ReplicaPath {
		cases = append(cases, mut{fmt.Sprintf("replica path entry %d", i), provA, a.Root(), a.Size,
			with(good, func(q *ReplicaProof) { q.ReplicaPath[i][31] ^= 1 }), "replica segment is not in replica root"})
	}
	for i := range good.PrevPath {
		cases = append(cases, mut{fmt.Sprintf("prev path entry %d", i), provA, a.Root(), a.Size,
			with(good, func(q *ReplicaProof) { q.PrevPath[i][0] ^= 1 }), "previous leaf is not leaf 2"})
	}
	for i := range good.DataPath {
		cases = append(cases, mut{fmt.Sprintf("data path entry %d", i), provA, a.Root(), a.Size,
			with(good, func(q *ReplicaProof) { q.DataPath[i][7] ^= 1 }), "does not belong to blob"})
	}
	for _, c := range cases {
		err := VerifyReplica(a.ID, c.size, c.provider, c.root, c.p)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// B's own proofs pass for B, under B's root, and fail under A's.
	pb, _ := b.Prove(3)
	if err := VerifyReplica(b.ID, b.Size, provB, b.Root(), pb); err != nil {
		t.Errorf("B's own proof: %v", err)
	}
	if err := VerifyReplica(b.ID, b.Size, provA, a.Root(), pb); err == nil {
		t.Error("B's proof passed as A's")
	}
}

// FuzzVerifyReplica: arbitrary proofs never panic, and only the real
// segment with its real paths passes.
func FuzzVerifyReplica(f *testing.F) {
	data := testData(3*1024+100, 31)
	r := NewReplica(data, provA)
	p, _ := r.Prove(2)
	f.Add(uint64(2), p.Segment, p.PrevLeaf[:], uint8(0), uint8(0))
	f.Add(uint64(0), []byte{}, []byte{}, uint8(1), uint8(3))
	f.Add(uint64(3), data[3072:], make([]byte, 32), uint8(2), uint8(9))
	f.Fuzz(func(t *testing.T, index uint64, seg, prev []byte, which, cut uint8) {
		q := cloneProof(p)
		q.Index, q.Segment = index, seg
		q.PrevLeaf = [32]byte{}
		copy(q.PrevLeaf[:], prev)
		switch which % 4 {
		case 1:
			q.ReplicaPath = q.ReplicaPath[:int(cut)%(len(q.ReplicaPath)+1)]
		case 2:
			q.PrevPath = q.PrevPath[:int(cut)%(len(q.PrevPath)+1)]
		case 3:
			q.DataPath = q.DataPath[:int(cut)%(len(q.DataPath)+1)]
		}
		err := VerifyReplica(r.ID, r.Size, provA, r.Root(), q)
		genuine := index == 2 && bytes.Equal(seg, p.Segment) && q.PrevLeaf == p.PrevLeaf &&
			len(q.ReplicaPath) == len(p.ReplicaPath) && len(q.PrevPath) == len(p.PrevPath) && len(q.DataPath) == len(p.DataPath)
		if (err == nil) != genuine {
			t.Fatalf("index %d: genuine=%v err=%v", index, genuine, err)
		}
	})
}
