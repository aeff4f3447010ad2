package gateway

import (
	"crypto/ed25519"
	"testing"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

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

// storedFor is a receipt of priv's numbered index on channel 1, signed,
// as the gateway stores it.
func storedFor(t *testing.T, priv ed25519.PrivateKey, index uint64) *StoredReceipt {
	t.Helper()
	pub := priv.Public().(ed25519.PublicKey)
	sr, err := receipt.Sign(priv, &types.Receipt{ChainId: "c", Provider: types.AddressFromPubKey(pub), ChannelId: 1, Index: index, Amount: 10 + index})
	if err != nil {
		t.Fatal(err)
	}
	return &StoredReceipt{ID: sr.IDHex(), Provider: types.AddressFromPubKey(pub).String(), Payer: "payer", Amount: sr.Receipt.Amount,
		Index: index, Channel: 1, Encoded: sr.Encode()}
}
