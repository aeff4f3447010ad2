package data

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.txt": "bee", "a/x.txt": "ex", "a/y/z.txt": ""} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := TarDir(&buf, dir); err != nil {
		t.Fatal(err)
	}
	fs, err := Files(buf.Bytes(), "ignored")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name+"="+string(f.Data))
	}
	if got := strings.Join(names, ","); got != "a/x.txt=ex,a/y/z.txt=,b.txt=bee" {
		t.Fatalf("files %s", got)
	}
	// A blob that is not a tar is one file named after the dataset.
	for _, tc := range []struct{ data, name, want string }{
		{"just some text", "notes.txt", "notes.txt"},
		{"x", "bad/name", "data"},
		{"x", "", "data"},
		{"x", "..", "data"},
	} {
		fs, err := Files([]byte(tc.data), tc.name)
		if err != nil || len(fs) != 1 || fs[0].Name != tc.want || string(fs[0].Data) != tc.data {
			t.Errorf("Files(%q, %q) = %+v, %v", tc.data, tc.name, fs, err)
		}
	}
	// Tars with members a job must not see are refused.
	mk := func(hs ...*tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			h.Format = tar.FormatUSTAR
			tw.WriteHeader(h)
			tw.Write(make([]byte, h.Size))
		}
		tw.Close()
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		tar  []byte
		want string
	}{
		{"symlink", mk(&tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "/etc/passwd"}), "not a regular file"},
		{"escape", mk(&tar.Header{Typeflag: tar.TypeReg, Name: "../x", Size: 1}), "not a relative path"},
		{"absolute", mk(&tar.Header{Typeflag: tar.TypeReg, Name: "/x", Size: 1}), "not a relative path"},
		{"twice", mk(&tar.Header{Typeflag: tar.TypeReg, Name: "x", Size: 1}, &tar.Header{Typeflag: tar.TypeReg, Name: "x", Size: 1}), "twice"},
	} {
		if _, err := Files(tc.tar, "d"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzFiles: no tar (or other blob) panics Files, and every file it
// returns has a name a job's /data accepts, once.
func FuzzFiles(f *testing.F) {
	dir := f.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "x"), []byte("ex"), 0o600)
	os.WriteFile(filepath.Join(dir, "b"), []byte("bee"), 0o600)
	var buf bytes.Buffer
	if err := TarDir(&buf, dir); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(make([]byte, 1024))
	f.Add([]byte("plain text"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := Files(b, "d")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, x := range fs {
			if x.Name == "" || strings.HasPrefix(x.Name, "/") || strings.Contains("/"+x.Name+"/", "/../") || seen[x.Name] {
				t.Fatalf("file name %q", x.Name)
			}
			seen[x.Name] = true
		}
	})
}
