package explorer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
)

// Source is what the follower reads from a node: CometBFT's status, ABCI
// info, block and block results queries (the in-process local client or an
// RPC client).
type Source interface {
	Status(ctx context.Context) (*ctypes.ResultStatus, error)
	ABCIInfo(ctx context.Context) (*ctypes.ResultABCIInfo, error)
	Block(ctx context.Context, height *int64) (*ctypes.ResultBlock, error)
	BlockResults(ctx context.Context, height *int64) (*ctypes.ResultBlockResults, error)
}

// Fetch reads block h and its results from src.
func Fetch(ctx context.Context, src Source, h int64) (*BlockData, error) {
	b, err := src.Block(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", h, err)
	}
	r, err := src.BlockResults(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("block %d results: %w", h, err)
	}
	d := &BlockData{Height: h, Hash: b.BlockID.Hash, Time: b.Block.Time, Proposer: b.Block.ProposerAddress, Events: events(r.FinalizeBlockEvents)}
	for _, tx := range b.Block.Txs {
		d.Txs = append(d.Txs, tx)
	}
	for _, tr := range r.TxResults {
		d.Results = append(d.Results, TxResult{Code: tr.Code, Log: tr.Log, Events: events(tr.Events)})
	}
	return d, nil
}

func events(evs []abci.Event) []Event {
	var out []Event
	for _, e := range evs {
		ev := Event{Type: e.Type, Attrs: map[string]string{}}
		for _, a := range e.Attributes {
			ev.Attrs[a.Key] = a.Value
		}
		out = append(out, ev)
	}
	return out
}

// Follow indexes every committed block as it appears, polling src every
// interval, until ctx ends. Catching up on a long chain logs its progress.
func Follow(ctx context.Context, x *Index, src Source, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := CatchUp(ctx, x, src, log); err != nil && ctx.Err() == nil {
			log.Warn("explorer index", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CatchUp indexes the blocks between the index's height and the node's
// latest.
func CatchUp(ctx context.Context, x *Index, src Source, log *slog.Logger) error {
	st, err := src.Status(ctx)
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	latest := st.SyncInfo.LatestBlockHeight
	// The status's height is the block store's, and CometBFT saves a block
	// before executing it: until the app has committed that block its
	// results are not stored, and asking for them fails ("could not find
	// results for height"). The results of every block up to the app's
	// committed height are stored (CometBFT saves them before Commit).
	info, err := src.ABCIInfo(ctx)
	if err != nil {
		return fmt.Errorf("node app info: %w", err)
	}
	latest = min(latest, info.Response.LastBlockHeight)
	from := x.Height() + 1
	if from < st.SyncInfo.EarliestBlockHeight {
		return fmt.Errorf("the node keeps blocks from %d, the index needs %d: delete the index to rebuild it from there", st.SyncInfo.EarliestBlockHeight, from)
	}
	last := time.Now()
	for h := from; h <= latest; h++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d, err := Fetch(ctx, src, h)
		if err != nil {
			return err
		}
		if err := x.Apply(d); err != nil {
			return err
		}
		if time.Since(last) > 5*time.Second {
			log.Info("explorer catching up", "height", h, "latest", latest)
			last = time.Now()
		}
	}
	// Detail that fell out of the retention window goes after the blocks
	// that pushed it out are in.
	if n, err := x.Prune(); err != nil {
		return fmt.Errorf("prune: %w", err)
	} else if n > 0 {
		log.Debug("explorer pruned", "blocks", n, "up_to", x.Pruned())
	}
	return nil
}
