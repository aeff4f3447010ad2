package kvlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/internal/dirlock"
)

// DB is a Pebble store whose writes all go through a log of its own: the
// log is the store's only write-ahead log (Pebble runs with its WAL off).
//
// Why: a synced Pebble commit hands the batch to Pebble's WAL goroutine and
// waits to be woken after its fsync; on the request path of a provider or a
// gateway (one synced write per request) those two hand-offs cost more than
// the fsync itself. CommitSync instead appends the batch to a log segment,
// and the committing goroutine writes and fdatasyncs it itself (a segment is
// preallocated, so a sync flushes data, not the file's size); batches that
// arrive while a sync is under way are written together by the next one
// (group commit). Once durable, the leader applies the group's batches to
// Pebble in log order, without a Pebble sync, before any of them returns.
// Commit is the unsynced write: applied at once, its frame written to the
// log at once without an fdatasync, or with the next group if a sync is
// under way (see Commit for what a crash keeps of it). With both going
// through the log, Pebble's own WAL would only write everything a second
// time (64 connections through the gateway: +4–7 % req/s without it).
//
// Recovery: Open replays every segment into Pebble (a batch applied twice
// leaves the same state, and log order is apply order for the writes of
// one key, which their callers order), flushes Pebble and starts a fresh
// segment. A torn write at the log's end is dropped with a warning; other
// damage refuses to open (CorruptError) until Recover sets it aside (see
// parseSegment). When a segment is full the next one starts at once, and the old
// one is removed once a background flush of Pebble ends (see retire);
// Close flushes Pebble and removes the segments. Reads go to Pebble
// directly; writes cannot bypass the log (DB exposes no other write).
type DB struct {
	db    *pebble.DB
	dir   string       // the log's
	store string       // the store's (Pebble's)
	log   *slog.Logger // a torn write dropped at Open

	mu      sync.Mutex
	idle    *sync.Cond // signalled when no sync is under way (Close waits)
	seg     *os.File   // current segment
	segNum  uint64
	off     int64  // bytes written to seg
	forming *group // batches waiting for the sync under way to end
	syncing bool
	err     error // sticky: the log could not be written
	closed  bool
	segSize int64
	syncer  *dataSyncer // the leader's
	busy    func() bool // see SetBusy
	spares  [][]byte    // written groups' buffers, for the next groups (one written, one forming)
	// unsynced: the current segment ends in frames written without an
	// fdatasync (Commit's); syncs counts the leader's fdatasyncs (tests).
	unsynced bool
	syncs    int

	flush    func() (<-chan struct{}, error) // Pebble's AsyncFlush (a test holds it)
	retiring sync.WaitGroup                  // segments waiting for a flush to be removed
	retireMu sync.Mutex                      // one retirement at a time, oldest first
}

// SegmentSize is the space preallocated for each log segment; a segment is
// retired (Pebble flushed, the file removed) when the next would overflow it.
const SegmentSize = 64 << 20

const (
	frameHeader = 8 // length, crc32c
	maxFrame    = SegmentSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenDB opens (or creates) the store in dir with its log in dir/agora-log,
// replaying what the log holds; a torn write it drops is reported to
// slog's default logger (see OpenDBLogger).
func OpenDB(dir string) (*DB, error) { return openDB(dir, SegmentSize, nil, nil) }

// OpenDBLogger is OpenDB reporting a torn write it drops to log.
func OpenDBLogger(dir string, log *slog.Logger) (*DB, error) {
	return openDB(dir, SegmentSize, log, nil)
}

// openDB opens the store; with rec, it first sets aside the log from a
// corrupt frame on (see Recover) and reports in rec what it kept.
func openDB(dir string, segSize int64, log *slog.Logger, rec *Recovery) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	opts := Options()
	opts.DisableWAL = true // the log is the WAL
	// Every request writes a receipt (and, on a provider, its transcript):
	// with Pebble's default 4 MiB memtables, flushes and the compactions of
	// their small L0 files took ≈ 7 % of the CPU through the gateway at 64
	// connections. 32 MiB: +7–8 % req/s over 20 s runs (105k requests).
	opts.MemTableSize = 32 << 20
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, dirlock.Pebble(dir, err)
	}
	d := &DB{db: db, dir: filepath.Join(dir, "agora-log"), store: dir, log: log, segSize: segSize, syncer: newDataSyncer(), flush: db.AsyncFlush}
	d.idle = sync.NewCond(&d.mu)
	if err := d.recover(rec); err != nil {
		d.syncer.close()
		db.Close()
		return nil, err
	}
	return d, nil
}

