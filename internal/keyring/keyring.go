// Package keyring stores ed25519 account keys in a directory, one JSON file
// per key. The "file" backend encrypts the private key at rest with a key
// derived from a passphrase by scrypt and sealed with AES-256-GCM; the
// "test" backend stores it in the clear and exists only for devnets and tests.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"golang.org/x/crypto/scrypt"

	"github.com/agoranet/agora/internal/atomicfile"

	"github.com/agoranet/agora/chain/types"
)

// Backends.
const (
	BackendFile = "file"
	BackendTest = "test"
)

// scrypt parameters (N=2^15, r=8, p=1: ~100 ms and 32 MiB per derivation).
const (
	scryptN = 1 << 15
	scryptR = 8
	scryptP = 1
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ErrNotFound is returned for a key name that does not exist.
var ErrNotFound = errors.New("key not found")

// Keyring is a directory of keys.
type Keyring struct {
	dir        string
	backend    string
	passphrase func(confirm bool) (string, error)
}

// Open returns the keyring of backend under home. passphrase is asked for
// when the file backend needs to encrypt (confirm=true) or decrypt a key.
func Open(home, backend string, passphrase func(confirm bool) (string, error)) (*Keyring, error) {
	switch backend {
	case BackendFile, BackendTest:
	default:
		return nil, fmt.Errorf("unknown keyring backend %q (want %q or %q)", backend, BackendFile, BackendTest)
	}
	dir := filepath.Join(home, "keyring-"+backend)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keyring dir: %w", err)
	}
	return &Keyring{dir: dir, backend: backend, passphrase: passphrase}, nil
}

// Info is the public part of a key.
type Info struct {
	Name    string         `json:"name"`
	Address types.Address  `json:"address"`
	PubKey  types.HexBytes `json:"pub_key"`
}

// keyFile is the on-disk (and export) format.
type keyFile struct {
	Name    string         `json:"name"`
	Address types.Address  `json:"address"`
	PubKey  types.HexBytes `json:"pub_key"`
	// Encrypted (file backend): KDF parameters, salt, nonce and sealed seed.
	KDF        string         `json:"kdf,omitempty"`
	N          int            `json:"n,omitempty"`
	R          int            `json:"r,omitempty"`
	P          int            `json:"p,omitempty"`
	Salt       types.HexBytes `json:"salt,omitempty"`
	Nonce      types.HexBytes `json:"nonce,omitempty"`
	Ciphertext types.HexBytes `json:"ciphertext,omitempty"`
	// Plain (test backend only).
	Seed types.HexBytes `json:"seed,omitempty"`
}

func (k *Keyring) path(name string) string { return filepath.Join(k.dir, name+".json") }

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid key name %q: use letters, digits, '_', '.', '-' (max 64)", name)
	}
	return nil
}

// Add creates a new random key.
func (k *Keyring) Add(name string) (Info, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Info{}, err
	}
	return k.Import(name, priv)
}

// Import stores priv under name.
func (k *Keyring) Import(name string, priv ed25519.PrivateKey) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	if _, err := os.Stat(k.path(name)); err == nil {
		return Info{}, fmt.Errorf("key %q already exists", name)
	}
	kf, err := k.seal(name, priv)
	if err != nil {
		return Info{}, err
	}
	bz, _ := json.MarshalIndent(kf, "", "  ")
	if err := writeFileAtomic(k.path(name), bz); err != nil {
		return Info{}, err
	}
	return Info{Name: name, Address: kf.Address, PubKey: kf.PubKey}, nil
}

func (k *Keyring) seal(name string, priv ed25519.PrivateKey) (*keyFile, error) {
	pub := priv.Public().(ed25519.PublicKey)
	kf := &keyFile{Name: name, Address: types.AddressFromPubKey(pub), PubKey: types.HexBytes(pub)}
	if k.backend == BackendTest {
		kf.Seed = types.HexBytes(priv.Seed())
		return kf, nil
	}
	pass, err := k.ask(true)
	if err != nil {
		return nil, err
	}
	kf.KDF, kf.N, kf.R, kf.P = "scrypt", scryptN, scryptR, scryptP
	kf.Salt = randBytes(16)
	aead, err := deriveAEAD(pass, kf)
	if err != nil {
		return nil, err
	}
	kf.Nonce = randBytes(aead.NonceSize())
	kf.Ciphertext = aead.Seal(nil, kf.Nonce, priv.Seed(), []byte(kf.Address.String()))
	return kf, nil
}

func (k *Keyring) ask(confirm bool) (string, error) {
	if k.passphrase == nil {
		return "", errors.New("the file keyring needs a passphrase (set AGORA_PASSPHRASE or use a terminal)")
	}
	p, err := k.passphrase(confirm)
	if err != nil {
		return "", err
	}
	if len(p) < 8 {
		return "", errors.New("passphrase must be at least 8 characters")
	}
	return p, nil
}

