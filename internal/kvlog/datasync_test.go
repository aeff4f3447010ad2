package kvlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDataSyncer syncs a file many times through the syncer (AIO where the
// machine allows it) and reads back what was written; a file that cannot be
// synced gives an error rather than a silent success.
func TestDataSyncer(t *testing.T) {
	s := newDataSyncer()
	defer s.close()
	aio := !s.plain
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []byte
	for i := 0; i < 200; i++ {
		rec := bytes.Repeat([]byte{byte(i)}, 100+i)
		if _, err := f.WriteAt(rec, int64(len(want))); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec...)
		if err := s.fdatasync(f, i%2 == 0); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	if aio && s.plain {
		t.Log("AIO fsync refused on this file system: fell back to fdatasync")
	}
	t.Logf("AIO in use: %v", !s.plain)
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (err %v), want %d", len(got), err, len(want))
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := s.fdatasync(w, true); err == nil {
		t.Fatal("syncing a pipe succeeded")
	}
}