func segName(n uint64) string { return fmt.Sprintf("%016d.log", n) }

// segments lists the log's segment numbers in order.
func (d *DB) segments() ([]uint64, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		var n uint64
		if name := e.Name(); strings.HasSuffix(name, ".log") {
			if _, err := fmt.Sscanf(name, "%016d.log", &n); err != nil {
				return nil, fmt.Errorf("log: unexpected file %s", name)
			}
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// CorruptError is a log Open refuses: a frame that does not check out, in
// a segment that is not the last or followed by frames that do (not a torn
// write: see parseSegment). Nothing was replayed or changed; Recover keeps
// the log before the frame.
type CorruptError struct {
	Store   string // the store's directory (for the recover command)
	Segment string // the segment file
	Offset  int64  // the frame's offset in it
	Reason  string // why the frame does not check out
	After   int64  // bytes of the segment from the next frame that checks out to its last non-zero byte
	Later   int    // segments after this one
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("kvlog: %s: corrupt frame at offset %d (%s)", e.Segment, e.Offset, e.Reason)
	if e.After > 0 {
		msg += fmt.Sprintf(" followed by %d more bytes of log", e.After)
	}
	if e.Later > 0 {
		msg += fmt.Sprintf(" and %d later segment(s)", e.Later)
	}
	return msg + fmt.Sprintf(": refusing to open; run 'agora store recover --store %s' to keep the log before it (the rest is moved aside to %s.corrupt-%d)", e.Store, e.Segment, e.Offset)
}

// Recovery is what Recover did.
type Recovery struct {
	Store      string     `json:"store"`
	Segment    string     `json:"segment,omitempty"` // the damaged segment ("": the log was whole)
	Offset     int64      `json:"offset,omitempty"`  // of the damaged frame in it
	Reason     string     `json:"reason,omitempty"`
	Torn       bool       `json:"torn,omitempty"` // a torn write at the log's end (Open drops it too)
	KeptFrames int        `json:"kept_frames"`    // frames replayed into the store
	KeptBytes  int64      `json:"kept_bytes"`     // their bytes in the log, headers included
	SetAside   []SetAside `json:"set_aside,omitempty"`
}

// SetAside is a file holding log that was not replayed.
type SetAside struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	Frames int    `json:"frames"` // frames in it that check out (after the damaged one)
}

// Recover opens the store in dir the way an operator asks for after Open
// refused a corrupt log: the log before the first corrupt frame is kept
// and replayed; the rest of that segment (up to its last non-zero byte) is
// copied to <segment>.corrupt-<offset> before the segment is cut there,
// and later segments are renamed <segment>.corrupt-0 — nothing is deleted.
// The store is then closed; the next Open succeeds. On a whole log it
// replays it as Open would.
func Recover(dir string, log *slog.Logger) (*Recovery, error) {
	rec := &Recovery{Store: dir}
	d, err := openDB(dir, SegmentSize, log, rec)
	if err != nil {
		return nil, err
	}
	return rec, d.Close()
}

// segCheck is what the first pass of recover learns of a segment.
type segCheck struct {
	num  uint64
	path string
	scan segScan
}

// recover replays the segments into Pebble, flushes it, removes them and
// starts a new segment. Every segment is checked before anything is
// replayed or changed, so a log it refuses is left as it was. With rec
// (Recover), a corrupt frame's log is set aside first.
func (d *DB) recover(rec *Recovery) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	segs, err := d.segments()
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	checks, corrupt, err := d.check(segs)
	if err != nil {
		return err
	}
	if corrupt >= 0 {
		if rec == nil {
			c := checks[corrupt]
			return &CorruptError{Store: absPath(d.store), Segment: absPath(c.path), Offset: c.scan.good, Reason: c.scan.bad,
				After: c.scan.after(), Later: len(checks) - 1 - corrupt}
		}
		if err := d.setAside(checks, corrupt, rec); err != nil {
			return err
		}
		if segs, err = d.segments(); err != nil {
			return fmt.Errorf("log: %w", err)
		}
		if checks, corrupt, err = d.check(segs); err != nil {
			return err
		}
		if corrupt >= 0 { // cannot happen: the segment now ends before the frame
			c := checks[corrupt]
			return fmt.Errorf("log: %s still corrupt at offset %d after recovery", c.path, c.scan.good)
		}
	}
	replayed, replayedBytes := 0, int64(0)
	for i, c := range checks {
		data, err := os.ReadFile(c.path)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		s := parseSegment(data)
		if s.bad != "" && i == len(checks)-1 {
			// A torn write (check let only that through, and only here):
			// dropped. If frames that check out follow the torn one, the
			// bytes are kept beside the log first (never acknowledged
			// as durable, but not destroyed either).
			aside := ""
			if s.resync >= 0 {
				aside = fmt.Sprintf("%s.torn-%d", c.path, s.good)
				if err := writeSynced(aside, data[s.good:s.written]); err != nil {
					return err
				}
				if err := syncDir(d.dir); err != nil {
					return err
				}
			}
			d.log.Warn("kvlog: dropping a torn write at the end of the log", "file", absPath(c.path), "offset", s.good,
				"reason", s.bad, "bytes", s.written-s.good, "set_aside", aside)
			if rec != nil {
				rec.Segment, rec.Offset, rec.Reason, rec.Torn = absPath(c.path), s.good, s.bad, true
				if aside != "" {
					rec.SetAside = append(rec.SetAside, SetAside{Path: absPath(aside), Bytes: s.written - s.good, Frames: s.framesAfter(data)})
				}
			}
		}
		for _, f := range s.frames {
			b := d.db.NewBatch()
			if err := b.SetRepr(append([]byte(nil), f...)); err != nil {
				return fmt.Errorf("log segment %s: a batch does not decode: %w", segName(c.num), err)
			}
			if err := d.db.Apply(b, pebble.NoSync); err != nil {
				return fmt.Errorf("log replay: %w", err)
			}
			b.Close()
			replayed++
			replayedBytes += int64(frameHeader + len(f))
		}
	}
	if rec != nil {
		rec.KeptFrames, rec.KeptBytes = replayed, replayedBytes
	}
	if replayed > 0 {
		if err := d.db.Flush(); err != nil {
			return fmt.Errorf("log replay: flushing the store: %w", err)
		}
	}
	// Old segments go first, oldest first, and only then does a new one
	// start: a crash in between leaves a suffix of them, whose replay again
	// ends in the same state.
	if err := d.removeSegments(segs); err != nil {
		return err
	}
	next := uint64(1)
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	return d.newSegment(next)
}

