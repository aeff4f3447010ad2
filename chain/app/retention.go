package app

import "sync/atomic"

// Block retention: Commit's RetainHeight tells CometBFT it may prune the
// blocks below it. The app itself needs no past block (epoch seeds come
// from the block hash FinalizeBlock is given, and are kept in state), so the
// window is the operator's choice, bounded by RetainLimit for whatever reads
// blocks from the node's store (the explorer's indexer).
type retention struct {
	// KeepBlocks, when positive, keeps only the last KeepBlocks blocks in
	// CometBFT's block store. 0 keeps all (peers catching up, `agora query
	// tx` and state proofs of old heights need them).
	KeepBlocks int64
	// RetainLimit, when set, returns the highest retain height allowed now
	// (0: none, keep everything): the first block a reader still needs.
	RetainLimit func() int64

	retained atomic.Int64 // last retain height returned (0: none yet)
}

// retainHeight is the RetainHeight to return from committing height v: the
// oldest of the last KeepBlocks blocks, never past RetainLimit, and 0 (no
// change) unless it moves up, as CometBFT refuses to lower it.
func (a *App) retainHeight(v int64) int64 {
	if a.KeepBlocks <= 0 {
		return 0
	}
	r := v - a.KeepBlocks + 1
	if a.RetainLimit != nil {
		r = min(r, a.RetainLimit())
	}
	if r <= 1 || r <= a.retained.Load() {
		return 0
	}
	a.retained.Store(r)
	return r
}

// RetainHeight is the last retain height Commit returned (0: none): blocks
// below it may be pruned.
func (a *App) RetainHeight() int64 { return a.retained.Load() }

// NoteRetained tells the app the blocks below h are gone already (a
// restarted node's store base), so it never returns a lower retain height.
func (a *App) NoteRetained(h int64) {
	for {
		cur := a.retained.Load()
		if h <= cur || a.retained.CompareAndSwap(cur, h) {
			return
		}
	}
}
