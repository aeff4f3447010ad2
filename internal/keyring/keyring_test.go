package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pass(p string) func(bool) (string, error) {
	return func(bool) (string, error) { return p, nil }
}

func TestFileKeyringEncryptsAtRest(t *testing.T) {
	home := t.TempDir()
	kr, err := Open(home, BackendFile, pass("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := kr.Add("alice")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := kr.PrivKey("alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(home, "keyring-file", "alice.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(strings.ToLower(hexs(priv.Seed())))) || strings.Contains(string(raw), `"seed"`) {
		t.Fatal("private key stored in the clear")
	}
	// wrong passphrase
	bad, _ := Open(home, BackendFile, pass("wrong passphrase"))
	if _, err := bad.PrivKey("alice"); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// tampered ciphertext
	tampered := bytes.Replace(raw, []byte(`"ciphertext": "`), []byte(`"ciphertext": "00`), 1)
	os.WriteFile(filepath.Join(home, "keyring-file", "bob.json"), tampered, 0o600)
	if _, err := kr.PrivKey("bob"); err == nil {
		t.Fatal("tampered key opened")
	}
	os.Remove(filepath.Join(home, "keyring-file", "bob.json"))
	// export / import into a test keyring, same key
	doc, err := kr.Export("alice")
	if err != nil {
		t.Fatal(err)
	}
	test, _ := Open(t.TempDir(), BackendTest, nil)
	got, err := test.ImportArmored("alice2", doc, func() (string, error) { return "correct horse", nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Address.String() != info.Address.String() {
		t.Fatal("import changed the address")
	}
	priv2, _ := test.PrivKey("alice2")
	if !bytes.Equal(priv, priv2) {
		t.Fatal("imported key differs")
	}
	list, _ := kr.List()
	if len(list) != 1 || list[0].Name != "alice" {
		t.Fatalf("list %+v", list)
	}
	if err := kr.Delete("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Show("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := kr.Add("../evil"); err == nil {
		t.Fatal("path-like key name accepted")
	}
	if _, err := Open(home, "plain", nil); err == nil {
		t.Fatal("unknown backend accepted")
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestFileKeyringRefusesPlainKey(t *testing.T) {
	home := t.TempDir()
	test, _ := Open(home, BackendTest, nil)
	test.Add("k")
	raw, _ := os.ReadFile(filepath.Join(home, "keyring-test", "k.json"))
	os.MkdirAll(filepath.Join(home, "keyring-file"), 0o700)
	os.WriteFile(filepath.Join(home, "keyring-file", "k.json"), raw, 0o600)
	file, _ := Open(home, BackendFile, pass("whatever12"))
	if _, err := file.PrivKey("k"); err == nil {
		t.Fatal("file keyring opened an unencrypted key")
	}
}
