package provider

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/testkey"
)

// A transcript comes back from the store exactly as recorded, log-probs to
// the bit: validators re-execute native transcripts and compare them bit
// for bit, so the encoding must not round a float32.
func TestTranscriptRoundTrip(t *testing.T) {
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	lp := []float32{0, -0.0, -1e-45, -math.SmallestNonzeroFloat32, -math.MaxFloat32, -0.1, -1.0000001, -87.33655}
	for len(lp) < 2000 {
		f := math.Float32frombits(rng.Uint32())
		if !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) {
			lp = append(lp, f)
		}
	}
	tr := &inference.Transcript{Model: "m", PromptIDs: []int{1, 2, 3}, OutputIDs: []int{4, 5}, Logprobs: lp,
		Temperature: 0.7, TopP: 0.9, TopK: 40, MinP: 0.05, RepeatPen: 1.1, Stop: []string{"\n", "</s>"},
		Seed: math.MaxUint64, MaxTokens: 16, Text: []byte{0xff, 'h', 'i', 0}, Verify: inference.VerifyTolerance,
		Pieces: [][]byte{{0xe2, 0x82}, {0xac}}, Top: [][]inference.Alt{{{Token: []byte("a"), Logprob: -0.25}}}}
	priv, pub := testkey.Pair("store")
	sr, err := receipt.Sign(priv, &types.Receipt{ChainId: "c", Provider: types.AddressFromPubKey(pub), Epoch: 3, Index: 7, Amount: 9})
	if err != nil {
		t.Fatal(err)
	}
	tbz, err := EncodeTranscript(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Record([]*receipt.Signed{sr}, [][]byte{tbz}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Transcript(3, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range lp {
		if math.Float32bits(got.Logprobs[i]) != math.Float32bits(lp[i]) {
			t.Fatalf("log-prob %d: stored %v (%#x), read back %v (%#x)", i, lp[i], math.Float32bits(lp[i]), got.Logprobs[i], math.Float32bits(got.Logprobs[i]))
		}
	}
	if !reflect.DeepEqual(got, tr) {
		t.Fatalf("transcript read back differs:\n got %+v\nwant %+v", got, tr)
	}
	back, err := st.ReceiptByID(sr.ID())
	if err != nil || !bytes.Equal(back.Bytes, sr.Bytes) || !bytes.Equal(back.Signature, sr.Signature) {
		t.Fatalf("receipt read back: %v", err)
	}
}

// A transcript JSON cannot carry is refused with a clear error before it
// reaches a group write, and a group whose receipts and transcripts do not
// pair up is refused whole.
func TestRecordRejects(t *testing.T) {
	for _, f := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		if _, err := EncodeTranscript(&inference.Transcript{Logprobs: []float32{-1, f}}); err == nil || !strings.Contains(err.Error(), "encoding a transcript") {
			t.Fatalf("log-prob %v: %v", f, err)
		}
	}
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sr := &receipt.Signed{Receipt: &types.Receipt{Epoch: 1}, Bytes: []byte{1}}
	if err := st.Record([]*receipt.Signed{sr, sr}, [][]byte{[]byte("{}")}); err == nil || err.Error() != "recording 2 receipts with 1 transcripts" {
		t.Fatalf("mismatched group: %v", err)
	}
	if rs, err := st.Receipts(1); err != nil || len(rs) != 0 {
		t.Fatalf("a refused group left receipts: %d %v", len(rs), err)
	}
}
