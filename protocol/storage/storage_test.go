package storage

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestUploadHeader(t *testing.T) {
	seed := sha256.Sum256([]byte("client"))
	key := ed25519.NewKeyFromSeed(seed[:])
	blob := sha256.Sum256([]byte("blob"))
	h := SignUpload(key, "agora-test", 7, blob[:])
	u, err := ParseUpload(h)
	if err != nil {
		t.Fatal(err)
	}
	if u.Deal != 7 {
		t.Fatalf("deal %d", u.Deal)
	}
	if err := u.Verify("agora-test", blob[:]); err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("other"))
	for name, err := range map[string]error{
		"another blob":  u.Verify("agora-test", other[:]),
		"another chain": u.Verify("agora-main", blob[:]),
	} {
		if err == nil || !strings.Contains(err.Error(), "does not verify for deal 7") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "7:zz:00", "x:" + strings.Repeat("00", 32) + ":" + strings.Repeat("00", 64), "7:" + strings.Repeat("00", 31) + ":" + strings.Repeat("00", 64)} {
		if _, err := ParseUpload(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
