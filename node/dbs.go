package node

import (
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/agoranet/agora/internal/kvlog"
)

// dbTracker opens CometBFT's databases and remembers them, because CometBFT
// does not close all of them on stop (the tx indexer's stays open), and a
// node restarted in the same process would find it locked.
type dbTracker struct {
	mu  sync.Mutex
	dbs []*guardedDB
}

func (t *dbTracker) provider(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	var db dbm.DB
	var err error
	if ctx.Config.DBBackend == "pebbledb" {
		// as CometBFT's default provider does, minus Pebble's chatty logging
		db, err = dbm.NewPebbleDBWithOpts(ctx.ID, ctx.Config.DBDir(), kvlog.Options())
	} else {
		db, err = cmtcfg.DefaultDBProvider(ctx)
	}
	if err != nil {
		return nil, err
	}
	w := &guardedDB{db: db}
	t.mu.Lock()
	t.dbs = append(t.dbs, w)
	t.mu.Unlock()
	return w, nil
}

func (t *dbTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, db := range t.dbs {
		db.Close()
	}
	t.dbs = nil
}

// guardedDB makes a CometBFT database safe to use after Close. CometBFT
// stops some goroutines without waiting for them (the consensus reactor's
// maj23 query sleeps seconds between reads of the block store) and then
// closes its stores; such a goroutine reading a closed Pebble panics and
// takes the process with it. After Close, reads find nothing (CometBFT
// treats a missing commit as "nothing to send") and writes are dropped, as
// if the node had stopped a moment earlier; Close waits for calls in
// progress and is idempotent (Pebble panics on a second close).
type guardedDB struct {
	db     dbm.DB
	mu     sync.RWMutex
	closed bool
	err    error
}

// open runs f unless the database is closed; it holds Close off meanwhile.
func (d *guardedDB) open(f func()) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false
	}
	f()
	return true
}

func (d *guardedDB) Get(key []byte) (v []byte, err error) {
	d.open(func() { v, err = d.db.Get(key) })
	return v, err
}

func (d *guardedDB) Has(key []byte) (ok bool, err error) {
	d.open(func() { ok, err = d.db.Has(key) })
	return ok, err
}

func (d *guardedDB) Set(key, value []byte) (err error) {
	d.open(func() { err = d.db.Set(key, value) })
	return err
}

func (d *guardedDB) SetSync(key, value []byte) (err error) {
	d.open(func() { err = d.db.SetSync(key, value) })
	return err
}

func (d *guardedDB) Delete(key []byte) (err error) {
	d.open(func() { err = d.db.Delete(key) })
	return err
}

func (d *guardedDB) DeleteSync(key []byte) (err error) {
	d.open(func() { err = d.db.DeleteSync(key) })
	return err
}

func (d *guardedDB) Iterator(start, end []byte) (dbm.Iterator, error) {
	return d.iterator(start, end, d.db.Iterator)
}

func (d *guardedDB) ReverseIterator(start, end []byte) (dbm.Iterator, error) {
	return d.iterator(start, end, d.db.ReverseIterator)
}

// iterator opens an iterator with open (forward or reverse), guarded, or an
// empty one once the database is closed.
func (d *guardedDB) iterator(start, end []byte, open func(start, end []byte) (dbm.Iterator, error)) (dbm.Iterator, error) {
	var it dbm.Iterator
	var err error
	if !d.open(func() { it, err = open(start, end) }) {
		return emptyIter{start, end}, nil
	}
	if err != nil {
		return nil, err
	}
	return &guardedIter{it: it, d: d}, nil
}

func (d *guardedDB) NewBatch() dbm.Batch { return &guardedBatch{b: d.db.NewBatch(), d: d} }

func (d *guardedDB) Print() (err error) {
	d.open(func() { err = d.db.Print() })
	return err
}

func (d *guardedDB) Stats() (s map[string]string) {
	d.open(func() { s = d.db.Stats() })
	return s
}

func (d *guardedDB) Compact(start, end []byte) (err error) {
	d.open(func() { err = d.db.Compact(start, end) })
	return err
}

func (d *guardedDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		d.err = d.db.Close()
	}
	return d.err
}

// guardedBatch drops its write once the database is closed.
type guardedBatch struct {
	b dbm.Batch
	d *guardedDB
}

func (b *guardedBatch) Set(key, value []byte) error { return b.b.Set(key, value) }
func (b *guardedBatch) Delete(key []byte) error     { return b.b.Delete(key) }
func (b *guardedBatch) Close() error                { return b.b.Close() }

func (b *guardedBatch) Write() (err error) {
	b.d.open(func() { err = b.b.Write() })
	return err
}

func (b *guardedBatch) WriteSync() (err error) {
	b.d.open(func() { err = b.b.WriteSync() })
	return err
}

// guardedIter ends (invalid) once the database is closed.
type guardedIter struct {
	it dbm.Iterator
	d  *guardedDB
}

func (i *guardedIter) Domain() ([]byte, []byte) { return i.it.Domain() }

func (i *guardedIter) Valid() (ok bool) {
	i.d.open(func() { ok = i.it.Valid() })
	return ok
}

func (i *guardedIter) Next() { i.d.open(i.it.Next) }

func (i *guardedIter) Key() (k []byte) {
	i.d.open(func() { k = i.it.Key() })
	return k
}

func (i *guardedIter) Value() (v []byte) {
	i.d.open(func() { v = i.it.Value() })
	return v
}

func (i *guardedIter) Error() (err error) {
	i.d.open(func() { err = i.it.Error() })
	return err
}

func (i *guardedIter) Close() (err error) {
	i.d.open(func() { err = i.it.Close() })
	return err
}

// emptyIter is an iterator over nothing, for a closed database.
type emptyIter struct{ start, end []byte }

func (e emptyIter) Domain() ([]byte, []byte) { return e.start, e.end }
func (emptyIter) Valid() bool                { return false }
func (emptyIter) Next()                      { panic("emptyIter: Next on an invalid iterator") }
func (emptyIter) Key() []byte                { panic("emptyIter: Key on an invalid iterator") }
func (emptyIter) Value() []byte              { panic("emptyIter: Value on an invalid iterator") }
func (emptyIter) Error() error               { return nil }
func (emptyIter) Close() error               { return nil }
