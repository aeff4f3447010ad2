package jobs

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

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
