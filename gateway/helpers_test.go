package gateway

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

// testKey is a fixed ed25519 key named by name.
func testKey(name string) (ed25519.PrivateKey, ed25519.PublicKey) {
	seed := sha256.Sum256([]byte(name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return priv, priv.Public().(ed25519.PublicKey)
}

// testStore opens a gateway store in dir (a fresh one if dir is ""),
// closed with the test.
func testStore(t *testing.T, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
