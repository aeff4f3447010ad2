package blobtree

import (
	"testing"
)

// benchBlob is a 64 MiB blob in memory (2^16 segments, 1,024 chunks).
const benchBlob = 64 << 20

var benchData []byte

func data64M(b *testing.B) []byte {
	if benchData == nil {
		benchData = testData(benchBlob, 64)
	}
	b.ResetTimer()
	return benchData
}

// BenchmarkTreeBuild: the blob root of 64 MiB as a manifest builder computes
// it (every chunk's root, then the root of the chunk roots).
func BenchmarkTreeBuild(b *testing.B) {
	data := data64M(b)
	b.SetBytes(benchBlob)
	for b.Loop() {
		roots := make([][32]byte, 0, benchBlob/ChunkSize)
		for off := 0; off < len(data); off += ChunkSize {
			roots = append(roots, ChunkRoot(data[off:off+ChunkSize]))
		}
		_ = RootOfChunks(roots)
	}
}

// BenchmarkTreeBuildFull: the whole tree with every level kept (what an
// in-memory prover holds).
func BenchmarkTreeBuildFull(b *testing.B) {
	data := data64M(b)
	b.SetBytes(benchBlob)
	for b.Loop() {
		_ = NewTree(SegmentLeaves(data)).Root()
	}
}

// BenchmarkEncode: sealing speed of the replica encoding alone (one ChaCha20
// keystream and one leaf hash per segment, strictly sequential).
func BenchmarkEncode(b *testing.B) {
	data := data64M(b)
	id := BlobID(benchBlob, [32]byte{1})
	dst := make([]byte, SegmentSize)
	b.SetBytes(benchBlob)
	for b.Loop() {
		e := NewEncoder(id, provA)
		for off := 0; off < len(data); off += SegmentSize {
			e.Next(dst, data[off:off+SegmentSize])
		}
	}
}

// BenchmarkRecreateSegment: what a provider that kept only the raw data (or
// shares another provider's copy) pays to answer a challenge on segment i of
// its replica: i+1 sequential segment encodings. Here i = 2^16 − 1, the last
// segment of 64 MiB; the cost is linear in i (ns/op ÷ 65,536 per segment).
func BenchmarkRecreateSegment(b *testing.B) {
	data := data64M(b)
	id := BlobID(benchBlob, [32]byte{1})
	dst := make([]byte, SegmentSize)
	n := benchBlob / SegmentSize
	for b.Loop() {
		e := NewEncoder(id, provA)
		for i := 0; i < n; i++ {
			e.Next(dst, data[i*SegmentSize:(i+1)*SegmentSize])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/segment")
}

// BenchmarkVerifyEpoch: one epoch's k = 16 replica proofs checked, on a
// 64 MiB blob (paths of 16 hashes; a 1 GiB blob's have 20: see the
// replicastore benchmark).
func BenchmarkVerifyEpoch(b *testing.B) {
	data := data64M(b)
	r := NewReplica(data, provA)
	var proofs []*ReplicaProof
	for _, i := range Challenges([]byte("bench"), 1, 1, SegmentCount(benchBlob), 16) {
		p, err := r.Prove(i)
		if err != nil {
			b.Fatal(err)
		}
		proofs = append(proofs, p)
	}
	root := r.Root()
	b.ResetTimer()
	for b.Loop() {
		for _, p := range proofs {
			if err := VerifyReplica(r.ID, r.Size, provA, root, p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkChallenges: drawing one deal's k = 16 indices for an epoch.
func BenchmarkChallenges(b *testing.B) {
	seed := make([]byte, 32)
	for b.Loop() {
		_ = Challenges(seed, 7, 9, 1<<20, 16)
	}
}

// BenchmarkRecreateChunkFromCheckpoint: the same colluder, had it kept the
// replica leaf at every chunk boundary (32 bytes per 64 KiB): re-encoding
// one chunk (64 segments) from that checkpoint and hashing its replica
// leaves gives any segment of it with its path inside the chunk.
func BenchmarkRecreateChunkFromCheckpoint(b *testing.B) {
	data := data64M(b)
	id := BlobID(benchBlob, [32]byte{1})
	dst := make([]byte, ChunkSize)
	var leaves [SegmentsPerChunk][32]byte
	for b.Loop() {
		e := NewEncoder(id, provA)
		e.index, e.prev = 500*SegmentsPerChunk, [32]byte{7} // resume at chunk 500
		chunk := data[500*ChunkSize : 501*ChunkSize]
		for j := range SegmentsPerChunk {
			leaves[j] = e.Next(dst[j*SegmentSize:(j+1)*SegmentSize], chunk[j*SegmentSize:(j+1)*SegmentSize])
		}
		_, _ = NewTree(leaves[:]).Path(17)
	}
}
