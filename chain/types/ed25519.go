package types

import (
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// verifyOpts accepts exactly the signatures crypto/ed25519 accepts (a test
// checks the two agree); curve25519-voi verifies them ~30% faster, and
// signature checks are the largest cost of admitting a tx.
var verifyOpts = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// VerifyEd25519 reports whether sig is pub's signature of msg.
func VerifyEd25519(pub, msg, sig []byte) bool {
	if len(pub) != voi.PublicKeySize || len(sig) != voi.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, verifyOpts)
}

// SignEd25519 signs msg with priv (crypto/ed25519's key layout). Ed25519
// signatures are deterministic, so it gives exactly crypto/ed25519's
// signature (a test checks it), about 40 % faster: providers sign a receipt
// per request.
func SignEd25519(priv, msg []byte) []byte {
	return voi.Sign(voi.PrivateKey(priv), msg)
}
