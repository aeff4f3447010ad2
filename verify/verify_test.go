package verify

import (
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
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
	for _, c := range []struct{ n, bps, want uint64 }{{0, 300, 0}, {1, 300, 1}, {100, 300, 3}, {101, 300, 4}, {10, 0, 0}, {5, 20000, 5}, {1 << 40, 2000, MaxSamples}, {^uint64(0), 10000, MaxSamples}} {
		if got := SampleCount(c.n, c.bps); got != c.want {
			t.Errorf("SampleCount(%d, %d) = %d, want %d", c.n, c.bps, got, c.want)
		}
	}
}

func TestSampleIndices(t *testing.T) {
	seed := sha256.Sum256([]byte("seed"))
	prov := []byte("provider-address-20b")
	a := SampleIndices(seed[:], prov, 1000, 30)
	b := SampleIndices(seed[:], prov, 1000, 30)
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
	other := SampleIndices(seed[:], []byte("another-provider-20b"), 1000, 30)
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
	all := SampleIndices(seed[:], prov, 5, 10)
	if len(all) != 5 {
		t.Fatalf("k > count gave %d", len(all))
	}
	// roughly uniform: each of 10 indices drawn about 1/10 of the time over many seeds
	counts := make([]int, 10)
	for s := 0; s < 5000; s++ {
		sd := sha256.Sum256([]byte{byte(s), byte(s >> 8)})
		counts[SampleIndices(sd[:], prov, 10, 1)[0]]++
	}
	for i, c := range counts {
		if c < 380 || c > 620 {
			t.Fatalf("index %d drawn %d times of 5000", i, c)
		}
	}
}

// The brief's target: ≥ 99 % chance to catch a provider cheating on ≥ 5 % of
// requests within ~3,100 requests at ≤ 3 % extra compute.
func TestDetectionTarget(t *testing.T) {
	if p := DetectionProbability(0.03, 0.05, 3100); p < 0.99 {
		t.Fatalf("detection %.4f", p)
	}
}

func TestCheckNative(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	if err := native.WriteRandomModel(path, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	m, err := native.Load(path, native.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		t.Fatal(err)
	}
	params := native.SampleParams{Temperature: 0.8, TopK: 40, TopP: 0.95, FrequencyPenalty: 0.2, Seed: 99, MaxTokens: 20}
	prompt := tok.Encode("tell me about the network", true, false)
	res, err := m.Generate(tok, prompt, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := Transcript{PromptIDs: prompt, Params: params}
	for _, x := range res.Tokens {
		tr.OutputIDs = append(tr.OutputIDs, x.ID)
		tr.Logprobs = append(tr.Logprobs, x.Logprob)
	}
	if err := CheckNative(m, tr); err != nil {
		t.Fatalf("honest transcript refused: %v", err)
	}
	// fabricated output: one token changed
	bad := tr
	bad.OutputIDs = append([]int(nil), tr.OutputIDs...)
	bad.OutputIDs[5] = (bad.OutputIDs[5] + 1) % 600
	if err := CheckNative(m, bad); err == nil {
		t.Fatal("changed token accepted")
	}
	// a log-prob off by one ulp
	bad = tr
	bad.Logprobs = append([]float32(nil), tr.Logprobs...)
	bad.Logprobs[3] = bad.Logprobs[3] * (1 + 1e-7)
	if err := CheckNative(m, bad); err == nil {
		t.Fatal("changed log-prob accepted")
	}
	// claimed seed differs from the one used
	bad = tr
	bad.Params.Seed = 100
	if err := CheckNative(m, bad); err == nil {
		t.Fatal("wrong seed accepted")
	}
	// served by a different model than claimed
	other := filepath.Join(dir, "other.gguf")
	if err := native.WriteRandomModel(other, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 8, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	m2, err := native.Load(other, native.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := CheckNative(m2, tr); err == nil {
		t.Fatal("transcript of another model accepted")
	}
}

func TestReputationAndEmission(t *testing.T) {
	rep := uint64(0)
	for i := 1; i <= 12; i++ {
		rep = NextReputation(rep, 1000, false)
		if want := min(10000, uint64(i)*1000); rep != want {
			t.Fatalf("after %d clean epochs: %d, want %d", i, rep, want)
		}
	}
	if NextReputation(rep, 1000, true) != 0 {
		t.Fatal("a fault must reset the reputation")
	}
	for _, c := range []struct{ initial, interval, n, want uint64 }{
		{1000, 10, 0, 1000}, {1000, 10, 9, 1000}, {1000, 10, 10, 500}, {1000, 10, 25, 250},
		{1000, 10, 640, 0}, {^uint64(0), 1, 63, 1}, {^uint64(0), 1, 64, 0}, {7, 0, 3, 0},
	} {
		if got := Emission(c.initial, c.interval, c.n); got != c.want {
			t.Errorf("Emission(%d, %d, %d) = %d, want %d", c.initial, c.interval, c.n, got, c.want)
		}
	}
}

func TestSampledFollowsReputation(t *testing.T) {
	seed := sha256.Sum256([]byte("s"))
	prov := []byte("provider-address-20b")
	if got := len(Sampled(seed[:], prov, 1000, 300, 2000, 0)); got != 200 {
		t.Fatalf("new provider: %d samples, want 200 (20 %%)", got)
	}
	if got := len(Sampled(seed[:], prov, 1000, 300, 2000, 10000)); got != 30 {
		t.Fatalf("full reputation: %d samples, want 30 (3 %%)", got)
	}
	a, b := Sampled(seed[:], prov, 1000, 300, 2000, 10000), SampleIndices(seed[:], prov, 1000, 30)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("Sampled differs from SampleIndices at the same count")
		}
	}
}
