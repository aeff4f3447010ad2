package types

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func testKey() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("types-test"))
	return ed25519.NewKeyFromSeed(s[:])
}

func sendBody() *TxBody {
	return &TxBody{ChainId: "c", Nonce: 7, Fee: 300, Msg: &TxBody_Send{Send: &MsgSend{To: make([]byte, 20), Amount: 5}}}
}

func TestSignAndDecodeRoundTrip(t *testing.T) {
	bz, err := SignTx(testKey(), sendBody())
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeTx(bz)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.VerifySignature(); err != nil {
		t.Fatal(err)
	}
	if d.Body.Nonce != 7 || d.Body.GetSend().Amount != 5 || !bytes.Equal(d.Signer, AddressFromPubKey(testKey().Public().(ed25519.PublicKey))) {
		t.Fatalf("decoded %+v", d.Body)
	}
	// Any change to the body breaks the signature.
	var env Tx
	proto.Unmarshal(bz, &env)
	env.Body[len(env.Body)-1] ^= 1
	bz2, _ := proto.Marshal(&env)
	if d2, err := DecodeTx(bz2); err == nil {
		if d2.VerifySignature() == nil {
			t.Fatal("tampered body verified")
		}
	}
}

func TestSignBytesAreDomainSeparated(t *testing.T) {
	body := []byte("x")
	if !bytes.HasPrefix(TxSignBytes(body), []byte(TxSignDomain)) {
		t.Fatal("tx sign bytes lack the domain")
	}
	v := VoucherSignBytes("chain", 1, 2)
	if !bytes.HasPrefix(v, []byte(VoucherSignDomain)) {
		t.Fatal("voucher sign bytes lack the domain")
	}
	// Chain id, channel and amount are all bound.
	for _, other := range [][]byte{VoucherSignBytes("chain2", 1, 2), VoucherSignBytes("chain", 2, 2), VoucherSignBytes("chain", 1, 3), VoucherSignBytes("chai", 1, 2)} {
		if bytes.Equal(v, other) {
			t.Fatal("voucher sign bytes collide")
		}
	}
	vo := SignVoucher(testKey(), "chain", 1, 2)
	pub := testKey().Public().(ed25519.PublicKey)
	if err := VerifyVoucher(pub, "chain", vo); err != nil {
		t.Fatal(err)
	}
	vo.CumulativeAmount = 3
	if err := VerifyVoucher(pub, "chain", vo); err == nil {
		t.Fatal("altered voucher verified")
	}
}

