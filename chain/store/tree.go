package store

import (
	"fmt"
	"path/filepath"
	"sync"

	dbm "github.com/cosmos/cosmos-db"
	"github.com/cosmos/iavl"
	idb "github.com/cosmos/iavl/db"
	ics23 "github.com/cosmos/ics23/go"
)

// Tree is the committed state: an IAVL tree whose root hash is the app hash.
//
// Snapshots share nodes with the working tree, and IAVL detaches a shared
// node's children when the working tree copies it on write: mu makes those
// writes (Set, Delete, Commit, Prune, Rollback) exclusive with snapshot reads.
type Tree struct {
	db   dbm.DB
	tree *iavl.MutableTree
	mu   sync.RWMutex
}

// nodeCacheSize is the IAVL in-memory node cache (nodes, not bytes). Large
// enough that the hot accounts of a busy chain stay in memory.
const nodeCacheSize = 500_000

// OpenTree opens (or creates) the state tree in dir using Pebble.
func OpenTree(dir string) (*Tree, error) {
	db, err := dbm.NewPebbleDB("state", filepath.Clean(dir), nil)
	if err != nil {
		return nil, fmt.Errorf("open state db in %s: %w", dir, err)
	}
	return newTree(db)
}

// OpenMemTree returns a tree in memory, for tests.
func OpenMemTree() (*Tree, error) { return newTree(dbm.NewMemDB()) }

func newTree(db dbm.DB) (*Tree, error) {
	t := iavl.NewMutableTree(idb.NewWrapper(db), nodeCacheSize, true, iavl.NewNopLogger(), iavl.SyncOption(true))
	if _, err := t.Load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load state tree: %w", err)
	}
	return &Tree{db: db, tree: t}, nil
}

// Version is the last committed version (block height).
func (t *Tree) Version() int64 { return t.tree.Version() }

// Hash is the root hash of the last committed version.
func (t *Tree) Hash() []byte { return t.tree.Hash() }

// WorkingHash is the root hash including uncommitted writes.
func (t *Tree) WorkingHash() []byte { return t.tree.WorkingHash() }

// SetInitialVersion makes the first committed version v instead of 1.
func (t *Tree) SetInitialVersion(v uint64) { t.tree.SetInitialVersion(v) }

// Commit saves the working tree as a new version.
func (t *Tree) Commit() ([]byte, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tree.SaveVersion()
}

// Prune deletes every version up to and including v (not the latest).
// Pruning changes storage only, never the app hash.
func (t *Tree) Prune(v int64) error {
	if v <= 0 || v >= t.tree.Version() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tree.DeleteVersionsTo(v)
}

// Rollback discards uncommitted writes.
func (t *Tree) Rollback() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tree.Rollback()
}

// Close closes the database.
func (t *Tree) Close() error { return t.db.Close() }

func (t *Tree) Get(key []byte) []byte {
	v, err := t.tree.Get(key)
	must(err, "get")
	return v
}

func (t *Tree) Has(key []byte) bool { return t.Get(key) != nil }

func (t *Tree) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	t.mu.Lock()
	_, err := t.tree.Set(key, value)
	t.mu.Unlock()
	must(err, "set")
}

func (t *Tree) Delete(key []byte) {
	t.mu.Lock()
	_, _, err := t.tree.Remove(key)
	t.mu.Unlock()
	must(err, "delete")
}

func (t *Tree) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	it, err := t.tree.Iterator(prefix, PrefixEnd(prefix), true)
	must(err, "iterate")
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			return
		}
	}
	must(it.Error(), "iterate")
}

// Snapshot returns a read-only view of committed version v, safe to use
// concurrently with writes to the working tree.
func (t *Tree) Snapshot(v int64) (*Snapshot, error) {
	t.mu.RLock()
	im, err := t.tree.GetImmutable(v)
	t.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("state at height %d: %w", v, err)
	}
	return &Snapshot{tree: im, version: v, mu: &t.mu}, nil
}

// Snapshot is an immutable committed version of the state.
type Snapshot struct {
	tree    *iavl.ImmutableTree
	version int64
	mu      *sync.RWMutex // the tree's: held while reading shared nodes
}

// Version is the snapshot's height.
func (s *Snapshot) Version() int64 { return s.version }

// Hash is the snapshot's root hash (the app hash in the header of block Version+1).
func (s *Snapshot) Hash() []byte { return s.tree.Hash() }

func (s *Snapshot) Get(key []byte) []byte {
	s.mu.RLock()
	v, err := s.tree.Get(key)
	s.mu.RUnlock()
	must(err, "get")
	return v
}

func (s *Snapshot) Has(key []byte) bool { return s.Get(key) != nil }

func (s *Snapshot) Set(key, value []byte) { panic("state store: write to a read-only snapshot") }

func (s *Snapshot) Delete(key []byte) { panic("state store: write to a read-only snapshot") }

// Iterate reads the prefix in chunks under the read lock and calls fn
// outside it, so fn may read the snapshot again without nesting locks.
func (s *Snapshot) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	const chunk = 256
	start, end := prefix, PrefixEnd(prefix)
	for {
		var keys, vals [][]byte
		s.mu.RLock()
		it, err := s.tree.Iterator(start, end, true)
		if err != nil {
			s.mu.RUnlock()
			must(err, "iterate")
		}
		for ; it.Valid() && len(keys) < chunk; it.Next() {
			keys = append(keys, append([]byte(nil), it.Key()...))
			vals = append(vals, append([]byte(nil), it.Value()...))
		}
		more := it.Valid()
		err = it.Error()
		it.Close()
		s.mu.RUnlock()
		must(err, "iterate")
		for i := range keys {
			if !fn(keys[i], vals[i]) {
				return
			}
		}
		if !more {
			return
		}
		start = append(keys[len(keys)-1], 0) // the next key after the last one read
	}
}

// Proof returns an ICS-23 proof of key's membership (or absence) in the snapshot.
func (s *Snapshot) Proof(key []byte) (*ics23.CommitmentProof, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.GetProof(key)
}

// VerifyProof checks an ICS-23 proof for key/value (value nil: absence) against root.
func VerifyProof(root []byte, proof *ics23.CommitmentProof, key, value []byte) bool {
	if value == nil {
		return ics23.VerifyNonMembership(ics23.IavlSpec, root, proof, key)
	}
	return ics23.VerifyMembership(ics23.IavlSpec, root, proof, key, value)
}
