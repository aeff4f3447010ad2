package gateway

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/internal/kvlog"
	"github.com/agoranet/agora/testutil/testkey"
)

// TestCorruptLogRefused: a gateway store holding 21 receipts, left as a
// kill -9 leaves it (its log alone durable), with one byte flipped in the
// log's second frame, no longer opens with 1 receipt and 20 silently gone
// from /v1/receipts: it refuses, naming the segment, the offset and the
// recover command for its directory. Once the operator runs the recovery,
// it opens with the receipt before the damage.
func TestCorruptLogRefused(t *testing.T) {
	priv, _ := testkey.Pair("prov")
	src := t.TempDir()
	st := testStore(t, src)
	for i := range 21 {
		if err := st.AddReceipt(storedFor(t, priv, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	// What a kill -9 leaves: the log's segment as written, Pebble's memtable lost.
	dir := t.TempDir()
	segs, _ := filepath.Glob(filepath.Join(src, "agora-log", "*.log"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data = data[:1<<20] // the rest of the preallocated 64 MiB is zeros too
	seg := filepath.Join(dir, "agora-log", filepath.Base(segs[0]))
	os.MkdirAll(filepath.Dir(seg), 0o755)
	frame1 := 8 + int64(binary.LittleEndian.Uint32(data))
	data[frame1+8+40] ^= 0x04
	os.WriteFile(seg, data, 0o644)

	_, err = OpenStore(dir)
	absDir, _ := filepath.Abs(dir)
	absSeg, _ := filepath.Abs(seg)
	for _, want := range []string{
		"open gateway store " + dir,
		fmt.Sprintf("%s: corrupt frame at offset %d (checksum mismatch)", absSeg, frame1),
		"run 'agora store recover --store " + absDir + "'",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("open: %v\nwant %q in it", err, want)
		}
	}

	rec, err := kvlog.Recover(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.KeptFrames != 1 || len(rec.SetAside) != 1 || rec.SetAside[0].Frames != 19 {
		t.Fatalf("recovery %+v", rec)
	}
	re := testStore(t, dir)
	list, err := re.Receipts(0, 100, "")
	if err != nil || len(list) != 1 || list[0].Index != 0 {
		t.Fatalf("after recovery: %d receipts %v, want receipt 0 alone", len(list), err)
	}
}
