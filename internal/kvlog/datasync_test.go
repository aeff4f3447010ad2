package kvlog

import (
	"bytes"
	"fmt"
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
	switch {
	case !aio:
		t.Log("no AIO here (build, kernel or seccomp): plain fdatasync")
	case s.plain:
		t.Log("AIO fsync refused on this file system: fell back to fdatasync")
	case s.viaAIO != 100:
		// every async sync (the even ones) must have gone through AIO
		t.Fatalf("%d of the 100 async syncs went through AIO", s.viaAIO)
	}
	t.Logf("AIO in use: %v (%d syncs)", !s.plain, s.viaAIO)
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

// The log syncs through AIO exactly while its owner reports other work in
// flight (SetBusy), and blocks in fdatasync otherwise.
func TestBusySyncsThroughAIO(t *testing.T) {
	d, err := OpenDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.syncer.plain {
		t.Skip("no AIO fsync here: every sync is plain")
	}
	busy := false
	d.SetBusy(func() bool { return busy })
	for i := 0; i < 20; i++ {
		busy = i >= 10
		if err := d.SetSync([]byte(fmt.Sprintf("k%d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if d.syncer.plain {
		t.Skip("AIO fsync refused by this file system")
	}
	if d.syncer.viaAIO != 10 {
		t.Fatalf("%d of 20 syncs went through AIO, want the 10 made while busy", d.syncer.viaAIO)
	}
}
