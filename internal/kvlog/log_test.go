package kvlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble"
)

// writeMany commits n batches from each of g goroutines: key k/<g>/<i> =
// v<i>, and a per-goroutine key last/<g> overwritten each time (a writer's
// own keys are written in order, as the stores' callers do).
func writeMany(t *testing.T, d *DB, g, n int) { writeMixed(t, d, g, n, false) }

// writeMixed is writeMany; with unsynced, every other batch of each
// goroutine goes through Commit instead of CommitSync.
func writeMixed(t *testing.T, d *DB, g, n int, unsynced bool) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				b := d.NewBatch()
				b.Set([]byte(fmt.Sprintf("k/%02d/%04d", w, i)), []byte(fmt.Sprintf("v%d", i)), nil)
				b.Set([]byte(fmt.Sprintf("last/%02d", w)), []byte(fmt.Sprint(i)), nil)
				var err error
				if unsynced && i%2 == 1 {
					err = d.Commit(b)
				} else {
					err = d.CommitSync(b)
				}
				b.Close()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func checkMany(t *testing.T, db *pebble.DB, g, n int) {
	t.Helper()
	get := func(k string) string {
		v, c, err := db.Get([]byte(k))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		defer c.Close()
		return string(v)
	}
	for w := 0; w < g; w++ {
		for i := 0; i < n; i++ {
			if v := get(fmt.Sprintf("k/%02d/%04d", w, i)); v != fmt.Sprintf("v%d", i) {
				t.Fatalf("k/%02d/%04d = %q", w, i, v)
			}
		}
		if v := get(fmt.Sprintf("last/%02d", w)); v != fmt.Sprint(n-1) {
			t.Fatalf("last/%02d = %q, want %d", w, v, n-1)
		}
	}
}

