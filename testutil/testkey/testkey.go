// Package testkey derives fixed ed25519 keys from names, for tests: one
// name gives one key, in every package and every run.
package testkey

import (
	"crypto/ed25519"
	"crypto/sha256"
)

// Pair returns the key named name: its seed is SHA-256(name).
func Pair(name string) (ed25519.PrivateKey, ed25519.PublicKey) {
	seed := sha256.Sum256([]byte(name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return priv, priv.Public().(ed25519.PublicKey)
}
