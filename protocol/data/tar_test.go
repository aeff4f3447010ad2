package data

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, dir string, files map[string]string, mode os.FileMode, mtime time.Time) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

var sample = map[string]string{
	"b.txt":     "bee\n",
	"a/z.txt":   "zed",
	"a-c.txt":   "",
	"a/b/c.txt": strings.Repeat("x", 1000),
	"long/" + strings.Repeat("d", 90) + "/" + strings.Repeat("f", 90): "long name",
}

// TestTarDeterministic: the tar depends on names and bytes only — two
// copies with other modes and mtimes pack to the same bytes (pinned by
// their hash), members sorted byte-wise by name (so "a-c.txt" before
// "a/b/c.txt"), each 0644, uid/gid 0, mtime 0, and TarSize is its size.
func TestTarDeterministic(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	writeTree(t, d1, sample, 0o600, time.Unix(1_700_000_000, 0))
	writeTree(t, d2, sample, 0o755, time.Unix(1_800_000_000, 0))
	var b1, b2 bytes.Buffer
	if err := TarDir(&b1, d1); err != nil {
		t.Fatal(err)
	}
	if err := TarDir(&b2, d2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("two copies of a directory packed to different tars")
	}
	sum := sha256.Sum256(b1.Bytes())
	if got, want := hex.EncodeToString(sum[:]), "1fe10c127eebfa6c428f5671f065fb9c658799a1509ef6877742483ceb9172a5"; got != want {
		t.Fatalf("tar sha256 %s, want %s", got, want)
	}
	ms, err := Members(d1)
	if err != nil {
		t.Fatal(err)
	}
	if int64(b1.Len()) != TarSize(ms) {
		t.Fatalf("tar is %d bytes, TarSize says %d", b1.Len(), TarSize(ms))
	}
	tr := tar.NewReader(&b1)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 || h.Typeflag != tar.TypeReg || h.Uname != "" || string(body) != sample[h.Name] {
			t.Fatalf("member %+v (%q)", h, body)
		}
		names = append(names, h.Name)
	}
	want := []string{"a-c.txt", "a/b/c.txt", "a/z.txt", "b.txt", "long/" + strings.Repeat("d", 90) + "/" + strings.Repeat("f", 90)}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("members %q, want %q", names, want)
	}
}

// TestTarRefused: a symlink, an empty directory and a name ustar cannot
// hold are refused, each saying why.
func TestTarRefused(t *testing.T) {
	d := t.TempDir()
	writeTree(t, d, map[string]string{"a.txt": "a"}, 0o644, time.Unix(0, 0))
	if err := os.Symlink(filepath.Join(d, "a.txt"), filepath.Join(d, "link")); err != nil {
		t.Fatal(err)
	}
	if err := TarDir(io.Discard, d); err == nil || !strings.Contains(err.Error(), "link: not a regular file") {
		t.Fatalf("symlink: %v", err)
	}
	if err := TarDir(io.Discard, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Fatalf("empty: %v", err)
	}
	long := t.TempDir()
	writeTree(t, long, map[string]string{strings.Repeat("n", 120): "x"}, 0o644, time.Unix(0, 0))
	if err := TarDir(io.Discard, long); err == nil || !strings.Contains(err.Error(), "tar "+strings.Repeat("n", 120)) {
		t.Fatalf("a 120-byte base name: %v", err)
	}
}
