package receipt

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/testutil/testkey"
)

func batchOf(pub ed25519.PublicKey, n int) []*types.Receipt {
	rs := make([]*types.Receipt, n)
	for i := range rs {
		rs[i] = &types.Receipt{ChainId: "c", Provider: types.AddressFromPubKey(pub), ChannelId: uint64(i % 3), Index: uint64(i), Amount: uint64(100 + i)}
	}
	return rs
}

// TestSignBatch signs batches of every size up to 17 and the maximum: each
// receipt verifies alone, survives Encode/Decode, and nothing else does — a
// tampered receipt, path, position or signature, another key, or a batch
// signature moved onto another receipt.
func TestSignBatch(t *testing.T) {
	priv, pub := testkey.Pair("prov")
	_, otherPub := testkey.Pair("other")
	sizes := []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, types.ReceiptBatchMax}
	for _, n := range sizes {
		rs := batchOf(pub, n)
		ss, err := SignBatch(priv, rs)
		if err != nil {
			t.Fatal(err)
		}
		var sig0 []byte
		for i, s := range ss {
			if s.Receipt != rs[i] {
				t.Fatalf("n=%d: result %d is for another receipt", n, i)
			}
			if n == 1 {
				plain, _ := Sign(priv, rs[0])
				if !bytes.Equal(s.Signature, plain.Signature) {
					t.Fatal("a batch of one is not signed as Sign signs")
				}
			} else if len(s.Signature) <= 64 || !types.ReceiptSignatureWellFormed(s.Signature) {
				t.Fatalf("n=%d: signature of %d bytes", n, len(s.Signature))
			}
			if i == 0 {
				sig0 = s.Signature[:64]
			} else if !bytes.Equal(sig0, s.Signature[:64]) {
				t.Fatalf("n=%d: receipts of one batch carry different signatures", n)
			}
			if err := s.Verify(pub); err != nil {
				t.Fatalf("n=%d, receipt %d: %v", n, i, err)
			}
			d, err := Decode(s.Encode())
			if err != nil || d.Verify(pub) != nil || d.ID() != s.ID() {
				t.Fatalf("n=%d, receipt %d: decoded %v", n, i, err)
			}
			if s.Verify(otherPub) == nil {
				t.Fatalf("n=%d: verified with another key", n)
			}
			if n > 1 && types.VerifyReceiptSignature(pub, ss[(i+1)%n].Bytes, s.Signature) {
				t.Fatalf("n=%d: receipt %d's signature verifies receipt %d", n, i, (i+1)%n)
			}
		}
		if n == 1 || n == types.ReceiptBatchMax {
			continue
		}
		// Flip each byte of one receipt's signature and one of its receipt.
		s := ss[n/2]
		for j := range s.Signature {
			bad := bytes.Clone(s.Signature)
			bad[j] ^= 0x10
			if types.VerifyReceiptSignature(pub, s.Bytes, bad) {
				t.Fatalf("n=%d: signature byte %d flipped still verifies", n, j)
			}
		}
		bz := bytes.Clone(s.Bytes)
		bz[len(bz)-1] ^= 1
		if types.VerifyReceiptSignature(pub, bz, s.Signature) {
			t.Fatalf("n=%d: tampered receipt verifies", n)
		}
		// A path cut short or padded.
		if types.VerifyReceiptSignature(pub, s.Bytes, s.Signature[:len(s.Signature)-32]) || types.VerifyReceiptSignature(pub, s.Bytes, append(bytes.Clone(s.Signature), make([]byte, 32)...)) {
			t.Fatalf("n=%d: a path of the wrong length verifies", n)
		}
	}
	if _, err := SignBatch(priv, nil); err == nil {
		t.Fatal("an empty batch was signed")
	}
	if _, err := SignBatch(priv, batchOf(pub, types.ReceiptBatchMax+1)); err == nil {
		t.Fatal("an oversize batch was signed")
	}
}
