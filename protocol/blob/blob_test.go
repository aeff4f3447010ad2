package blob

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/blobtree"
)

func data(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// The ID is a wire format: a change to it must be deliberate. The golden
// values were computed outside Go (Python's hashlib) from the definition.
func TestIDGolden(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"", "db084fa609067dd6811a988ec1447ecd93ed6352e7f54e9e664cc7c736f471f8"},
		{"hello", "a8bf0a112cb4844a182d8932a1ded75450dfe0549f707abcc243f89f7c5058f5"},
	} {
		if got := Of([]byte(c.in)).String(); got != c.want {
			t.Errorf("id of %q = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestManifestAndProofs(t *testing.T) {
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5, 8 * ChunkSize} {
		b := data(size, uint64(size))
		m, err := Compute(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		id := Of(b)
		if m.ID() != id || m.Size != uint64(size) || uint64(len(m.Chunks)) != ChunkCount(uint64(size)) {
			t.Fatalf("size %d: manifest %d bytes %d chunks id %s, want id %s", size, m.Size, len(m.Chunks), m.ID(), id)
		}
		if err := m.Check(id); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		enc, _ := m.MarshalBinary()
		var back Manifest
		if err := back.UnmarshalBinary(enc); err != nil || back.ID() != id {
			t.Fatalf("size %d: manifest round trip: %v", size, err)
		}
		// Writing in odd pieces gives the same manifest.
		var bl Builder
		for rest := b; len(rest) > 0; {
			k := min(len(rest), 1+len(rest)%9999)
			bl.Write(rest[:k])
			rest = rest[k:]
		}
		if bl.Manifest().ID() != id {
			t.Fatalf("size %d: piecewise writes give another id", size)
		}
		for i := uint64(0); i < ChunkCount(uint64(size)); i++ {
			chunk := b[i*ChunkSize : i*ChunkSize+uint64(ChunkLen(uint64(size), i))]
			p, err := m.Prove(i)
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(p)
			var q Proof
			if err := json.Unmarshal(js, &q); err != nil {
				t.Fatal(err)
			}
			if err := q.Verify(id, chunk); err != nil {
				t.Fatalf("size %d chunk %d: %v", size, i, err)
			}
			bad := append([]byte(nil), chunk...)
			bad[len(bad)/2] ^= 1
			if err := q.Verify(id, bad); err == nil || !strings.Contains(err.Error(), "does not belong") {
				t.Fatalf("size %d chunk %d: flipped byte accepted (%v)", size, i, err)
			}
			if len(q.Siblings) > 0 {
				q2 := q
				q2.Siblings = append([][32]byte(nil), q.Siblings...)
				q2.Siblings[0][0] ^= 1
				if q2.Verify(id, chunk) == nil {
					t.Fatalf("size %d chunk %d: forged sibling accepted", size, i)
				}
				q3 := q
				q3.Index = (q.Index + 1) % ChunkCount(q.Size)
				if q3.Index != q.Index && q3.Verify(id, chunk) == nil {
					t.Fatalf("size %d chunk %d: proof accepted at index %d", size, i, q3.Index)
				}
			}
			q4 := q
			q4.Size++
			if q4.Verify(id, chunk) == nil {
				t.Fatalf("size %d chunk %d: proof accepted with size+1", size, i)
			}
		}
	}
}

func TestManifestRefused(t *testing.T) {
	m, _ := Compute(bytes.NewReader(data(3*ChunkSize, 3)))
	enc, _ := m.MarshalBinary()
	other := Of([]byte("other"))
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not an agora manifest"},
		{"bad magic", append([]byte("agora-manifest/v3\n"), enc[18:]...), "not an agora manifest"},
		{"version 1", append([]byte("agora-manifest/v1\n"), enc[18:]...), "version 1 (chunk sha256 hashes, blob ids v1) is no longer read"},
		{"truncated", enc[:len(enc)-1], "bytes of chunk roots"},
		{"extra", append(append([]byte(nil), enc...), 0), "bytes of chunk roots"},
		{"huge", append([]byte(manifestMagic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "over the"},
	} {
		var got Manifest
		err := got.UnmarshalBinary(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	if err := m.Check(other); err == nil || !strings.Contains(err.Error(), "names") {
		t.Errorf("manifest checked against another id: %v", err)
	}
	short := Manifest{Size: m.Size, Chunks: m.Chunks[:2]}
	if err := short.Check(m.ID()); err == nil || !strings.Contains(err.Error(), "chunk roots for") {
		t.Errorf("short manifest: %v", err)
	}
}

func TestParseID(t *testing.T) {
	id := Of([]byte("x"))
	if got, err := ParseID(id.String()); err != nil || got != id {
		t.Fatalf("ParseID(%s) = %s, %v", id, got, err)
	}
	for _, s := range []string{"", "00", strings.Repeat("zz", 32)} {
		if _, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) accepted", s)
		}
	}
}

func FuzzManifest(f *testing.F) {
	m, _ := Compute(bytes.NewReader(data(2*ChunkSize+7, 5)))
	enc, _ := m.MarshalBinary()
	f.Add(enc)
	f.Add([]byte(manifestMagic))
	f.Add(append([]byte(manifestMagicV1), enc[len(manifestMagic):]...))
	f.Add(append([]byte(manifestMagic), 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Manifest
		if m.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := m.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("manifest does not round-trip")
		}
		_ = m.Check(m.ID())
	})
}

func FuzzProof(f *testing.F) {
	b := data(5*ChunkSize, 9)
	m, _ := Compute(bytes.NewReader(b))
	p, _ := m.Prove(2)
	js, _ := json.Marshal(p)
	f.Add(js, uint16(7))
	f.Fuzz(func(t *testing.T, js []byte, n uint16) {
		var p Proof
		if json.Unmarshal(js, &p) != nil {
			return
		}
		chunk := make([]byte, int(n)%(ChunkSize+1))
		_ = p.Verify(m.ID(), chunk) // must not panic
	})
}

// TestIDOfMatchesChain: the chain's in-memory blob ID (chain/blobtree.IDOf,
// which checks registrations against result lists) is the streaming one.
func TestIDOfMatchesChain(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 1025, 64 << 10, 64<<10 + 1, 200_000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i>>10)
		}
		if got, want := ID(blobtree.IDOf(b)), Of(b); got != want {
			t.Errorf("%d bytes: blobtree.IDOf %s, blob.Of %s", n, got, want)
		}
	}
}
