package cli

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/internal/kvlog"
)

// TestStoreRecover: `agora store recover --store DIR` on a store whose
// log has a corrupt frame 1 of 3 keeps frame 0, sets the rest aside and
// says so; the store then opens with frame 0's key alone. A path with no
// store is refused without creating one.
func TestStoreRecover(t *testing.T) {
	src := t.TempDir()
	d, err := kvlog.OpenDB(src)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := d.SetSync([]byte(fmt.Sprint("k", i)), bytes.Repeat([]byte{'v'}, 30)); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(src, "agora-log", "*.log"))
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	dir := t.TempDir() // the store as a kill -9 leaves it: its log alone
	seg := filepath.Join(dir, "agora-log", filepath.Base(segs[0]))
	os.MkdirAll(filepath.Dir(seg), 0o755)
	data = data[:4096]
	frame1 := 8 + int64(binary.LittleEndian.Uint32(data))
	frame2 := frame1 + 8 + int64(binary.LittleEndian.Uint32(data[frame1:]))
	end := frame2 + 8 + int64(binary.LittleEndian.Uint32(data[frame2:]))
	data[frame1+20] ^= 0x01
	os.WriteFile(seg, data, 0o644)
	if _, err := kvlog.OpenDB(dir); err == nil || !strings.Contains(err.Error(), "agora store recover --store") {
		t.Fatalf("open before recovery: %v", err)
	}

	var out, errOut bytes.Buffer
	run := func(args ...string) error {
		out.Reset()
		root := NewRoot()
		root.SetArgs(args)
		root.SetOut(&out)
		root.SetErr(&errOut)
		return root.Execute()
	}
	// The command prints to its globals' out (NewRoot's is os.Stdout): built here to capture it.
	g := &globals{out: &out, errOut: &errOut}
	cmd := storeCmd(g)
	cmd.SetArgs([]string{"recover", "--store", dir})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	absSeg, _ := filepath.Abs(seg)
	want := fmt.Sprintf(`store %s: corrupt frame at offset %d of %s (checksum mismatch)
kept 1 frame(s), %d bytes of log, replayed into the store
set aside %d bytes (1 frame(s) in them check out) in %s.corrupt-%d
the store opens now
`, dir, frame1, absSeg, frame1, end-frame1, absSeg, frame1)
	if out.String() != want {
		t.Fatalf("output\n%s\nwant\n%s", out.String(), want)
	}
	r, err := kvlog.OpenDB(dir)
	if err != nil {
		t.Fatalf("open after recovery: %v", err)
	}
	for i, want := range []bool{true, false, false} {
		_, c, err := r.Get([]byte(fmt.Sprint("k", i)))
		if (err == nil) != want {
			t.Fatalf("k%d present %v after recovery", i, err == nil)
		}
		if err == nil {
			c.Close()
		}
	}
	r.Close()

	missing := filepath.Join(t.TempDir(), "typo")
	if err := run("store", "recover", "--store", missing); err == nil || !strings.Contains(err.Error(), "no store at "+missing) {
		t.Fatalf("a path with no store: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("a store was created at the mistyped path: %v", err)
	}
}