// check parses every segment and returns what it found, with the index of
// the first segment Open must refuse (-1: none): one with a frame that
// does not check out, unless it is the last segment and the damage is a
// torn write's. A segment that is not the last was fdatasynced whole
// before the next took a frame (see write), so no crash tears it.
func (d *DB) check(segs []uint64) ([]segCheck, int, error) {
	checks := make([]segCheck, len(segs))
	corrupt := -1
	for i, n := range segs {
		path := filepath.Join(d.dir, segName(n))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, 0, fmt.Errorf("log: %w", err)
		}
		s := parseSegment(data)
		s.frames = nil // the replay parses again: one segment in memory at a time
		checks[i] = segCheck{num: n, path: path, scan: s}
		if corrupt < 0 && s.bad != "" && (i < len(segs)-1 || !s.torn) {
			corrupt = i
		}
	}
	return checks, corrupt, nil
}

// setAside makes a corrupt log openable without deleting a byte: the
// corrupt segment's bytes from the bad frame to its last non-zero one are
// copied (and synced) to <segment>.corrupt-<offset>, every later segment is
// renamed <segment>.corrupt-0, and only then is the segment cut before the
// frame. A crash part way leaves a log that is still corrupt (run it
// again: the copy is rewritten the same) or already cut.
func (d *DB) setAside(checks []segCheck, corrupt int, rec *Recovery) error {
	c := checks[corrupt]
	data, err := os.ReadFile(c.path)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	s := parseSegment(data)
	rec.Segment, rec.Offset, rec.Reason = absPath(c.path), s.good, s.bad
	aside := fmt.Sprintf("%s.corrupt-%d", c.path, s.good)
	if err := writeSynced(aside, data[s.good:s.written]); err != nil {
		return err
	}
	rec.SetAside = append(rec.SetAside, SetAside{Path: absPath(aside), Bytes: s.written - s.good, Frames: s.framesAfter(data)})
	for _, l := range checks[corrupt+1:] {
		to := l.path + ".corrupt-0"
		if err := os.Rename(l.path, to); err != nil {
			return fmt.Errorf("log: setting aside %s: %w", l.path, err)
		}
		ld, err := os.ReadFile(to)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		ls := parseSegment(ld)
		frames := len(ls.frames)
		if ls.bad != "" {
			frames += ls.framesAfter(ld)
		}
		rec.SetAside = append(rec.SetAside, SetAside{Path: absPath(to), Bytes: ls.written, Frames: frames})
	}
	if err := syncDir(d.dir); err != nil {
		return err
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(s.good); err != nil {
		return fmt.Errorf("log: cutting %s at %d: %w", c.path, s.good, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

// writeSynced writes data to a new file (or over a previous attempt's)
// and fdatasyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("log: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("log: syncing %s: %w", path, err)
	}
	return f.Close()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// sectorSize is the smallest unit a disk writes whole: after a power
// loss, each sector of a write that was not yet fdatasynced holds either
// what was written or what it held before (zeros, in a fresh
// preallocated segment).
const sectorSize = 512

// segScan is what parseSegment finds in a segment.
type segScan struct {
	frames  [][]byte
	good    int64  // end of the frames that check out: the offset of the bad frame, if any
	bad     string // why the frame at good does not check out ("": the segment ends cleanly there)
	written int64  // just past the segment's last non-zero byte
	resync  int64  // the first offset after good where a frame checks out (-1: none; -2: not known, see findFrame)
	torn    bool   // the damage is what a torn write can leave (see parseSegment)
}

// after is how many bytes of the segment, from the next frame that checks
// out after the bad one, a refusal to open protects.
func (s segScan) after() int64 {
	switch s.resync {
	case -1:
		return 0
	case -2:
		return s.written - s.good
	}
	return s.written - s.resync
}

// framesAfter counts the frames that check out, one after another, from
// the first after the bad frame.
func (s segScan) framesAfter(data []byte) int {
	if s.resync < 0 {
		return 0
	}
	return len(parseSegment(data[s.resync:]).frames)
}

// parseSegment reads a segment's frames from its start: they end at a
// zero length followed by nothing but zeros (the preallocated rest) or at
// the file's end. A frame that does not check out — cut short, a zero or
// oversized length with more data after it, a checksum mismatch — ends
// them, and is judged a torn write (torn) or not:
//
//   - A crash of the process cuts the last write anywhere (the kernel
//     keeps what was copied): the frame it cut is the last non-zero data.
//   - A power loss keeps, of the writes since the last fdatasync (one
//     group, or several if unsynced commits preceded it), any subset of
//     their sectors; a sector not kept reads as zeros (the segment is
//     fresh and preallocated, and its first kept part holds the synced
//     log before the write). So a group can be torn in its middle, and
//     frames after the hole check out.
//
// So the damage is a torn write if no frame after it checks out, or if,
// between the bad frame's offset and the next frame that does, there is a
// lost sector: the bytes from max(sector start, bad offset) to the
// sector's end all zero (and not if the search for a next frame gives
// up: see findFrame). A flipped byte in a frame followed by frames that
// check out is neither: corruption of synced data, which Open refuses
// rather than dropping acknowledged writes (a segment that is not the last
// is refused whatever its damage: see check).
func parseSegment(data []byte) segScan {
	s := segScan{written: lastNonZero(data), resync: -1}
	off := int64(0)
	for off < s.written {
		rest := data[off:]
		if len(rest) < frameHeader {
			s.bad = "header cut short"
			break
		}
		n := int64(binary.LittleEndian.Uint32(rest))
		sum := binary.LittleEndian.Uint32(rest[4:])
		switch {
		case n == 0:
			s.bad = "zero length, with data after it"
		case n > maxFrame-frameHeader || frameHeader+n > int64(len(rest)):
			s.bad = fmt.Sprintf("length %d past the segment's end", n)
		case crc32.Checksum(rest[frameHeader:frameHeader+n], castagnoli) != sum:
			s.bad = "checksum mismatch"
		}
		if s.bad != "" {
			break
		}
		s.frames = append(s.frames, rest[frameHeader:frameHeader+n])
		off += frameHeader + n
	}
	s.good = off
	if s.bad == "" {
		return s
	}
	s.resync = findFrame(data, off+1, s.written)
	s.torn = s.resync == -1 || s.resync >= 0 && lostSector(data, off, s.resync)
	return s
}

// findFrame returns the first offset in [from, to) where a frame checks
// out, -1 if none does, or -2 if it gave up looking. A frame holds a
// Pebble batch: a 12-byte header (sequence number, count of entries) and
// at least 2 bytes an entry, which keeps chance matches in damaged bytes
// out. Each candidate costs a checksum over its length, so the search
// stops after checksumming scanBudget bytes (damage followed by that much
// data that does not parse is not a torn write anyway).
func findFrame(data []byte, from, to int64) int64 {
	budget := int64(scanBudget)
	for o := from; o+frameHeader <= to; o++ {
		n := int64(binary.LittleEndian.Uint32(data[o:]))
		if n < batchHeader || n > maxFrame-frameHeader || o+frameHeader+n > int64(len(data)) {
			continue
		}
		f := data[o+frameHeader : o+frameHeader+n]
		if c := int64(binary.LittleEndian.Uint32(f[8:])); c == 0 || c > (n-batchHeader)/2 {
			continue
		}
		if budget -= n; budget < 0 {
			return -2
		}
		if crc32.Checksum(f, castagnoli) == binary.LittleEndian.Uint32(data[o+4:]) {
			return o
		}
	}
	return -1
}

// scanBudget bounds findFrame's work (≈ 20 ms of CRC-32C).
const scanBudget = 256 << 20

const batchHeader = 12 // a Pebble batch's sequence number and count

// lostSector reports whether a sector starting before to holds, from
// max(its start, from) to its end, nothing but zeros: what a power loss
// leaves of a sector it did not keep. (A kept frame at to may share that
// sector only if its own bytes there are zeros.)
func lostSector(data []byte, from, to int64) bool {
	for ss := from - from%sectorSize; ss < to; ss += sectorSize {
		if allZero(data[max(ss, from):min(ss+sectorSize, int64(len(data)))]) {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// lastNonZero returns the offset just past data's last non-zero byte.
func lastNonZero(data []byte) int64 {
	i := len(data)
	for i >= 8 && binary.LittleEndian.Uint64(data[i-8:]) == 0 {
		i -= 8
	}
	for i > 0 && data[i-1] == 0 {
		i--
	}
	return int64(i)
}

// newSegment creates and preallocates segment n and makes it current.
func (d *DB) newSegment(n uint64) error {
	f, err := os.OpenFile(filepath.Join(d.dir, segName(n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if err := preallocate(f, d.segSize); err != nil {
		f.Close()
		return fmt.Errorf("log: preallocating %s: %w", segName(n), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	if err := syncDir(d.dir); err != nil {
		f.Close()
		return err
	}
	if d.seg != nil {
		d.seg.Close()
	}
	d.seg, d.segNum, d.off = f, n, 0
	return nil
}

// retire removes the segments up to n, oldest first, once Pebble holds
// what they do. One retirement at a time, so a crash leaves a suffix of
// the log (replaying an older segment after a newer one was dropped could
// undo the newer one's writes). A segment that cannot be removed now is
// replayed, harmlessly, at the next Open, which removes it.
func (d *DB) retire(n uint64) {
	d.retireMu.Lock()
	defer d.retireMu.Unlock()
	segs, err := d.segments()
	if err != nil {
		return
	}
	var old []uint64
	for _, s := range segs {
		if s <= n {
			old = append(old, s)
		}
	}
	d.removeSegments(old)
}

func (d *DB) removeSegments(nums []uint64) error {
	for _, n := range nums {
		if err := os.Remove(filepath.Join(d.dir, segName(n))); err != nil {
			return fmt.Errorf("log: %w", err)
		}
	}
	if len(nums) > 0 {
		return syncDir(d.dir)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("log: syncing %s: %w", dir, err)
	}
	return nil
}

// CommitSync makes b durable and applies it; concurrent calls share one
// write and one fdatasync. b stays owned by the caller (close it after).
func (d *DB) CommitSync(b *pebble.Batch) error {
	g, err := d.join(b)
	if err != nil {
		return err
	}
	g.batches = append(g.batches, b)
	if led := d.leadIfIdle(g); led {
		return g.err
	}
	// Wait for the group to be written by whoever leads it: the leader of
	// the sync under way hands it to one of its members when done.
	select {
	case <-g.done:
	case <-g.lead:
		d.mu.Lock()
		d.lead(g)
	}
	return g.err
}

// Commit applies b at once and writes it to the log without an
// fdatasync: at once if no sync is under way, else with the group being
// formed, whose leader writes it as soon as that sync ends. Once written it
// survives the process's crash (the kernel holds the write), and the next
// CommitSync's fdatasync makes it durable, as that covers the whole
// segment; a crash of the process before it is written, or of the machine
// before that fdatasync, loses it. b stays owned by the caller.
func (d *DB) Commit(b *pebble.Batch) error {
	g, err := d.join(b)
	if err != nil {
		return err
	}
	// The frame is formed first (Apply may keep the batch's bytes), then
	// the batch applied under mu, so unsynced writes reach Pebble in their
	// frames' order. A synced write of the same key is ordered by its
	// caller: it returns only once applied, and its frame precedes any
	// later one.
	framed := frameHeader + len(b.Repr())
	if err := d.db.Apply(b, pebble.NoSync); err != nil {
		g.buf = g.buf[:len(g.buf)-framed]
		d.mu.Unlock()
		return fmt.Errorf("log: applying: %w", err)
	}
	if led := d.leadIfIdle(g); led {
		return g.err
	}
	return nil
}

// join appends b's frame to the group being formed, starting one if none
// is, and returns that group with mu held — or an error, without it, if b
// is too large or the log takes no more writes.
func (d *DB) join(b *pebble.Batch) (*group, error) {
	rec := b.Repr()
	if len(rec) > maxFrame-frameHeader {
		return nil, fmt.Errorf("log: a batch of %d bytes is too large", len(rec))
	}
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return nil, errors.New("log: store closed")
	case d.err != nil:
		err := d.err
		d.mu.Unlock()
		return nil, err
	}
	g := d.forming
	if g == nil {
		g = &group{done: make(chan struct{}), lead: make(chan struct{}, 1)}
		if n := len(d.spares); n > 0 {
			g.buf, d.spares = d.spares[n-1], d.spares[:n-1]
		}
		d.forming = g
	}
	g.buf = binary.LittleEndian.AppendUint32(g.buf, uint32(len(rec)))
	g.buf = binary.LittleEndian.AppendUint32(g.buf, crc32.Checksum(rec, castagnoli))
	g.buf = append(g.buf, rec...)
	return g, nil
}

// leadIfIdle runs g at once if no sync is under way (reporting true, g
// then written), else leaves it to form. Called with mu held; returns with
// it released.
func (d *DB) leadIfIdle(g *group) bool {
	if d.syncing {
		d.mu.Unlock()
		return false
	}
	d.syncing = true
	d.lead(g)
	return true
}

// lead detaches the forming group g and runs it. Called with mu held and
// syncing set; returns with mu released.
func (d *DB) lead(g *group) {
	d.forming = nil
	d.mu.Unlock()
	d.run(g)
}

// group is the frames written (and, if any member waits for it, synced)
// together.
type group struct {
	buf     []byte
	batches []*pebble.Batch // CommitSync's, applied once durable; Commit's were applied already
	done    chan struct{}   // closed once written and applied (or failed)
	lead    chan struct{}   // one member receives: lead it
	err     error
}

// run writes g (detached from forming) — synced if a CommitSync waits for
// it — and applies its synced batches, then hands the group formed
// meanwhile to one of its waiting members, so only that member wakes. A
// group of unsynced frames only has nobody waiting: run writes it too.
func (d *DB) run(g *group) {
	for {
		err := d.write(g.buf, len(g.batches) > 0)
		if err == nil {
			for _, b := range g.batches {
				if err = d.db.Apply(b, pebble.NoSync); err != nil {
					err = fmt.Errorf("log: applying a durable batch: %w", err)
					break
				}
			}
		}
		g.err = err
		close(g.done)
		d.mu.Lock()
		if len(d.spares) < 2 && cap(g.buf) <= 1<<20 { // written: nothing reads it any more
			d.spares = append(d.spares, g.buf[:0])
		}
		if err != nil && d.err == nil {
			d.err = err // the log's state is unknown from here: refuse further writes
		}
		next := d.forming
		switch {
		case next == nil:
			d.syncing = false
			d.idle.Broadcast()
		case d.err != nil:
			d.forming, d.syncing = nil, false
			next.err = d.err
			close(next.done)
			d.idle.Broadcast()
		case len(next.batches) == 0:
			d.forming = nil
			d.mu.Unlock()
			g = next
			continue
		default:
			next.lead <- struct{}{} // syncing stays true: next's leader carries on
		}
		d.mu.Unlock()
		return
	}
}

// write appends buf to the current segment and, if sync, fdatasyncs it,
// retiring the segment first if buf would overflow it. Only the leader
// calls it.
func (d *DB) write(buf []byte, sync bool) error {
	if d.off > 0 && d.off+int64(len(buf)) > d.segSize {
		// Everything in the old segment was applied by earlier leaders
		// (or by Commit before its frame was formed): it can go once
		// Pebble has flushed what it holds now. The flush runs in the
		// background (a full memtable takes tens of milliseconds, and
		// every commit would wait for it here).
		// The old segment must be whole on disk before the next one gets
		// a frame: else a machine crash could tear its unsynced tail while
		// a synced frame of the next survives, and replay refuses a
		// damaged segment that is not the last.
		if d.unsynced {
			if err := d.datasync(false); err != nil {
				return err
			}
		}
		old := d.segNum
		if err := d.newSegment(old + 1); err != nil {
			return err
		}
		flushed, err := d.flush()
		if err != nil {
			return fmt.Errorf("log: flushing the store: %w", err)
		}
		d.retiring.Add(1)
		go func() {
			defer d.retiring.Done()
			<-flushed
			d.retire(old)
		}()
	}
	if _, err := d.seg.WriteAt(buf, d.off); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	d.off += int64(len(buf))
	if !sync {
		d.unsynced = true
		return nil
	}
	return d.datasync(d.busy == nil || d.busy())
}

// datasync makes the current segment's writes durable (async: see SetBusy).
// Only the leader calls it.
func (d *DB) datasync(async bool) error {
	if err := d.syncer.fdatasync(d.seg, async); err != nil {
		return fmt.Errorf("log: fdatasync: %w", err)
	}
	d.unsynced = false
	d.syncs++
	return nil
}

// SetBusy tells the store how to learn whether its owner has other work in
// flight (requests being served) when it syncs: if not, the sync blocks its
// goroutine (fastest for a lone writer); if so, or without a busy func, the
// sync is awaited on the network poller so the goroutine's P serves the
// rest meanwhile. Call it before the first commit.
func (d *DB) SetBusy(busy func() bool) { d.busy = busy }

// SetSync sets one key durably (see CommitSync).
func (d *DB) SetSync(key, value []byte) error {
	b := d.db.NewBatch()
	defer b.Close()
	b.Set(key, value, nil)
	return d.CommitSync(b)
}

// Set sets one key without waiting for durability (see Commit).
func (d *DB) Set(key, value []byte) error {
	b := d.db.NewBatch()
	defer b.Close()
	b.Set(key, value, nil)
	return d.Commit(b)
}

// NewBatch returns a batch for CommitSync or Commit (never the batch's own
// Commit, which would write to Pebble around the log).
func (d *DB) NewBatch() *pebble.Batch { return d.db.NewBatch() }

// Get reads a key from Pebble (see pebble.DB.Get: close the closer).
func (d *DB) Get(key []byte) ([]byte, io.Closer, error) { return d.db.Get(key) }

// NewIter iterates over Pebble (see pebble.DB.NewIter).
func (d *DB) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) { return d.db.NewIter(o) }

// Close waits for a sync and retirements under way, flushes Pebble past
// the log, removes the log's segments and closes the store.
func (d *DB) Close() error {
	d.mu.Lock()
	d.closed = true // no new commits; groups already formed are still led
	for d.syncing {
		d.idle.Wait()
	}
	d.mu.Unlock()
	d.retiring.Wait()
	err := d.db.Flush()
	if err == nil && d.err == nil {
		d.seg.Close()
		var segs []uint64
		if segs, err = d.segments(); err == nil {
			err = d.removeSegments(segs)
		}
	} else {
		d.seg.Close()
	}
	d.syncer.close()
	return errors.Join(err, d.db.Close())
}
