package replicastore

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/protocol/blob"
)

var (
	provA = bytes.Repeat([]byte{0xa1}, 20)
	provB = bytes.Repeat([]byte{0xb2}, 20)
)

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func seal(t *testing.T, s *Store, data, provider []byte) Info {
	t.Helper()
	info, err := s.Seal(blob.Of(data), uint64(len(data)), bytes.NewReader(data), provider, nil)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestSealProveRead(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 1024, 1025, blobtree.ChunkSize, blobtree.ChunkSize + 1, 3*blobtree.ChunkSize + 5000} {
		data := testData(size, uint64(size))
		id := blob.Of(data)
		info := seal(t, s, data, provA)
		wantRep, wantRoot := blobtree.Seal(id, provA, data)
		if info.BlobID != id || info.Size != uint64(size) || !bytes.Equal(info.Provider, provA) || info.ReplicaRoot != wantRoot {
			t.Fatalf("size %d: info %+v, want root %x", size, info, wantRoot[:4])
		}
		onDisk, err := os.ReadFile(s.path(id, ".replica"))
		if err != nil || !bytes.Equal(onDisk, wantRep) {
			t.Fatalf("size %d: the replica file is not blobtree.Seal's replica (%v)", size, err)
		}
		if m, err := s.Manifest(id); err != nil || m.ID() != id {
			t.Fatalf("size %d: manifest: %v", size, err)
		}
		n := blobtree.SegmentCount(uint64(size))
		all := make([]uint64, n)
		for i := range all {
			all[i] = uint64(i)
		}
		// Every segment, in a shuffled order with repeats.
		idx := append(slices.Clone(all), all...)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		proofs, err := s.Prove(id, idx)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		for k := range proofs {
			if proofs[k].Index != idx[k] {
				t.Fatalf("size %d: proof %d is for segment %d, asked %d", size, k, proofs[k].Index, idx[k])
			}
			if err := blobtree.VerifyReplica(id, uint64(size), provA, info.ReplicaRoot, &proofs[k]); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if err := blobtree.VerifyReplica(id, uint64(size), provB, info.ReplicaRoot, &proofs[k]); err == nil {
				t.Fatalf("size %d: A's proof of segment %d passes for B", size, idx[k])
			}
		}
		if _, err := s.Prove(id, []uint64{n}); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("size %d: proof past the end: %v", size, err)
		}
		d, err := s.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(d)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: decoded %d bytes (%v), not the data", size, len(got), err)
		}
		if size > 3000 {
			buf := make([]byte, 3000)
			off := int64(size) - 3100
			if _, err := d.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+3000]) {
				t.Fatalf("size %d: ReadAt: %v", size, err)
			}
			if k, err := d.ReadAt(buf, int64(size)-10); k != 10 || err != io.EOF || !bytes.Equal(buf[:10], data[size-10:]) {
				t.Fatalf("size %d: ReadAt at the end: %d %v", size, k, err)
			}
			if pos, err := d.Seek(-2000, io.SeekEnd); err != nil || pos != int64(size)-2000 {
				t.Fatalf("size %d: seek: %d %v", size, pos, err)
			}
			rest, err := io.ReadAll(d)
			if err != nil || !bytes.Equal(rest, data[size-2000:]) {
				t.Fatalf("size %d: read after seek: %d bytes, %v", size, len(rest), err)
			}
		}
		d.Close()
	}
	list, err := s.List()
	if err != nil || len(list) != 7 {
		t.Fatalf("list: %d replicas, %v", len(list), err)
	}
	// A reopened store answers from disk.
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	data := testData(3*blobtree.ChunkSize+5000, 3*blobtree.ChunkSize+5000)
	info, err := s2.Info(blob.Of(data))
	if err != nil || info.ReplicaRoot != list[slices.IndexFunc(list, func(i Info) bool { return i.BlobID == blob.Of(data) })].ReplicaRoot {
		t.Fatalf("reopened: %v", err)
	}
	ps, err := s2.Prove(info.BlobID, []uint64{0, 64, 196})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if err := blobtree.VerifyReplica(info.BlobID, info.Size, provA, info.ReplicaRoot, &ps[i]); err != nil {
			t.Fatal(err)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestSealRefuses(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	data := testData(2*blobtree.ChunkSize+7, 9)
	id := blob.Of(data)
	other := blob.Of([]byte("other"))
	size := uint64(len(data))
	for _, c := range []struct {
		name     string
		id       [32]byte
		size     uint64
		r        io.Reader
		provider []byte
		want     string
	}{
		{"wrong id", other, size, bytes.NewReader(data), provA, "blob hashes to " + id.String()},
		{"short", id, size + 1, bytes.NewReader(data), provA, "shorter than"},
		{"long", id, size - 1, bytes.NewReader(data), provA, "longer than"},
		{"provider", id, size, bytes.NewReader(data), provA[:19], "provider address is 19 bytes, want 20"},
	} {
		_, err := s.Seal(c.id, c.size, c.r, c.provider, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	var mm *MismatchError
	if _, err := s.Seal(other, size, bytes.NewReader(data), provA, nil); !errors.As(err, &mm) || mm.Got != id {
		t.Errorf("mismatch error: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("refused seals left %d files", len(ents))
	}
	if _, err := s.Prove(id, []uint64{0}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("prove of an unsealed blob: %v", err)
	}
	info := seal(t, s, data, provA)
	again, err := s.Seal(id, size, failReader{}, provA, nil)
	if err != nil || again.ReplicaRoot != info.ReplicaRoot {
		t.Fatalf("sealing again: %v", err)
	}
	if _, err := s.Seal(id, size, failReader{}, provB, nil); err == nil || !strings.Contains(err.Error(), "for provider a1a1") {
		t.Fatalf("sealing for another provider: %v", err)
	}
}

func TestProgressRemoveList(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := testData(3<<20+100, 4)
	var calls []uint64
	info, err := s.Seal(blob.Of(data), uint64(len(data)), bytes.NewReader(data), provA, func(done, total uint64) {
		if total != uint64(len(data)) {
			t.Errorf("progress total %d", total)
		}
		calls = append(calls, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 || calls[len(calls)-1] != uint64(len(data)) || !slices.IsSorted(calls) {
		t.Fatalf("progress calls %v", calls)
	}
	small := seal(t, s, []byte("small"), provA)
	list, _ := s.List()
	if len(list) != 2 {
		t.Fatalf("list %d", len(list))
	}
	if err := s.Remove(info.BlobID); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(info.BlobID); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	list, _ = s.List()
	if len(list) != 1 || list[0].BlobID != small.BlobID {
		t.Fatalf("after remove: %+v", list)
	}
	if _, err := s.Prove(info.BlobID, []uint64{0}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("prove after remove: %v", err)
	}
}

// A crash mid-seal leaves temp files or a replica without its meta file:
// Open removes them and keeps complete replicas.
func TestOpenCleansUp(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	info := seal(t, s, testData(5000, 1), provA)
	orphan := blob.Of([]byte("orphan"))
	for _, name := range []string{orphan.String() + ".replica", orphan.String() + ".replica.tmp", orphan.String() + ".meta.tmp"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	id := blob.ID(info.BlobID).String()
	if !slices.Equal(names, []string{id + ".meta", id + ".replica"}) {
		t.Fatalf("after open: %v", names)
	}
	// A meta file that does not match its chunk roots is refused.
	meta := filepath.Join(dir, id+".meta")
	b, _ := os.ReadFile(meta)
	b[len(b)-33] ^= 1 // the replica chunk root (the last leaf follows)
	os.WriteFile(meta, b, 0o600)
	s2, _ := Open(dir)
	if _, err := s2.Prove(info.BlobID, []uint64{0}); err == nil || !strings.Contains(err.Error(), "replica chunk roots do not give its replica root") {
		t.Fatalf("corrupt meta: %v", err)
	}
}

// A replica with 10 % of its chunks zeroed or deleted (the file cut short)
// fails exactly the challenges that land in them: a proof of segment i
// carries replica segment i and the leaf of segment i−1, so it fails when
// either is damaged, and passes otherwise.
func TestDamagedReplica(t *testing.T) {
	const chunks = 40
	s, _ := Open(t.TempDir())
	data := testData(chunks*blobtree.ChunkSize-300, 8) // the last chunk short
	info := seal(t, s, data, provA)
	id := info.BlobID
	damaged := map[uint64]bool{3: true, 17: true, 18: true, 39: true} // 4 of 40
	path := s.path(id, ".replica")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, blobtree.ChunkSize)
	for _, c := range []int64{3, 17, 18} {
		f.WriteAt(zero, c*blobtree.ChunkSize)
	}
	f.Truncate(39 * blobtree.ChunkSize) // chunk 39 deleted
	f.Close()

	fails := func(i uint64) bool {
		return damaged[i/blobtree.SegmentsPerChunk] || (i > 0 && damaged[(i-1)/blobtree.SegmentsPerChunk])
	}
	check := func(indices []uint64) (failed int) {
		proofs, err := s.Prove(id, indices)
		var de *DamageError
		wantDamage := map[uint64]bool{}
		for _, i := range indices {
			if fails(i) {
				c := i / blobtree.SegmentsPerChunk
				if !damaged[c] {
					c--
				}
				wantDamage[c] = true
			}
		}
		if len(wantDamage) > 0 {
			if !errors.As(err, &de) || len(de.Chunks) != len(wantDamage) {
				t.Fatalf("prove %d indices: %v, want damage in %v", len(indices), err, wantDamage)
			}
			for _, c := range de.Chunks {
				if !wantDamage[c] {
					t.Fatalf("damage reported in chunk %d", c)
				}
			}
		} else if err != nil {
			t.Fatal(err)
		}
		for k := range proofs {
			err := blobtree.VerifyReplica(id, info.Size, provA, info.ReplicaRoot, &proofs[k])
			if (err != nil) != fails(indices[k]) {
				t.Fatalf("segment %d (chunk %d): verify error %v, expected failure %v", indices[k], indices[k]/64, err, fails(indices[k]))
			}
			if err != nil {
				failed++
			}
		}
		return failed
	}
	n := blobtree.SegmentCount(info.Size)
	all := make([]uint64, n)
	for i := range all {
		all[i] = uint64(i)
	}
	// 4 damaged chunks of 64 segments, plus the first segment after 3 and
	// after 18 (17 and 18 are adjacent; 39 is last).
	if got := check(all); got != 4*64+2 {
		t.Fatalf("%d of %d segments fail, want %d", got, n, 4*64+2)
	}
	caught := 0
	for epoch := uint64(0); epoch < 200; epoch++ {
		if check(blobtree.Challenges([]byte("seed"), 1, epoch, n, 16)) > 0 {
			caught++
		}
	}
	// (1 − 0.1)^16 ≈ 0.185 of epochs pass: about 163 of 200 are caught.
	if caught < 140 || caught > 185 {
		t.Fatalf("%d of 200 epochs caught", caught)
	}
	// Reading the data back refuses the damaged chunks.
	d, _ := s.Open(id)
	defer d.Close()
	buf := make([]byte, 100)
	if _, err := d.ReadAt(buf, 2*blobtree.ChunkSize); err != nil || !bytes.Equal(buf, data[2*blobtree.ChunkSize:][:100]) {
		t.Fatalf("reading a sound chunk: %v", err)
	}
	var de *DamageError
	if _, err := d.ReadAt(buf, 3*blobtree.ChunkSize+10); !errors.As(err, &de) || !slices.Equal(de.Chunks, []uint64{3}) {
		t.Fatalf("reading a zeroed chunk: %v", err)
	}
	if _, err := io.ReadAll(d); !errors.As(err, &de) {
		t.Fatalf("reading the whole damaged replica: %v", err)
	}
}
