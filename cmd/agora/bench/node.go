package bench

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/node"
)

// startNode writes a fresh single-validator chain in dir (operator op, bond
// 10× the minimum) on free loopback ports and starts it.
func startNode(dir string, g node.GenesisOptions, op types.Address, blockTime time.Duration, indexer string, explorer bool, logger *slog.Logger) (*node.Node, node.Config, error) {
	cfg := node.DefaultConfig()
	ports, err := freePorts(3)
	if err != nil {
		return nil, cfg, err
	}
	cfg.P2P.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	cfg.RPC.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	cfg.API.Laddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	cfg.Consensus.TimeoutCommit = blockTime
	cfg.TxIndex.Indexer = indexer
	cfg.Explorer.Enabled = explorer
	cfg.Instrumentation.CometBFTMetrics = false
	home := node.NodeHome(dir, 0)
	spec := node.ValidatorSpec{Home: home, Moniker: "bench", Operator: op, Bonded: g.Params.MinValidatorStake * 10, Config: cfg}
	if _, err := node.InitNetwork(g, []node.ValidatorSpec{spec}); err != nil {
		return nil, cfg, err
	}
	n, err := node.New(home, cfg, logger)
	if err != nil {
		return nil, cfg, err
	}
	if err := n.Start(); err != nil {
		n.Stop()
		return nil, cfg, err
	}
	return n, cfg, nil
}
