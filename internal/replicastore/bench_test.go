package replicastore

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/protocol/blob"
)

// The 1 GiB replica is sealed once per benchmark run, in a temp dir that
// TestMain removes.
var big struct {
	once sync.Once
	dir  string
	s    *Store
	info Info
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// gen is size deterministic bytes (ChaCha8 from a fixed seed).
func gen(size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{'a', 'g', 'o', 'r', 'a'}), size)
}

const gib = 1 << 30

func bigReplica(b *testing.B) (*Store, Info) {
	big.once.Do(func() {
		if big.dir, big.err = os.MkdirTemp("", "agora-replica-bench-"); big.err != nil {
			return
		}
		var m *blob.Manifest
		if m, big.err = blob.Compute(gen(gib)); big.err != nil {
			return
		}
		if big.s, big.err = Open(big.dir); big.err != nil {
			return
		}
		start := time.Now()
		big.info, big.err = big.s.Seal(m.ID(), gib, gen(gib), provA, nil)
		fmt.Fprintf(os.Stderr, "sealed 1 GiB in %.1f s (%.0f MB/s)\n", time.Since(start).Seconds(), gib/1e6/time.Since(start).Seconds())
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	b.ResetTimer()
	return big.s, big.info
}

// BenchmarkSeal: sealing throughput of a 64 MiB blob into a fresh store
// (read, chunk roots, encode, replica roots, write, fsync, rename).
func BenchmarkSeal(b *testing.B) {
	const size = 64 << 20
	m, err := blob.Compute(gen(size))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "agora-seal-bench-")
		if err != nil {
			b.Fatal(err)
		}
		s, _ := Open(dir)
		b.StartTimer()
		if _, err := s.Seal(m.ID(), size, gen(size), provA, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

func proofBytes(ps []blobtree.ReplicaProof) int {
	n := 0
	for _, p := range ps {
		n += 8 + len(p.Segment) + 32 + 32*(len(p.ReplicaPath)+len(p.PrevPath)+len(p.DataPath))
	}
	return n
}

// BenchmarkProve1GiB: one epoch's k = 16 proofs from a 1 GiB replica (the
// store's meta loaded; the file in the page cache, as it was just written).
func BenchmarkProve1GiB(b *testing.B) {
	s, info := bigReplica(b)
	segs := blobtree.SegmentCount(info.Size)
	epoch := uint64(0)
	var ps []blobtree.ReplicaProof
	for b.Loop() {
		epoch++
		var err error
		if ps, err = s.Prove(info.BlobID, blobtree.Challenges([]byte("bench"), 1, epoch, segs, 16)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(proofBytes(ps)), "proof-bytes")
}

// BenchmarkProve1GiBCold: the same from a fresh store (its meta file read
// and its chunk-root trees built) with the replica's pages dropped from the
// page cache first (posix_fadvise DONTNEED on that file only): the
// challenged chunks come from the disk.
func BenchmarkProve1GiBCold(b *testing.B) {
	_, info := bigReplica(b)
	segs := blobtree.SegmentCount(info.Size)
	epoch := uint64(1000)
	for b.Loop() {
		b.StopTimer()
		f, err := os.Open(big.s.path(info.BlobID, ".replica"))
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
		f.Close()
		s, _ := Open(big.dir)
		epoch++
		b.StartTimer()
		if _, err := s.Prove(info.BlobID, blobtree.Challenges([]byte("bench"), 1, epoch, segs, 16)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify1GiB: checking one epoch's k = 16 proofs of a 1 GiB blob
// (what the chain does per deal per epoch).
func BenchmarkVerify1GiB(b *testing.B) {
	s, info := bigReplica(b)
	ps, err := s.Prove(info.BlobID, blobtree.Challenges([]byte("bench"), 1, 1, blobtree.SegmentCount(info.Size), 16))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		for i := range ps {
			if err := blobtree.VerifyReplica(info.BlobID, info.Size, provA, info.ReplicaRoot, &ps[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRead1GiB: decoding the replica back to the blob's bytes, what
// serving the data to the client costs.
func BenchmarkRead64MiB(b *testing.B) {
	s, info := bigReplica(b)
	d, err := s.Open(info.BlobID)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.SetBytes(64 << 20)
	buf := make([]byte, 1<<20)
	for b.Loop() {
		for off := int64(0); off < 64<<20; off += int64(len(buf)) {
			if _, err := d.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}
