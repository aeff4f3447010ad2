package store

import (
	"fmt"
	"path/filepath"

	dbm "github.com/cosmos/cosmos-db"
	"github.com/cosmos/iavl"
	idb "github.com/cosmos/iavl/db"
	ics23 "github.com/cosmos/ics23/go"
)

// Tree is the committed state: an IAVL tree whose root hash is the app hash.
type Tree struct {
	db   dbm.DB
	tree *iavl.MutableTree
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
func (t *Tree) Commit() ([]byte, int64, error) { return t.tree.SaveVersion() }

// Prune deletes every version up to and including v (not the latest).
// Pruning changes storage only, never the app hash.
func (t *Tree) Prune(v int64) error {
	if v <= 0 || v >= t.tree.Version() {
		return nil
	}
	return t.tree.DeleteVersionsTo(v)
}

// Rollback discards uncommitted writes.
func (t *Tree) Rollback() { t.tree.Rollback() }

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
	_, err := t.tree.Set(key, value)
	must(err, "set")
}

func (t *Tree) Delete(key []byte) {
	_, _, err := t.tree.Remove(key)
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
	im, err := t.tree.GetImmutable(v)
	if err != nil {
		return nil, fmt.Errorf("state at height %d: %w", v, err)
	}
	return &Snapshot{tree: im, version: v}, nil
}

// Snapshot is an immutable committed version of the state.
type Snapshot struct {
	tree    *iavl.ImmutableTree
	version int64
}

// Version is the snapshot's height.
func (s *Snapshot) Version() int64 { return s.version }

// Hash is the snapshot's root hash (the app hash in the header of block Version+1).
func (s *Snapshot) Hash() []byte { return s.tree.Hash() }

func (s *Snapshot) Get(key []byte) []byte {
	v, err := s.tree.Get(key)
	must(err, "get")
	return v
}

func (s *Snapshot) Has(key []byte) bool { return s.Get(key) != nil }

func (s *Snapshot) Set(key, value []byte) { panic("state store: write to a read-only snapshot") }

func (s *Snapshot) Delete(key []byte) { panic("state store: write to a read-only snapshot") }

func (s *Snapshot) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	it, err := s.tree.Iterator(prefix, PrefixEnd(prefix), true)
	must(err, "iterate")
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			return
		}
	}
	must(it.Error(), "iterate")
}

// Proof returns an ICS-23 proof of key's membership (or absence) in the snapshot.
func (s *Snapshot) Proof(key []byte) (*ics23.CommitmentProof, error) {
	return s.tree.GetProof(key)
}

// VerifyProof checks an ICS-23 proof for key/value (value nil: absence) against root.
func VerifyProof(root []byte, proof *ics23.CommitmentProof, key, value []byte) bool {
	if value == nil {
		return ics23.VerifyNonMembership(ics23.IavlSpec, root, proof, key)
	}
	return ics23.VerifyMembership(ics23.IavlSpec, root, proof, key, value)
}