func deriveAEAD(pass string, kf *keyFile) (cipher.AEAD, error) {
	if kf.KDF != "scrypt" || kf.N < 2 || kf.N > 1<<20 || kf.R < 1 || kf.R > 32 || kf.P < 1 || kf.P > 16 {
		return nil, errors.New("unsupported or unsafe key derivation parameters")
	}
	key, err := scrypt.Key([]byte(pass), kf.Salt, kf.N, kf.R, kf.P, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func (k *Keyring) load(name string) (*keyFile, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	bz, err := os.ReadFile(k.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q in the %s keyring", ErrNotFound, name, k.backend)
	}
	if err != nil {
		return nil, err
	}
	return parseKeyFile(bz)
}

func parseKeyFile(bz []byte) (*keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(bz, &kf); err != nil {
		return nil, fmt.Errorf("corrupt key file: %w", err)
	}
	if err := types.ValidPubKey(kf.PubKey); err != nil {
		return nil, fmt.Errorf("corrupt key file: %w", err)
	}
	if !equalBytes(types.AddressFromPubKey(kf.PubKey), kf.Address) {
		return nil, errors.New("corrupt key file: address does not match public key")
	}
	return &kf, nil
}

func equalBytes(a, b []byte) bool { return hex.EncodeToString(a) == hex.EncodeToString(b) }

func (k *Keyring) open(kf *keyFile) (ed25519.PrivateKey, error) {
	var seed []byte
	if len(kf.Seed) > 0 {
		if k.backend != BackendTest {
			return nil, errors.New("refusing an unencrypted key in the file keyring")
		}
		seed = kf.Seed
	} else {
		pass, err := k.ask(false)
		if err != nil {
			return nil, err
		}
		aead, err := deriveAEAD(pass, kf)
		if err != nil {
			return nil, err
		}
		if len(kf.Nonce) != aead.NonceSize() {
			return nil, errors.New("corrupt key file: bad nonce")
		}
		seed, err = aead.Open(nil, kf.Nonce, kf.Ciphertext, []byte(kf.Address.String()))
		if err != nil {
			return nil, errors.New("wrong passphrase or corrupt key file")
		}
	}
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("corrupt key file: bad seed length")
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !equalBytes(priv.Public().(ed25519.PublicKey), kf.PubKey) {
		return nil, errors.New("corrupt key file: private key does not match public key")
	}
	return priv, nil
}

// Show returns a key's public info.
func (k *Keyring) Show(name string) (Info, error) {
	kf, err := k.load(name)
	if err != nil {
		return Info{}, err
	}
	return Info{Name: kf.Name, Address: kf.Address, PubKey: kf.PubKey}, nil
}

// PrivKey decrypts and returns a key (asking for the passphrase with the file backend).
func (k *Keyring) PrivKey(name string) (ed25519.PrivateKey, error) {
	kf, err := k.load(name)
	if err != nil {
		return nil, err
	}
	return k.open(kf)
}

// List returns all keys sorted by name.
func (k *Keyring) List() ([]Info, error) {
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		n := e.Name()
		if filepath.Ext(n) != ".json" {
			continue
		}
		info, err := k.Show(n[:len(n)-len(".json")])
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", n, err)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a key.
func (k *Keyring) Delete(name string) error {
	if _, err := k.load(name); err != nil {
		return err
	}
	return os.Remove(k.path(name))
}

// Export returns the key as an armored JSON document. With the file backend
// it is the encrypted key file (the passphrase is checked first); with the
// test backend it is plain.
func (k *Keyring) Export(name string) ([]byte, error) {
	kf, err := k.load(name)
	if err != nil {
		return nil, err
	}
	if _, err := k.open(kf); err != nil {
		return nil, err
	}
	return json.MarshalIndent(kf, "", "  ")
}

// ImportArmored imports a document written by Export under name, re-sealing
// it for this keyring's backend.
func (k *Keyring) ImportArmored(name string, doc []byte, srcPassphrase func() (string, error)) (Info, error) {
	kf, err := parseKeyFile(doc)
	if err != nil {
		return Info{}, err
	}
	var priv ed25519.PrivateKey
	if len(kf.Seed) > 0 {
		if len(kf.Seed) != ed25519.SeedSize {
			return Info{}, errors.New("corrupt key document: bad seed length")
		}
		priv = ed25519.NewKeyFromSeed(kf.Seed)
	} else {
		src := &Keyring{backend: BackendFile, passphrase: func(bool) (string, error) { return srcPassphrase() }}
		if priv, err = src.open(kf); err != nil {
			return Info{}, err
		}
	}
	if !equalBytes(priv.Public().(ed25519.PublicKey), kf.PubKey) {
		return Info{}, errors.New("key document: private key does not match public key")
	}
	return k.Import(name, priv)
}

func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
