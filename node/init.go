package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cmtcrypto "github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/chain/types"
)

// GenesisOptions describe a new chain.
type GenesisOptions struct {
	ChainID  string
	Params   types.Params
	Accounts []types.GenesisAccount
	// GenesisTime defaults to now.
	GenesisTime time.Time
}

// ValidatorSpec is one genesis validator: who operates it and what it bonds.
type ValidatorSpec struct {
	Home     string        // node home where its consensus key is written
	Moniker  string        // node name
	Operator types.Address // account that owns the bond
	Bonded   uint64
	Config   Config
}

// NodeInfo describes a node written by InitNetwork.
type NodeInfo struct {
	Home       string
	NodeID     string
	ConsPubKey []byte
	P2PAddr    string
}

// Initialized reports whether home already holds a node.
func Initialized(home string) bool {
	_, err := os.Stat(Paths{home}.GenesisFile())
	return err == nil
}

// InitNetwork writes one node home per validator with a shared genesis and
// each node's persistent peers set to all the others.
func InitNetwork(g GenesisOptions, vals []ValidatorSpec) ([]NodeInfo, error) {
	if len(vals) == 0 {
		return nil, errors.New("at least one validator is needed")
	}
	if g.ChainID == "" {
		return nil, errors.New("chain id is empty")
	}
	infos := make([]NodeInfo, len(vals))
	app := types.Genesis{Params: g.Params, Accounts: g.Accounts}
	var genVals []cmttypes.GenesisValidator
	for i, v := range vals {
		if Initialized(v.Home) {
			return nil, fmt.Errorf("%s already holds a node (found %s); remove it or pick another --home", v.Home, Paths{v.Home}.GenesisFile())
		}
		p := Paths{v.Home}
		for _, d := range []string{p.ConfigDir(), p.DataDir()} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, fmt.Errorf("create %s: %w", d, err)
			}
		}
		nk, err := p2p.LoadOrGenNodeKey(p.NodeKeyFile())
		if err != nil {
			return nil, fmt.Errorf("node key: %w", err)
		}
		pv, err := privval.LoadOrGenFilePV(p.PrivValKeyFile(), p.PrivValStateFile(), func() (cmtcrypto.PrivKey, error) {
			return ed25519.GenPrivKey(), nil
		})
		if err != nil {
			return nil, fmt.Errorf("validator key: %w", err)
		}
		pub := pv.Key.PubKey.Bytes()
		app.Validators = append(app.Validators, types.GenesisValidator{
			Operator: v.Operator, ConsPubKey: pub, Bonded: v.Bonded, Name: v.Moniker,
		})
		genVals = append(genVals, cmttypes.GenesisValidator{
			Address: pv.Key.PubKey.Address(), PubKey: pv.Key.PubKey,
			Power: int64(v.Bonded / g.Params.PowerReduction), Name: v.Moniker,
		})
		infos[i] = NodeInfo{Home: v.Home, NodeID: string(nk.ID()), ConsPubKey: pub, P2PAddr: v.Config.P2P.Laddr}
	}
	if err := app.Validate(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	appState, err := json.MarshalIndent(app, "", "  ")
	if err != nil {
		return nil, err
	}
	gt := g.GenesisTime
	if gt.IsZero() {
		gt = time.Now().UTC()
	}
	cp := cmttypes.DefaultConsensusParams()
	cp.Block.MaxBytes = 8 << 20
	cp.Block.MaxGas = -1
	if g.Params.BeaconWindow > 0 {
		// Validators reveal their epoch-beacon VRF proofs in vote extensions
		// (chain/epochs beacon.go); CometBFT carries them from height 1.
		cp.Feature.VoteExtensionsEnableHeight = 1
	}
	doc := &cmttypes.GenesisDoc{
		GenesisTime: gt, ChainID: g.ChainID, InitialHeight: 1, ConsensusParams: cp,
		Validators: genVals, AppState: appState,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	for i, v := range vals {
		if err := doc.SaveAs(Paths{v.Home}.GenesisFile()); err != nil {
			return nil, fmt.Errorf("write genesis: %w", err)
		}
		cfg := v.Config
		cfg.Moniker = v.Moniker
		if len(vals) > 1 {
			var peers []string
			for j, o := range infos {
				if j != i {
					peers = append(peers, fmt.Sprintf("%s@%s", o.NodeID, hostPort(o.P2PAddr)))
				}
			}
			cfg.P2P.PersistentPeers = join(peers)
		}
		if err := WriteConfig(v.Home, cfg); err != nil {
			return nil, err
		}
	}
	return infos, nil
}

func hostPort(laddr string) string {
	if i := len("tcp://"); len(laddr) > i && laddr[:i] == "tcp://" {
		return laddr[i:]
	}
	return laddr
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// ReadGenesis reads the app state of a node's genesis file.
func ReadGenesis(home string) (*cmttypes.GenesisDoc, *types.Genesis, error) {
	doc, err := cmttypes.GenesisDocFromFile(Paths{home}.GenesisFile())
	if err != nil {
		return nil, nil, err
	}
	g, err := types.UnmarshalGenesis(doc.AppState)
	if err != nil {
		return nil, nil, err
	}
	return doc, g, nil
}

// TestnetPorts returns the config of node k of a local testnet: every node on
// 127.0.0.1, ports basePort+10k (p2p), +1 (rpc), +2 (api).
func TestnetPorts(k, basePort int) Config {
	c := DefaultConfig()
	c.P2P.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", basePort+10*k)
	c.RPC.Laddr = fmt.Sprintf("tcp://127.0.0.1:%d", basePort+10*k+1)
	c.API.Laddr = fmt.Sprintf("127.0.0.1:%d", basePort+10*k+2)
	return c
}

// NodeHome is the directory of node k inside a testnet directory.
func NodeHome(dir string, k int) string { return filepath.Join(dir, fmt.Sprintf("node%d", k)) }
