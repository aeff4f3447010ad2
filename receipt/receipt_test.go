package receipt

import (
	"crypto/sha256"
	"testing"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/internal/testkey"
)

func TestMerkleProofs(t *testing.T) {
	for n := 1; n <= 17; n++ {
		ids := make([][32]byte, n)
		for i := range ids {
			ids[i] = sha256.Sum256([]byte{byte(i), byte(n)})
		}
		root := Root(ids)
		for i := range ids {
			p, err := Prove(ids, i)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Verify(root, ids[i]) {
				t.Fatalf("n=%d: proof of %d fails", n, i)
			}
			if n > 1 && p.Verify(root, ids[(i+1)%n]) {
				t.Fatalf("n=%d: proof of %d verifies another id", n, i)
			}
			bad := *p
			bad.Index = uint64((i + 1) % n)
			if n > 2 && bad.Verify(root, ids[i]) {
				t.Fatalf("n=%d: proof verifies at a wrong index", n)
			}
		}
	}
}

func TestSignVerifyEncode(t *testing.T) {
	priv, pub := testkey.Pair("prov")
	r := &types.Receipt{ChainId: "c", Provider: types.AddressFromPubKey(pub), ChannelId: 3, Amount: 42}
	s, err := Sign(priv, r)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(pub); err != nil || d.Receipt.Amount != 42 || d.ID() != s.ID() {
		t.Fatalf("decoded %+v %v", d.Receipt, err)
	}
	d.Bytes[len(d.Bytes)-1] ^= 1
	if d.Verify(pub) == nil {
		t.Fatal("tampered receipt verified")
	}
	if _, err := Decode("!!!"); err == nil {
		t.Fatal("garbage decoded")
	}
}
