package jobs

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	chainjobs "github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/blob"
)

func TestUploadHeader(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	id := blob.Of([]byte("module"))
	h := SignUpload(key, "agora-test", 7, id)
	u, err := ParseUpload(h)
	if err != nil {
		t.Fatal(err)
	}
	if u.Order != 7 || !bytes.Equal(u.Owner, types.AddressFromPubKey(pub)) {
		t.Fatalf("parsed order %d owner %s", u.Order, u.Owner)
	}
	if err := u.Verify("agora-test", id); err != nil {
		t.Fatal(err)
	}
	// Another blob, chain or order: refused.
	for name, check := range map[string]func() error{
		"other blob":  func() error { return u.Verify("agora-test", blob.Of([]byte("input"))) },
		"other chain": func() error { return u.Verify("agora-main", id) },
		"other order": func() error {
			v := *u
			v.Order = 8
			return v.Verify("agora-test", id)
		},
	} {
		if err := check(); err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "7:aa", "x:" + strings.Repeat("a", 64) + ":" + strings.Repeat("b", 128), "7:zz:" + strings.Repeat("b", 128), "7:" + strings.Repeat("a", 64) + ":bb"} {
		if _, err := ParseUpload(bad); err == nil {
			t.Errorf("ParseUpload(%q) accepted", bad)
		}
	}
}

func FuzzParseUpload(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	f.Add(SignUpload(key, "c", 1, blob.Of(nil)))
	f.Add("1:2:3")
	f.Fuzz(func(t *testing.T, h string) {
		if u, err := ParseUpload(h); err == nil {
			_ = u.Verify("c", blob.Of(nil))
		}
	})
}

func TestResults(t *testing.T) {
	r := &Results{Outputs: []Output{
		{Name: "stdout", ID: blob.Of([]byte("hello")), Size: 5},
		{Name: "out/image.png", ID: blob.Of([]byte("png")), Size: 3},
		{Name: "stderr", ID: blob.Of(nil), Size: 0},
	}}
	enc := r.Encode()
	back, err := DecodeResults(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Outputs) != 3 || back.Outputs[0].Name != "out/image.png" || back.Outputs[1].Size != 0 || back.Outputs[2].Size != 5 {
		t.Fatalf("decoded %+v", back.Outputs)
	}
	if back.ID() != r.ID() || blob.Of(enc) != r.ID() {
		t.Fatal("result ID changes across a round trip")
	}
	// Order of the input does not matter; content does.
	swapped := &Results{Outputs: []Output{r.Outputs[2], r.Outputs[0], r.Outputs[1]}}
	if swapped.ID() != r.ID() {
		t.Fatal("result ID depends on the order outputs were listed in")
	}
	changed := &Results{Outputs: append([]Output(nil), r.Outputs...)}
	changed.Outputs[0].Size = 6
	if changed.ID() == r.ID() {
		t.Fatal("result ID ignores a size")
	}
	dup := append([]byte(nil), enc...)
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not an agora result list"},
		{"truncated", enc[:len(enc)-3], "truncated"},
		{"trailing", append(dup, 1), "after the list"},
		{"unsorted", (&unsortedResults{r}).encode(), "out of order"},
	} {
		if _, err := DecodeResults(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// unsortedResults encodes outputs in reverse name order (Encode sorts).
type unsortedResults struct{ r *Results }

func (u *unsortedResults) encode() []byte {
	enc := u.r.Encode()
	back, _ := DecodeResults(enc)
	b := []byte(chainjobs.ResultsMagic)
	b = append(b, 0, 0, 0, byte(len(back.Outputs)))
	for i := len(back.Outputs) - 1; i >= 0; i-- {
		o := back.Outputs[i]
		b = append(b, 0, 0, 0, byte(len(o.Name)))
		b = append(b, o.Name...)
		b = append(b, o.ID[:]...)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(o.Size))
	}
	return b
}

func FuzzDecodeResults(f *testing.F) {
	f.Add((&Results{Outputs: []Output{{Name: "stdout", Size: 1}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResults(b)
		if err != nil {
			return
		}
		if string(r.Encode()) != string(b) {
			t.Fatal("decoded results do not re-encode to their bytes")
		}
	})
}
