package receipt

import (
	"testing"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/testutil/testkey"
)

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
