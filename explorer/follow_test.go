package explorer

import (
	"bytes"
	"context"
	"fmt"
	"github.com/agoranet/agora/testutil/poll"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// nodeSource plays a node for Follow the way CometBFT orders its writes: a
// block is in the block store (and the status's height) before the app has
// executed and committed it, and its results exist only from then on.
type nodeSource struct {
	mu        sync.Mutex
	blocks    []*BlockData // the block store
	committed int64        // the app's last committed height
	polls     int
}

func (s *nodeSource) Status(context.Context) (*ctypes.ResultStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	return &ctypes.ResultStatus{SyncInfo: ctypes.SyncInfo{EarliestBlockHeight: 1, LatestBlockHeight: int64(len(s.blocks))}}, nil
}

func (s *nodeSource) ABCIInfo(context.Context) (*ctypes.ResultABCIInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ctypes.ResultABCIInfo{Response: abci.InfoResponse{LastBlockHeight: s.committed}}, nil
}

func (s *nodeSource) Block(_ context.Context, h *int64) (*ctypes.ResultBlock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *h < 1 || *h > int64(len(s.blocks)) {
		return nil, fmt.Errorf("height %d must be less than or equal to the current blockchain height %d", *h, len(s.blocks))
	}
	d := s.blocks[*h-1]
	b := &cmttypes.Block{Header: cmttypes.Header{Height: d.Height, Time: d.Time, ProposerAddress: d.Proposer}}
	for _, tx := range d.Txs {
		b.Data.Txs = append(b.Data.Txs, tx)
	}
	return &ctypes.ResultBlock{BlockID: cmttypes.BlockID{Hash: d.Hash}, Block: b}, nil
}

func abciEvents(evs []Event) []abci.Event {
	var out []abci.Event
	for _, e := range evs {
		ev := abci.Event{Type: e.Type}
		for k, v := range e.Attrs {
			ev.Attributes = append(ev.Attributes, abci.EventAttribute{Key: k, Value: v})
		}
		out = append(out, ev)
	}
	return out
}

func (s *nodeSource) BlockResults(_ context.Context, h *int64) (*ctypes.ResultBlockResults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *h > s.committed {
		// CometBFT's answer for a block it has saved but not executed.
		return nil, fmt.Errorf("could not find results for height #%d", *h)
	}
	d := s.blocks[*h-1]
	r := &ctypes.ResultBlockResults{Height: *h, FinalizeBlockEvents: abciEvents(d.Events)}
	for _, tr := range d.Results {
		r.TxResults = append(r.TxResults, &abci.ExecTxResult{Code: tr.Code, Log: tr.Log, Events: abciEvents(tr.Events)})
	}
	return r, nil
}

func (s *nodeSource) commit(h int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = h
}

func (s *nodeSource) pollCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestFollowWaitsForTheAppToCommit: while the block store holds a block the
// app has not committed yet (normal running, every block), the follower
// indexes up to the committed height and logs nothing; once the block is
// committed it is indexed with its results.
func TestFollowWaitsForTheAppToCommit(t *testing.T) {
	f := fixture(t)
	src := &nodeSource{blocks: f.blocks, committed: 2}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	x := openIndex(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, x, src, 2*time.Millisecond, log)
	}()
	defer func() { cancel(); <-done }()

	// Two more polls after the first: the follower has looked at block 3
	// (saved, not executed) at least twice.
	poll.True(t, 30*time.Second, "blocks 1-2 indexed and two more polls", func() bool { return x.Height() == 2 && src.pollCount() >= 3 })
	if x.Height() != 2 {
		t.Fatalf("indexed to %d before block 3 was committed", x.Height())
	}
	src.commit(3)
	poll.True(t, 30*time.Second, "block 3 indexed once committed", func() bool { return x.Height() == 3 })
	if out := logs.String(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("the follower complained during normal running:\n%s", out)
	}
	b, err := x.Block(3)
	if err != nil {
		t.Fatal(err)
	}
	if b.Txs != 4 || len(b.Events) != 4 {
		t.Fatalf("block 3 indexed with %d txs and %d events, want 4 and 4", b.Txs, len(b.Events))
	}
}
