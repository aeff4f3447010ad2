package kvlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
)

// DB is a Pebble store whose synced writes go through a log of its own.
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
//
// Recovery: Open replays every segment into Pebble (a batch applied twice
// leaves the same state, and log order is apply order), syncs Pebble and
// starts a fresh segment. A segment is retired once Pebble is synced past
// it. Reads go to Pebble directly. Writes with pebble.Sync must not bypass
// CommitSync (they would be ordered outside the log); unsynced writes may go
// to Pebble directly for keys the log never writes.
type DB struct {
	*pebble.DB
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
}

// SegmentSize is the space preallocated for each log segment; a segment is
// retired (Pebble synced, the file removed) when the next would overflow it.
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
	db, err := Open(dir)
	if err != nil {
		return nil, err
	}
	d := &DB{DB: db, dir: filepath.Join(dir, "agora-log"), segSize: segSize, syncer: newDataSyncer()}
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

// recover replays the segments into Pebble, syncs it, removes them and
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
			b := d.DB.NewBatch()
			if err := b.SetRepr(append([]byte(nil), f...)); err != nil {
				return fmt.Errorf("log segment %s: a batch does not decode: %w", segName(n), err)
			}
			if err := d.DB.Apply(b, pebble.NoSync); err != nil {
				return fmt.Errorf("log replay: %w", err)
			}
			b.Close()
			replayed++
		}
	}
	if replayed > 0 {
		if err := d.DB.LogData(nil, pebble.Sync); err != nil {
			return fmt.Errorf("log replay: sync: %w", err)
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
	rec := b.Repr()
	if len(rec) > maxFrame-frameHeader {
		return fmt.Errorf("log: a batch of %d bytes is too large", len(rec))
	}
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return errors.New("log: store closed")
	case d.err != nil:
		d.mu.Unlock()
		return d.err
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
	g.batches = append(g.batches, b)
	if !d.syncing {
		d.syncing = true
		d.lead(g)
		return g.err
	}
	d.mu.Unlock()
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

// lead detaches the forming group g and runs it. Called with mu held and
// syncing set; returns with mu released.
func (d *DB) lead(g *group) {
	d.forming = nil
	d.mu.Unlock()
	d.run(g)
}

// group is the batches written and synced together.
type group struct {
	buf     []byte
	batches []*pebble.Batch
	done    chan struct{} // closed once written and applied (or failed)
	lead    chan struct{} // one member receives: lead it
	err     error
}

// run writes, syncs and applies g (detached from forming), then hands the
// group formed meanwhile to one of its members, so only that member wakes.
func (d *DB) run(g *group) {
	err := d.write(g.buf)
	if err == nil {
		for _, b := range g.batches {
			if err = d.DB.Apply(b, pebble.NoSync); err != nil {
				err = fmt.Errorf("log: applying a durable batch: %w", err)
				break
			}
		}
	}
	g.err = err
	close(g.done)
	d.mu.Lock()
	defer d.mu.Unlock()
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
	default:
		next.lead <- struct{}{} // syncing stays true: next's leader carries on
	}
}

// write appends buf to the current segment and fdatasyncs it, retiring the
// segment first if buf would overflow it. Only the leader calls it.
func (d *DB) write(buf []byte) error {
	if d.off > 0 && d.off+int64(len(buf)) > d.segSize {
		// Everything in the old segment was applied by earlier leaders:
		// sync Pebble past it, then drop it.
		if err := d.DB.LogData(nil, pebble.Sync); err != nil {
			return fmt.Errorf("log: syncing the store: %w", err)
		}
		old := d.segNum
		if err := d.newSegment(old + 1); err != nil {
			return err
		}
		if err := d.removeSegments([]uint64{old}); err != nil {
			return err
		}
	}
	if _, err := d.seg.WriteAt(buf, d.off); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if err := d.syncer.fdatasync(d.seg, d.busy == nil || d.busy()); err != nil {
		return fmt.Errorf("log: fdatasync: %w", err)
	}
	d.off += int64(len(buf))
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
	b := d.DB.NewBatch()
	defer b.Close()
	b.Set(key, value, nil)
	return d.CommitSync(b)
}

// Close waits for a sync under way, syncs Pebble past the log, removes the
// log's segment and closes the store.
func (d *DB) Close() error {
	d.mu.Lock()
	d.closed = true // no new commits; groups already formed are still led
	for d.syncing {
		d.idle.Wait()
	}
	d.mu.Unlock()
	err := d.DB.LogData(nil, pebble.Sync)
	if err == nil && d.err == nil {
		d.seg.Close()
		err = d.removeSegments([]uint64{d.segNum})
	} else {
		d.seg.Close()
	}
	d.syncer.close()
	return errors.Join(err, d.DB.Close())
}