// copyLog copies a store's log segments into a fresh directory, as if the
// store had crashed having made nothing but its log durable.
func copyLog(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	if err := os.MkdirAll(filepath.Join(to, "agora-log"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(from, "agora-log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		bz, err := os.ReadFile(filepath.Join(from, "agora-log", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, "agora-log", e.Name()), bz, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "agora-log", "*.log"))
	return m
}

// TestCommitSyncReplay: concurrent synced commits are all readable at once,
// and the log alone rebuilds them in an empty store.
func TestCommitSyncReplay(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeMany(t, d, 16, 50)
	checkMany(t, d.db, 16, 50)
	crashed := copyLog(t, dir)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if s := segFiles(t, dir); len(s) != 0 {
		t.Fatalf("segments left after Close: %v", s)
	}
	r, err := OpenDB(crashed)
	if err != nil {
		t.Fatal(err)
	}
	checkMany(t, r.db, 16, 50)
	if s := segFiles(t, crashed); len(s) != 1 || !strings.HasSuffix(s[0], "0000000000000002.log") {
		t.Fatalf("after replay: segments %v, want only a new one", s)
	}
	// and the replayed store carries on
	writeMany(t, r, 2, 10)
	r.Close()
	re, err := OpenDB(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	v, c, err := re.Get([]byte("k/15/0049"))
	if err != nil || string(v) != "v49" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	c.Close()
	v, c, err = re.Get([]byte("last/01"))
	if err != nil || string(v) != "9" {
		t.Fatalf("after reopen: last/01 = %q %v", v, err)
	}
	c.Close()
}

// TestUnsyncedCommit: unsynced commits interleaved with synced ones, on the
// same keys and from many goroutines, are readable at once and in the log
// — which alone rebuilds them, in order, in an empty store — even when a
// group holds only unsynced frames (nobody waits for it: it is still
// written). Pebble keeps no WAL of its own here, so a write that bypassed
// the log would be missing from the rebuilt store.
func TestUnsyncedCommit(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeMixed(t, d, 16, 50, true)
	checkMany(t, d.db, 16, 50)
	// A lone unsynced write (no sync under way) is written at once.
	if err := d.Set([]byte("lone"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Unsynced writes only, from many goroutines: the groups they form
	// during each other's writes are written by whoever wrote the last.
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := d.Set([]byte(fmt.Sprintf("u/%d/%02d", w, i)), []byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d.mu.Lock()
	pending, syncing := d.forming, d.syncing
	d.mu.Unlock()
	if pending != nil || syncing {
		t.Fatalf("after the writers returned: a group left unwritten (%v) or a sync under way (%v)", pending != nil, syncing)
	}
	crashed := copyLog(t, dir)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenDB(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkMany(t, r.db, 16, 50)
	for _, k := range []string{"lone", "u/0/00", "u/7/49", "u/3/25"} {
		if _, c, err := r.Get([]byte(k)); err != nil {
			t.Fatalf("unsynced %s not rebuilt from the log: %v", k, err)
		} else {
			c.Close()
		}
	}
}

// TestRotation: segments are retired as they fill, the data stays whole
// across them and across a reopen, and a commit after Close is refused.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	d, err := openDB(dir, 4096, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeMany(t, d, 4, 200) // ≈ 60 bytes a frame: many segments
	d.retiring.Wait()       // old segments go once Pebble has flushed them
	if s := segFiles(t, dir); len(s) != 1 {
		t.Fatalf("segments %v, want one", s)
	}
	if d.segNum < 5 {
		t.Fatalf("segment %d: no rotation happened", d.segNum)
	}
	checkMany(t, d.db, 4, 200)
	d.Close()
	if err := d.SetSync([]byte("x"), []byte("y")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("a commit after Close: %v", err)
	}
	r, err := openDB(dir, 4096, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkMany(t, r.db, 4, 200)
}

// TestRetireAfterFlush: a full segment is removed only once Pebble has
// flushed what it held (Pebble keeps no WAL: until then the segment is the
// only copy of its writes), and then removed without a commit waiting.
func TestRetireAfterFlush(t *testing.T) {
	dir := t.TempDir()
	d, err := openDB(dir, 4096, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	d.flush = func() (<-chan struct{}, error) { return hold, nil } // a flush that never ends
	writeMany(t, d, 4, 200)
	if s := segFiles(t, dir); len(s) < 5 {
		t.Fatalf("segments %v: removed before their flush ended", s)
	}
	// Everything is still in the log alone.
	crashed := copyLog(t, dir)
	r, err := OpenDB(crashed)
	if err != nil {
		t.Fatal(err)
	}
	checkMany(t, r.db, 4, 200)
	r.Close()
	close(hold)
	d.retiring.Wait()
	if s := segFiles(t, dir); len(s) != 1 {
		t.Fatalf("segments %v after the flushes ended, want only the current one", s)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRotationSyncsUnsyncedTail: a segment ending in unsynced frames is
// fdatasynced before the next segment takes a frame (else a machine crash
// could leave a torn frame in a segment that is not the last, which
// replay refuses); a segment already synced is not synced again.
func TestRotationSyncsUnsyncedTail(t *testing.T) {
	d, err := openDB(t.TempDir(), 4096, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; d.segNum == 1; i++ { // unsynced writes until one starts segment 2
		if err := d.Set([]byte(fmt.Sprintf("u/%04d", i)), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if d.syncs != 1 {
		t.Fatalf("%d fdatasyncs for a rotation after unsynced writes only, want 1 (of the old segment)", d.syncs)
	}
	k := 0
	for ; d.segNum == 2; k++ { // synced writes until one starts segment 3
		if err := d.SetSync([]byte("s"), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if d.syncs != 1+k || d.unsynced {
		t.Fatalf("after %d synced writes: %d fdatasyncs, want %d (one each, none more at the rotation); tail unsynced %v", k, d.syncs, 1+k, d.unsynced)
	}
}

// TestWriteFailureSticks: a batch whose log write fails is not applied, and
// the store refuses every later commit (its log's state is unknown).
func TestWriteFailureSticks(t *testing.T) {
	d, err := OpenDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetSync([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	d.seg.Close() // the next write fails
	if err := d.SetSync([]byte("b"), []byte("2")); err == nil || !strings.Contains(err.Error(), "log:") {
		t.Fatalf("a failed write: %v", err)
	}
	if _, _, err := d.Get([]byte("b")); err != pebble.ErrNotFound {
		t.Fatalf("a batch whose write failed was applied: %v", err)
	}
	if err := d.SetSync([]byte("c"), []byte("3")); err == nil {
		t.Fatal("a commit after a failed write was accepted")
	}
	d.db.Close()
}
