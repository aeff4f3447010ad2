package blobtree

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// segments cuts data into SegmentSize pieces, the last maybe short.
func segments(data []byte) [][]byte {
	var s [][]byte
	for off := 0; off < len(data); off += SegmentSize {
		s = append(s, data[off:min(off+SegmentSize, len(data))])
	}
	return s
}

// mth is RFC 6962 §2.1's MTH written as the RFC does (recursive split at
// the largest power of two below n), independent of the package's
// bottom-up code.
func mth(segs [][]byte) [32]byte {
	switch len(segs) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, segs[0]...))
	}
	k := 1
	for k*2 < len(segs) {
		k *= 2
	}
	l, r := mth(segs[:k]), mth(segs[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// rfcPath is RFC 6962 §2.1.1's PATH(m, D[n]), leaf-up order.
func rfcPath(m int, segs [][]byte) [][32]byte {
	if len(segs) <= 1 {
		return nil
	}
	k := 1
	for k*2 < len(segs) {
		k *= 2
	}
	if m < k {
		return append(rfcPath(m, segs[:k]), mth(segs[k:]))
	}
	return append(rfcPath(m-k, segs[k:]), mth(segs[:k]))
}

func chunkRoots(data []byte) [][32]byte {
	var roots [][32]byte
	for off := 0; off < len(data); off += ChunkSize {
		roots = append(roots, ChunkRoot(data[off:min(off+ChunkSize, len(data))]))
	}
	return roots
}

// The ID is a wire format: the golden values were computed outside Go
// (Python's hashlib, the recursive MTH of RFC 6962) from the definition.
func TestBlobIDGolden(t *testing.T) {
	long := make([]byte, 200000)
	for i := range long {
		long[i] = byte((i*7 + 3) % 251)
	}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "db084fa609067dd6811a988ec1447ecd93ed6352e7f54e9e664cc7c736f471f8"},
		{"hello", []byte("hello"), "a8bf0a112cb4844a182d8932a1ded75450dfe0549f707abcc243f89f7c5058f5"},
		{"200000 bytes", long, "4bc8cda09ec72868152db1bf05a3293a683c3ce8b39592a1517683bcf20c473a"},
	} {
		id := BlobID(uint64(len(c.in)), RootOfChunks(chunkRoots(c.in)))
		if got := hex.EncodeToString(id[:]); got != c.want {
			t.Errorf("%s: id %s, want %s", c.name, got, c.want)
		}
	}
}

// The root computed from chunk roots (what the manifest keeps) is the
// plain RFC 6962 MTH over all segments, whatever the size.
func TestRootOfChunksIsRFC6962(t *testing.T) {
	for _, size := range []int{
		0, 1, 1023, 1024, 1025, 2048, 3 * 1024,
		ChunkSize - 1, ChunkSize, ChunkSize + 1,
		2 * ChunkSize, 3*ChunkSize + 5, 5 * ChunkSize, 7*ChunkSize + 1000, 9*ChunkSize - 1,
	} {
		data := testData(size, uint64(size))
		want := mth(segments(data))
		if got := RootOfChunks(chunkRoots(data)); got != want {
			t.Errorf("size %d: RootOfChunks %x, RFC 6962 MTH %x", size, got[:4], want[:4])
		}
		if got := Root(SegmentLeaves(data)); got != want {
			t.Errorf("size %d: Root %x, RFC 6962 MTH %x", size, got[:4], want[:4])
		}
		if got := NewTree(SegmentLeaves(data)).Root(); got != want {
			t.Errorf("size %d: Tree.Root %x, RFC 6962 MTH %x", size, got[:4], want[:4])
		}
		if got, want := SegmentCount(uint64(size)), uint64(len(segments(data))); got != want {
			t.Errorf("size %d: SegmentCount %d, want %d", size, got, want)
		}
	}
}

