package explorer

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/types"
)

// Retention: with SetKeepBlocks(k), the index keeps the per-block detail
// (b/ block rows, t/ tx rows, a/ account→tx entries) of only the last k
// blocks. Everything else is an aggregate or a rare record and stays: the
// totals, per-epoch and per-provider sums, commitments, verdicts, scores,
// channels and the zk registry's proofs and faults, so the overview, epoch,
// provider, verdict and zk pages (and their charts, which read the epoch
// sums) are the same as on an unpruned index.
// m/pruned records the highest height whose detail is gone, so a request for
// an older block says "pruned" rather than "not found".

var keyPruned = []byte("m/pruned")

// pruneChunk bounds one prune batch: a node that turns retention on over a
// long index deletes its history in steps, each crash-safe on its own.
const pruneChunk = 1000

// SetKeepBlocks sets how many recent blocks keep their detail (0: all).
func (x *Index) SetKeepBlocks(k int64) {
	if k < 0 {
		k = 0
	}
	x.keep.Store(k)
}

// KeepBlocks is the retention window (0: all blocks are kept).
func (x *Index) KeepBlocks() int64 { return x.keep.Load() }

// Pruned is the highest height whose detail was pruned (0: none).
func (x *Index) Pruned() int64 {
	v, closer, err := x.db.Get(keyPruned)
	if err != nil {
		return 0
	}
	defer closer.Close()
	return int64(binary.BigEndian.Uint64(v))
}

// Prune deletes the detail of the blocks that fell out of the retention
// window, in batches of at most pruneChunk blocks; each batch also moves
// m/pruned, so a crash leaves the index consistent (the next call resumes).
// It returns how many blocks it pruned. With retention off it does nothing.
func (x *Index) Prune() (int64, error) {
	k := x.keep.Load()
	if k <= 0 {
		return 0, nil
	}
	target := x.Height() - k // blocks up to target lose their detail
	var n int64
	for from := x.Pruned() + 1; from <= target; {
		to := min(target, from+pruneChunk-1)
		if err := x.pruneRange(from, to); err != nil {
			return n, err
		}
		n += to - from + 1
		from = to + 1
	}
	return n, nil
}

// pruneRange deletes blocks from..to (inclusive) in one batch.
func (x *Index) pruneRange(from, to int64) error {
	b := x.db.NewBatch()
	defer b.Close()
	for h := from; h <= to; h++ {
		bk := key("b/", be64(uint64(h)))
		var blk Block
		ok, err := x.get(bk, &blk)
		if err != nil {
			return fmt.Errorf("explorer prune: block %d: %w", h, err)
		}
		if !ok {
			continue
		}
		for _, th := range blk.TxHashes {
			hb, err := hex.DecodeString(th)
			if err != nil {
				return fmt.Errorf("explorer prune: block %d: tx hash %q: %w", h, th, err)
			}
			tk := key("t/", hb)
			var t Tx
			found, err := x.get(tk, &t)
			if err != nil {
				return fmt.Errorf("explorer prune: tx %s: %w", th, err)
			}
			// The same bytes may be included again later (a refused
			// duplicate): the row then belongs to the later block.
			if !found || t.Height != h {
				continue
			}
			for _, a := range t.Accounts {
				addr, err := types.ParseAddress(a)
				if err != nil {
					return fmt.Errorf("explorer prune: tx %s account %q: %w", th, a, err)
				}
				if err := b.Delete(key("a/", addr, be64(uint64(h)), be64(uint64(t.Index))[4:]), nil); err != nil {
					return err
				}
			}
			if err := b.Delete(tk, nil); err != nil {
				return err
			}
		}
		if err := b.Delete(bk, nil); err != nil {
			return err
		}
	}
	if err := b.Set(keyPruned, be64(uint64(to)), nil); err != nil {
		return err
	}
	// Not synced, as Apply: a lost tail is pruned again.
	return b.Commit(pebble.NoSync)
}

// errPruned is the answer for detail beyond the retention window.
type errPruned struct{ msg string }

func (e errPruned) Error() string { return e.msg }

// IsPruned reports whether err says the data was pruned.
func IsPruned(err error) bool {
	var p errPruned
	return errors.As(err, &p)
}

// prunedBlock explains why block h is not in the index, when it was pruned.
func (x *Index) prunedBlock(h int64) error {
	p := x.Pruned()
	if h < 1 || h > p {
		return nil
	}
	if k := x.keep.Load(); k > 0 {
		return errPruned{fmt.Sprintf("pruned: this node keeps the last %d blocks (block %d is older than the oldest kept, %d)", k, h, p+1)}
	}
	return errPruned{fmt.Sprintf("pruned: this node's explorer no longer has the blocks up to %d (block %d is one of them)", p, h)}
}

// prunedTx explains a tx hash missing from an index that pruned blocks: it
// may be older than the window (the hash alone does not say its height).
func (x *Index) prunedTx(hash string) error {
	p := x.Pruned()
	if p == 0 {
		return nil
	}
	if k := x.keep.Load(); k > 0 {
		return errPruned{fmt.Sprintf("pruned: this node keeps the last %d blocks; no transaction %s is in them (blocks up to %d were pruned, so it may be older)", k, hash, p)}
	}
	return errPruned{fmt.Sprintf("pruned: no transaction %s in this node's explorer, which no longer has the blocks up to %d (it may be older)", hash, p)}
}
