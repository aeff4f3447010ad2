package epochs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// TestBeaconEpoch: epoch n's window is the W heights after its commit
// deadline; other heights belong to no window.
func TestBeaconEpoch(t *testing.T) {
	p := types.Params{EpochLength: 10, CommitWindow: 2, BeaconWindow: 4}
	// epoch 0: ends 10, deadline 12, window 13..16; epoch 1: window 23..26.
	want := map[int64]int64{13: 0, 14: 0, 15: 0, 16: 0, 23: 1, 24: 1, 25: 1, 26: 1, 33: 2, 34: 2, 35: 2, 36: 2}
	for h := int64(1); h <= 40; h++ {
		n, ok := BeaconEpoch(p, h)
		w, in := want[h]
		if ok != in || (ok && int64(n) != w) {
			t.Errorf("height %d: epoch %d, %v; want %d, %v", h, n, ok, w, in)
		}
	}
	// A commit window longer than an epoch, and a window as long as an epoch.
	p = types.Params{EpochLength: 4, CommitWindow: 9, BeaconWindow: 4}
	for h := int64(1); h <= 30; h++ {
		n, ok := BeaconEpoch(p, h)
		in := h >= 14 // epoch 0: deadline 13; windows tile every height after
		if ok != in || (ok && int64(n) != (h-14)/4) {
			t.Errorf("long commit window, height %d: epoch %d, %v", h, n, ok)
		}
	}
	if _, ok := BeaconEpoch(types.Params{EpochLength: 10, CommitWindow: 2}, 13); ok {
		t.Error("a chain without a beacon has a window")
	}
	// The seed height EndBlock records is the block after the window.
	p = types.Params{EpochLength: 10, CommitWindow: 2, BeaconWindow: 4, OpeningWindow: 3}
	kvs, err := store.OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	EndBlock(kvs, p, 10, nil)
	if e := Get(kvs, 0); e.SeedHeight != 17 || e.OpeningDeadline != 20 || e.SettleHeight != 23 {
		t.Fatalf("epoch 0 heights %+v", e)
	}
}

func TestVerifyProof(t *testing.T) {
	k := func(s string) ed25519.PrivateKey { h := sha256.Sum256([]byte(s)); return ed25519.NewKeyFromSeed(h[:]) }
	a, b := k("a"), k("b")
	pubA := a.Public().(ed25519.PublicKey)
	proof := Prove(a, "chain", 5)
	out, err := VerifyProof(pubA, "chain", 5, proof)
	if err != nil || len(out) != types.VRFOutputLen {
		t.Fatalf("valid proof: %v (%d bytes)", err, len(out))
	}
	again, _ := VerifyProof(pubA, "chain", 5, Prove(a, "chain", 5))
	if string(again) != string(out) {
		t.Fatal("VRF output not unique")
	}
	other, _ := VerifyProof(pubA, "chain", 6, Prove(a, "chain", 6))
	if string(other) == string(out) {
		t.Fatal("two epochs gave one output")
	}
	for _, c := range []struct {
		name  string
		pub   []byte
		chain string
		n     uint64
		proof []byte
		want  string
	}{
		{"another key's proof", pubA, "chain", 5, Prove(b, "chain", 5), "does not verify"},
		{"another epoch", pubA, "chain", 6, proof, "does not verify"},
		{"another chain", pubA, "chain2", 5, proof, "does not verify"},
		{"short proof", pubA, "chain", 5, proof[:79], "79 bytes"},
		{"short key", pubA[:31], "chain", 5, proof, "31 bytes"},
	} {
		if _, err := VerifyProof(c.pub, c.chain, c.n, c.proof); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func BenchmarkProve(b *testing.B) {
	h := sha256.Sum256([]byte("bench"))
	k := ed25519.NewKeyFromSeed(h[:])
	for i := 0; i < b.N; i++ {
		Prove(k, "chain", uint64(i))
	}
}

func BenchmarkVerifyProof(b *testing.B) {
	h := sha256.Sum256([]byte("bench"))
	k := ed25519.NewKeyFromSeed(h[:])
	pub := k.Public().(ed25519.PublicKey)
	proof := Prove(k, "chain", 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := VerifyProof(pub, "chain", 1, proof); err != nil {
			b.Fatal(err)
		}
	}
}