func TestCounts(t *testing.T) {
	for _, c := range []struct {
		size, segs, chunks uint64
		lastSeg, lastChunk int
	}{
		{0, 0, 0, 0, 0},
		{1, 1, 1, 1, 1},
		{1024, 1, 1, 1024, 1024},
		{1025, 2, 1, 1, 1025},
		{ChunkSize, 64, 1, 1024, ChunkSize},
		{ChunkSize + 1, 65, 2, 1, 1},
		{1 << 30, 1 << 20, 1 << 14, 1024, ChunkSize},
	} {
		if SegmentCount(c.size) != c.segs || ChunkCount(c.size) != c.chunks {
			t.Errorf("size %d: %d segments %d chunks, want %d %d", c.size, SegmentCount(c.size), ChunkCount(c.size), c.segs, c.chunks)
		}
		if c.segs > 0 && (SegmentLen(c.size, c.segs-1) != c.lastSeg || ChunkLen(c.size, c.chunks-1) != c.lastChunk) {
			t.Errorf("size %d: last segment %d chunk %d bytes, want %d %d", c.size, SegmentLen(c.size, c.segs-1), ChunkLen(c.size, c.chunks-1), c.lastSeg, c.lastChunk)
		}
		if SegmentLen(c.size, c.segs) != 0 || ChunkLen(c.size, c.chunks) != 0 {
			t.Errorf("size %d: a segment or chunk past the end has a length", c.size)
		}
	}
}

// Every index of small trees (and of trees spanning several chunks with a
// short last one): the path is RFC 6962's, it verifies, and any change to
// the segment, a path entry, the index or the path's length is refused.
func TestAuditPaths(t *testing.T) {
	sizes := []int{1, 5, 1024, 1025}
	for n := 2; n <= 17; n++ {
		sizes = append(sizes, n*1024-n) // n segments, the last short
	}
	sizes = append(sizes, 64*1024, 65*1024, 2*ChunkSize+3*1024+1, 3*ChunkSize)
	for _, size := range sizes {
		data := testData(size, uint64(size)+99)
		segs := segments(data)
		tree := NewTree(SegmentLeaves(data))
		roots := chunkRoots(data)
		id := BlobID(uint64(size), tree.Root())
		for i := range segs {
			idx := uint64(i)
			path, err := tree.Path(idx)
			if err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
			want := rfcPath(i, segs)
			if fmt.Sprint(path) != fmt.Sprint(want) {
				t.Fatalf("size %d index %d: path differs from RFC 6962 PATH", size, i)
			}
			c := i / SegmentsPerChunk
			cp, err := ChunkPath(data[c*ChunkSize:min((c+1)*ChunkSize, size)], roots, idx)
			if err != nil || fmt.Sprint(cp) != fmt.Sprint(want) {
				t.Fatalf("size %d index %d: ChunkPath differs from RFC 6962 PATH (%v)", size, i, err)
			}
			if err := VerifySegment(id, uint64(size), idx, segs[i], path); err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
			seg := append([]byte(nil), segs[i]...)
			seg[len(seg)/2] ^= 1
			if err := VerifySegment(id, uint64(size), idx, seg, path); err == nil || !strings.Contains(err.Error(), "does not belong to blob") {
				t.Fatalf("size %d index %d: flipped byte: %v", size, i, err)
			}
			for k := range path {
				bad := append([][32]byte(nil), path...)
				bad[k][0] ^= 0x80
				if err := VerifySegment(id, uint64(size), idx, segs[i], bad); err == nil || !strings.Contains(err.Error(), "does not belong to blob") {
					t.Fatalf("size %d index %d: flipped path entry %d: %v", size, i, k, err)
				}
			}
			long := append(append([][32]byte(nil), path...), [32]byte{})
			if err := VerifySegment(id, uint64(size), idx, segs[i], long); err == nil || !strings.Contains(err.Error(), "path has") {
				t.Fatalf("size %d index %d: long path: %v", size, i, err)
			}
			if len(path) > 0 {
				if err := VerifySegment(id, uint64(size), idx, segs[i], path[:len(path)-1]); err == nil || !strings.Contains(err.Error(), "path has") {
					t.Fatalf("size %d index %d: short path: %v", size, i, err)
				}
			}
			// The same segment and path claimed at another index: a wrong
			// index changes the sides or length of the path, or the root.
			for _, j := range []uint64{idx ^ 1, idx + 1, idx ^ 2} {
				if j == idx || j >= uint64(len(segs)) || len(segs[j]) != len(segs[i]) {
					continue
				}
				if err := VerifySegment(id, uint64(size), j, segs[i], path); err == nil {
					t.Fatalf("size %d: segment %d verified at index %d", size, i, j)
				}
			}
			// A wrong size is a different blob.
			if err := VerifySegment(id, uint64(size)+1, idx, segs[i], path); err == nil {
				t.Fatalf("size %d index %d: verified under size+1", size, i)
			}
		}
		if err := VerifySegment(id, uint64(size), uint64(len(segs)), nil, nil); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("size %d: index past the end: %v", size, err)
		}
	}
}

