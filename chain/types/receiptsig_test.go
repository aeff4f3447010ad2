package types

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"

	"github.com/agoranet/agora/chain/merkle"
)

// signedBatch signs n made-up serialized receipts as package receipt signs
// a batch: one signature over the Merkle root of their ids, each receipt's
// signature followed by its position and inclusion path.
func signedBatch(n int) (pub ed25519.PublicKey, bzs, sigs [][]byte) {
	priv := testKey()
	ids := make([][32]byte, n)
	for i := range ids {
		bzs = append(bzs, []byte{'r', byte(i)})
		ids[i] = ReceiptID(bzs[i])
	}
	levels := merkle.Levels(ids)
	root := levels[len(levels)-1][0]
	sig := SignEd25519(priv, append([]byte(ReceiptBatchDomain), root[:]...))
	for i := range ids {
		b := bytes.Clone(sig)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		siblings, _ := merkle.Path(levels, i)
		for _, h := range siblings {
			b = append(b, h[:]...)
		}
		sigs = append(sigs, b)
	}
	return priv.Public().(ed25519.PublicKey), bzs, sigs
}

// TestVerifyReceiptSignature: plain and batched signatures verify for their
// receipt and key only; any flipped byte of a batched signature fails.
func TestVerifyReceiptSignature(t *testing.T) {
	priv := testKey()
	pub := priv.Public().(ed25519.PublicKey)
	other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	bz := []byte("a receipt")
	plain := SignEd25519(priv, append([]byte(ReceiptSignDomain), bz...))
	if !VerifyReceiptSignature(pub, bz, plain) {
		t.Fatal("plain signature refused")
	}
	if VerifyReceiptSignature(other, bz, plain) || VerifyReceiptSignature(pub, []byte("another"), plain) {
		t.Fatal("plain signature verifies another key or receipt")
	}
	for _, n := range []int{2, 3, 5, 8, 17, ReceiptBatchMax} {
		pub, bzs, sigs := signedBatch(n)
		for i := range bzs {
			if !VerifyReceiptSignature(pub, bzs[i], sigs[i]) {
				t.Fatalf("n=%d: receipt %d refused", n, i)
			}
			if VerifyReceiptSignature(other, bzs[i], sigs[i]) {
				t.Fatalf("n=%d: verified with another key", n)
			}
			if VerifyReceiptSignature(pub, bzs[(i+1)%n], sigs[i]) {
				t.Fatalf("n=%d: receipt %d's signature verifies receipt %d", n, i, (i+1)%n)
			}
		}
		if n > 17 {
			continue
		}
		s := sigs[n/2]
		for j := range s {
			bad := bytes.Clone(s)
			bad[j] ^= 0x10
			if VerifyReceiptSignature(pub, bzs[n/2], bad) {
				t.Fatalf("n=%d: signature byte %d flipped still verifies", n, j)
			}
		}
	}
}

// TestReceiptSignedMessageRejects covers signatures that are malformed
// before any cryptography: wrong lengths, positions outside a batch, a batch
// of one in batched form.
func TestReceiptSignedMessageRejects(t *testing.T) {
	bz := []byte("receipt")
	blob := func(index, count uint32, siblings int) []byte {
		b := make([]byte, 64)
		b = binary.BigEndian.AppendUint32(b, index)
		b = binary.BigEndian.AppendUint32(b, count)
		return append(b, make([]byte, 32*siblings)...)
	}
	for _, c := range []struct {
		name string
		sig  []byte
		want string
	}{
		{"empty", nil, "neither plain nor batched"},
		{"63 bytes", make([]byte, 63), "neither plain nor batched"},
		{"no path", blob(0, 2, 0), "neither plain nor batched"},
		{"ragged path", append(blob(0, 2, 1), 0), "neither plain nor batched"},
		{"path too deep", blob(0, 2, ReceiptBatchDepth+1), "neither plain nor batched"},
		{"batch of one", blob(0, 1, 1), "not in a batch"},
		{"index past count", blob(5, 5, 3), "not in a batch"},
		{"count too large", blob(0, ReceiptBatchMax+1, 8), "not in a batch"},
		{"too many siblings", blob(0, 2, 2), "does not fit"},
		{"too few siblings", blob(0, 5, 2), "does not fit"},
	} {
		if _, _, err := ReceiptSignedMessage(bz, c.sig); err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzReceiptSignedMessage feeds arbitrary signature blobs: never a panic,
// and a blob accepted as batched leads to a root-signing message.
func FuzzReceiptSignedMessage(f *testing.F) {
	_, bzs, sigs := signedBatch(5)
	f.Add(bzs[3], sigs[3])
	f.Add([]byte("x"), make([]byte, 64))
	f.Fuzz(func(t *testing.T, bz, sig []byte) {
		msg, sig64, err := ReceiptSignedMessage(bz, sig)
		if err != nil {
			return
		}
		if len(sig64) != 64 {
			t.Fatalf("signature of %d bytes", len(sig64))
		}
		if len(sig) > 64 && (len(msg) != len(ReceiptBatchDomain)+32 || string(msg[:len(ReceiptBatchDomain)]) != ReceiptBatchDomain) {
			t.Fatalf("batched blob accepted with message %x", msg)
		}
	})
}
