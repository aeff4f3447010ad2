package native

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// TestKVCacheGrowsWithSequence: a session holds cache for the positions it
// has used (not the whole context), and a cache grown step by step gives
// the same logit bits as one reserved for the whole context up front.
func TestKVCacheGrowsWithSequence(t *testing.T) {
	for _, arch := range []string{"llama", "gemma3"} {
		m, tok := load(t, archModel(t, arch, gguf.Q8_0), 2)
		c := m.Config
		perPos := int64(2 * c.Layers * c.KVHeads * c.HeadDim * 4)
		prompt := tok.Encode("tell me a story about a small robot", tok.AddBOS, false)

		grown := m.NewSession()
		if grown.CacheBytes() != 0 {
			t.Fatalf("%s: a new session holds %d bytes", arch, grown.CacheBytes())
		}
		full := m.NewSession()
		full.Reserve(c.ContextLen)
		if full.CacheBytes() != int64(c.ContextLen)*perPos {
			t.Fatalf("%s: reserved %d bytes, want %d", arch, full.CacheBytes(), int64(c.ContextLen)*perPos)
		}
		a, err := grown.Forward(prompt, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := full.Forward(prompt, true)
		if err != nil {
			t.Fatal(err)
		}
		next := 7
		for step := 0; step < 80; step++ { // grows past 64 and doubles
			for i := range a {
				if !sameBits(a[i], b[i]) {
					t.Fatalf("%s: step %d: logits differ between a grown and a reserved cache", arch, step)
				}
			}
			if a, err = grown.Forward([]int{next}, false); err != nil {
				t.Fatal(err)
			}
			if b, err = full.Forward([]int{next}, false); err != nil {
				t.Fatal(err)
			}
			next = (next*31 + 11) % c.Vocab
		}
		if got, max := grown.CacheBytes(), int64(2*grown.Pos())*perPos; got > max || got < int64(grown.Pos())*perPos {
			t.Fatalf("%s: %d positions hold %d bytes of cache (want at most %d)", arch, grown.Pos(), got, max)
		}
	}
	// Generate reserves what the request can use: prompt + max tokens.
	m, tok := load(t, tinyModel(t, gguf.F32, "llama"), 1)
	s := m.NewSession()
	s.Reserve(10)
	if s.CacheBytes() != int64(10*2*m.Config.Layers*m.Config.KVHeads*m.Config.HeadDim*4) {
		t.Fatalf("reserve 10: %d bytes", s.CacheBytes())
	}
	if _, err := m.Generate(tok, tok.Encode("hello", true, false), SampleParams{MaxTokens: 4}, nil); err != nil {
		t.Fatal(err)
	}
}

// rssFile is the file-backed memory resident in this process (Linux).
func rssFile(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestWeightsStayMapped: loading maps the weights without reading them
// (no copy: resident file pages barely move), and a forward pass makes
// resident about what it reads: every layer and the output projection, but
// not the embedding rows of tokens it never saw.
func TestWeightsStayMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.gguf")
	// Embedding 16000 x 256 F32 = 16 MB; output 16 MB; layers 4 MB.
	if err := WriteRandomModel(path, GenOptions{Dim: 256, Layers: 2, Heads: 4, Vocab: 16000, Context: 64, Seed: 1, Type: gguf.F32}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	before := rssFile(t)
	m, err := Load(path, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	loaded := rssFile(t) - before
	if loaded > size/10 {
		t.Fatalf("loading made %d of %d file bytes resident", loaded, size)
	}
	if _, err := m.NewSession().Forward([]int{1, 2, 3}, false); err != nil {
		t.Fatal(err)
	}
	used := rssFile(t) - before
	embd := int64(16000 * 256 * 4)
	// Everything but (almost all of) the embedding is read once.
	if used < size-embd-size/20 || used > size-embd+size/20 {
		t.Fatalf("a forward pass made %d bytes resident; the file is %d, its embedding %d", used, size, embd)
	}
	t.Logf("file %.1f MB: resident after load %.2f MB, after a 3-token forward %.1f MB", float64(size)/1e6, float64(loaded)/1e6, float64(used)/1e6)
}