func TestDecodeRejectsBadShapes(t *testing.T) {
	good, _ := SignTx(testKey(), sendBody())
	var env Tx
	proto.Unmarshal(good, &env)
	mut := func(f func(*Tx)) []byte {
		e := proto.Clone(&env).(*Tx)
		f(e)
		bz, _ := proto.Marshal(e)
		return bz
	}
	bodyWith := func(f func(*TxBody)) []byte {
		b := sendBody()
		f(b)
		bz, _ := SignTx(testKey(), b)
		return bz
	}
	cases := map[string]struct {
		tx   []byte
		want string
	}{
		"short pubkey":    {mut(func(e *Tx) { e.PubKey = e.PubKey[:10] }), "public key must be 32 bytes"},
		"short signature": {mut(func(e *Tx) { e.Signature = e.Signature[:10] }), "signature must be 64 bytes"},
		"garbage body":    {mut(func(e *Tx) { e.Body = []byte{0xff, 0xff} }), "malformed tx body"},
		"no message":      {bodyWith(func(b *TxBody) { b.Msg = nil }), "no message"},
		"short recipient": {bodyWith(func(b *TxBody) { b.GetSend().To = []byte{1} }), "recipient address"},
		"zero amount":     {bodyWith(func(b *TxBody) { b.GetSend().Amount = 0 }), "amount must be positive"},
		"empty chain id":  {bodyWith(func(b *TxBody) { b.ChainId = "" }), "chain id"},
		"long memo":       {bodyWith(func(b *TxBody) { b.Memo = strings.Repeat("m", 300) }), "memo"},
		"bad endpoint": {bodyWith(func(b *TxBody) {
			b.Msg = &TxBody_RegisterProvider{RegisterProvider: &MsgRegisterProvider{Info: &ProviderInfo{Endpoint: "ftp://x"}}}
		}), "not an http(s) URL"},
		"report unknown fault": {bodyWith(func(b *TxBody) {
			b.Msg = &TxBody_ReportFault{ReportFault: &MsgReportFault{Provider: make([]byte, 20), Fault: 9}}
		}), "unknown fault"},
		"report without receipt": {bodyWith(func(b *TxBody) {
			b.Msg = &TxBody_ReportFault{ReportFault: &MsgReportFault{Provider: make([]byte, 20), Fault: FaultFabricated}}
		}), "needs the receipt"},
		"report short proof hash": {bodyWith(func(b *TxBody) {
			b.Msg = &TxBody_ReportFault{ReportFault: &MsgReportFault{Provider: make([]byte, 20), Fault: FaultFabricated,
				Receipt: []byte{1}, ReceiptSignature: make([]byte, 64), Proof: [][]byte{{1}}, ProofLeft: []bool{true}}}
		}), "proof hashes must be"},
		"report bad provider": {bodyWith(func(b *TxBody) {
			b.Msg = &TxBody_ReportFault{ReportFault: &MsgReportFault{Provider: []byte{1}, Fault: FaultRefused}}
		}), "provider address"},
		"commit short root": {bodyWith(func(b *TxBody) {
			b.Msg = &TxBody_CommitEpoch{CommitEpoch: &MsgCommitEpoch{Root: []byte{1}, RecordCount: 1}}
		}), "root must be 32 bytes"},
	}
	for name, c := range cases {
		_, err := DecodeTx(c.tx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}

func TestMulDiv(t *testing.T) {
	if got := MulDivU64(1<<63, 5000, 10000); got != 1<<62 {
		t.Fatalf("MulDiv = %d", got)
	}
	if _, err := AddU64(^uint64(0), 1); CodeOf(err) != CodeOverflow {
		t.Fatalf("AddU64 overflow: %v", err)
	}
}

// FuzzDecodeTx: hostile bytes never panic; whatever decodes re-validates.
func FuzzDecodeTx(f *testing.F) {
	good, _ := SignTx(testKey(), sendBody())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, bz []byte) {
		d, err := DecodeTx(bz)
		if err != nil {
			if d != nil {
				t.Fatal("decoded tx returned with an error")
			}
			return
		}
		if err := ValidateMsg(d.Body); err != nil {
			t.Fatalf("decoded tx fails validation: %v", err)
		}
		_ = d.VerifySignature()
		_ = MsgName(d.Body)
	})
}

// TestVerifyMatchesStdlib: our signer gives crypto/ed25519's signatures and
// our verifier accepts exactly what crypto/ed25519 accepts, on valid
// signatures and on every single-bit corruption of them.
func TestVerifyMatchesStdlib(t *testing.T) {
	for i := 0; i < 20; i++ {
		seed := sha256.Sum256([]byte{byte(i)})
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		msg := seed[:i+1]
		sig := ed25519.Sign(priv, msg)
		if !bytes.Equal(SignEd25519(priv, msg), sig) {
			t.Fatal("SignEd25519 differs from crypto/ed25519")
		}
		if !VerifyEd25519(pub, msg, sig) {
			t.Fatal("valid signature refused")
		}
		for bit := 0; bit < 64*8; bit += 7 {
			bad := append([]byte(nil), sig...)
			bad[bit/8] ^= 1 << (bit % 8)
			if VerifyEd25519(pub, msg, bad) != ed25519.Verify(pub, msg, bad) {
				t.Fatalf("verifiers disagree on signature bit %d", bit)
			}
		}
		badPub := append([]byte(nil), pub...)
		badPub[3] ^= 0x10
		if VerifyEd25519(badPub, msg, sig) != ed25519.Verify(badPub, msg, sig) {
			t.Fatal("verifiers disagree on a corrupted key")
		}
	}
}
