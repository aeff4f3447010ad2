package kvlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
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
// segment. When a segment is full the next one starts at once, and the old
// one is removed once a background flush of Pebble ends (see retire);
// Close flushes Pebble and removes the segments. Reads go to Pebble
// directly; writes cannot bypass the log (DB exposes no other write).
type DB struct {
	db  *pebble.DB
	dir string

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
// replaying what the log holds.
func OpenDB(dir string) (*DB, error) { return openDB(dir, SegmentSize) }

func openDB(dir string, segSize int64) (*DB, error) {
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
	d := &DB{db: db, dir: filepath.Join(dir, "agora-log"), segSize: segSize, syncer: newDataSyncer(), flush: db.AsyncFlush}
	d.idle = sync.NewCond(&d.mu)
	if err := d.recover(); err != nil {
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

// recover replays the segments into Pebble, flushes it, removes them and
// starts a new segment.
func (d *DB) recover() error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	segs, err := d.segments()
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	replayed := 0
	for i, n := range segs {
		data, err := os.ReadFile(filepath.Join(d.dir, segName(n)))
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		frames, err := parseFrames(data)
		if err != nil && i < len(segs)-1 {
			// Only the last segment can end in a torn write; a retired
			// one was synced whole.
			return fmt.Errorf("log segment %s: %w", segName(n), err)
		}
		for _, f := range frames {
			b := d.db.NewBatch()
			if err := b.SetRepr(append([]byte(nil), f...)); err != nil {
				return fmt.Errorf("log segment %s: a batch does not decode: %w", segName(n), err)
			}
			if err := d.db.Apply(b, pebble.NoSync); err != nil {
				return fmt.Errorf("log replay: %w", err)
			}
			b.Close()
			replayed++
		}
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

// parseFrames returns the frames of a segment up to its end: zeros (the
// preallocated rest) or the file's end. A frame that is cut short or fails
// its checksum ends the segment with an error (a torn write, if last).
func parseFrames(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) >= frameHeader {
		n := binary.LittleEndian.Uint32(data)
		if n == 0 {
			return out, nil
		}
		sum := binary.LittleEndian.Uint32(data[4:])
		if int64(n) > maxFrame || int(n) > len(data)-frameHeader {
			return out, fmt.Errorf("frame %d is cut short", len(out))
		}
		f := data[frameHeader : frameHeader+int(n)]
		if crc32.Checksum(f, castagnoli) != sum {
			return out, fmt.Errorf("frame %d fails its checksum", len(out))
		}
		out = append(out, f)
		data = data[frameHeader+int(n):]
	}
	return out, nil
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
