package types

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkDecodeTx measures decoding and stateless validation of a signed
// transfer through the message table (the work CheckTx does before state).
func BenchmarkDecodeTx(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	body := &TxBody{ChainId: "bench", Nonce: 7, Fee: 1000}
	if err := SetMsg(body, &MsgSend{To: make([]byte, 20), Amount: 5}); err != nil {
		b.Fatal(err)
	}
	body.GetSend().To[0] = 1
	raw, err := SignTx(priv, body)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTx(raw); err != nil {
			b.Fatal(err)
		}
	}
}