func TestVerifySegmentRefusesBadInput(t *testing.T) {
	data := testData(3000, 1) // segments of 1024, 1024, 952
	tree := NewTree(SegmentLeaves(data))
	id := BlobID(3000, tree.Root())
	path2, _ := tree.Path(2)
	for _, c := range []struct {
		name  string
		id    [32]byte
		size  uint64
		index uint64
		seg   []byte
		path  [][32]byte
		want  string
	}{
		{"ok", id, 3000, 2, data[2048:], path2, ""},
		{"empty blob", BlobID(0, Root(nil)), 0, 0, nil, nil, "out of range: a 0-byte blob has 0 segments"},
		{"index past end", id, 3000, 3, data[2048:], path2, "segment 3 out of range"},
		{"short segment", id, 3000, 2, data[2048:2999], path2, "segment 2 is 951 bytes, want 952"},
		{"full-size last", id, 3000, 2, data[1024:2048], path2, "segment 2 is 1024 bytes, want 952"},
		{"other blob", BlobID(3000, [32]byte{1}), 3000, 2, data[2048:], path2, "does not belong to blob"},
		{"no path", id, 3000, 2, data[2048:], nil, "path has 0 hashes, index 2 of 3 needs 1"},
	} {
		err := VerifySegment(c.id, c.size, c.index, c.seg, c.path)
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
}

func TestChunkPathRefusesBadInput(t *testing.T) {
	data := testData(ChunkSize+10, 3)
	roots := chunkRoots(data)
	if _, err := ChunkPath(data[ChunkSize:], roots, 128); err == nil || !strings.Contains(err.Error(), "in chunk 2, the blob has 2 chunks") {
		t.Errorf("segment past the chunks: %v", err)
	}
	if _, err := ChunkPath(data[ChunkSize:], roots, 65); err == nil || !strings.Contains(err.Error(), "leaf 1 out of a tree of 1") {
		t.Errorf("segment past a short chunk: %v", err)
	}
	if _, err := ChunkPath(nil, roots, 0); err == nil || !strings.Contains(err.Error(), "chunk 0 is 0 bytes") {
		t.Errorf("empty chunk: %v", err)
	}
}

func TestEmptyAndSingle(t *testing.T) {
	if RootOfChunks(nil) != sha256.Sum256(nil) || Root(nil) != sha256.Sum256(nil) || NewTree(nil).Root() != sha256.Sum256(nil) {
		t.Fatal("the empty tree's root is not sha256(\"\")")
	}
	if ChunkRoot([]byte("x")) != LeafHash([]byte("x")) {
		t.Fatal("a one-segment chunk's root is not its leaf")
	}
	if _, err := NewTree(nil).Path(0); err == nil || !strings.Contains(err.Error(), "leaf 0 out of a tree of 0") {
		t.Fatalf("path in an empty tree: %v", err)
	}
	var l, r [32]byte
	l[0], r[0] = 1, 2
	want := sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	if NodeHash(l, r) != want {
		t.Fatal("NodeHash is not sha256(0x01||l||r)")
	}
	big := bytes.Repeat([]byte{9}, 2000) // not a segment, hashed as defined
	if LeafHash(big) != sha256.Sum256(append([]byte{0}, big...)) {
		t.Fatal("LeafHash of a long input")
	}
}
