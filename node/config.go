package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/agoranet/agora/internal/health"
	"github.com/agoranet/agora/internal/netlimit"
)

// Config is a node's agora.toml. CometBFT's own config is derived from it,
// so an operator edits one file; command-line flags override it.
type Config struct {
	Moniker   string `toml:"moniker"`
	LogLevel  string `toml:"log_level"`  // debug, info, warn, error
	LogFormat string `toml:"log_format"` // text or json

	API struct {
		// Laddr is the JSON query API and /metrics listen address (host:port).
		Laddr string `toml:"laddr"`
		// Limits are the API server's connection cap and timeouts.
		Limits netlimit.Limits `toml:"limits"`
	} `toml:"api"`
	RPC struct {
		// Laddr is CometBFT's RPC listen address.
		Laddr string `toml:"laddr"`
		// MaxOpenConnections caps CometBFT's RPC connections (0: its share
		// of the process's descriptor budget).
		MaxOpenConnections int `toml:"max_open_connections"`
	} `toml:"rpc"`
	P2P struct {
		Laddr           string `toml:"laddr"`
		ExternalAddress string `toml:"external_address"`
		PersistentPeers string `toml:"persistent_peers"`
	} `toml:"p2p"`
	Consensus struct {
		TimeoutPropose time.Duration `toml:"timeout_propose"`
		TimeoutCommit  time.Duration `toml:"timeout_commit"`
	} `toml:"consensus"`
	Mempool struct {
		Size    int  `toml:"size"`
		Recheck bool `toml:"recheck"`
	} `toml:"mempool"`
	State struct {
		// KeepRecent keeps only this many recent state versions (0: all, so
		// any past height can be queried and proven).
		KeepRecent int64 `toml:"keep_recent"`
	} `toml:"state"`
	TxIndex struct {
		// Indexer is "kv" (txs can be looked up by hash) or "null".
		Indexer string `toml:"indexer"`
	} `toml:"tx_index"`
	// Retention bounds what the node keeps of past blocks (see retention.go).
	Retention RetentionConfig `toml:"retention"`
	Explorer  struct {
		// Enabled indexes the chain's history and serves the explorer at
		// http://<api.laddr>/explorer/.
		Enabled bool `toml:"enabled"`
		// KeepBlocks keeps the detail (block, tx and account rows) of only
		// the last KeepBlocks blocks; epoch and provider sums, commitments,
		// verdicts and channels are kept whatever it is. 0 keeps all.
		KeepBlocks int64 `toml:"keep_blocks"`
	} `toml:"explorer"`
	Health struct {
		// MaxBlockAge: /healthz reports the chain stalled once no block was
		// committed for this long (0: 10 block times, at least 10s).
		MaxBlockAge time.Duration `toml:"max_block_age"`
	} `toml:"health"`
	Instrumentation struct {
		// CometBFTMetrics adds CometBFT's consensus metrics to /metrics. They
		// register globally, so only one node per process may enable them.
		CometBFTMetrics bool `toml:"cometbft_metrics"`
	} `toml:"instrumentation"`
}

// DefaultConfig is a single local node's configuration.
func DefaultConfig() Config {
	var c Config
	c.Moniker = "agora-node"
	c.LogLevel = "info"
	c.LogFormat = "text"
	c.API.Laddr = "127.0.0.1:1317"
	c.API.Limits = netlimit.Limits{HeaderTimeout: netlimit.DefaultHeaderTimeout, BodyTimeout: netlimit.DefaultBodyTimeout,
		IdleTimeout: netlimit.DefaultIdleTimeout, WriteTimeout: time.Minute}
	c.RPC.Laddr = "tcp://127.0.0.1:26657"
	c.P2P.Laddr = "tcp://127.0.0.1:26656"
	c.Consensus.TimeoutPropose = 3 * time.Second
	c.Consensus.TimeoutCommit = time.Second
	c.Mempool.Size = 50_000
	c.Mempool.Recheck = true
	c.TxIndex.Indexer = "kv"
	c.Explorer.Enabled = true
	c.Instrumentation.CometBFTMetrics = true
	return c
}

// Validate checks a config.
func (c Config) Validate() error {
	switch {
	case c.API.Laddr == "":
		return errors.New("api.laddr is empty")
	case c.RPC.Laddr == "":
		return errors.New("rpc.laddr is empty")
	case c.P2P.Laddr == "":
		return errors.New("p2p.laddr is empty")
	case c.Mempool.Size < 1:
		return errors.New("mempool.size must be positive")
	case c.TxIndex.Indexer != "kv" && c.TxIndex.Indexer != "null":
		return fmt.Errorf("tx_index.indexer %q: want kv or null", c.TxIndex.Indexer)
	case c.RPC.MaxOpenConnections < 0:
		return fmt.Errorf("rpc.max_open_connections %d: must be 0 (the descriptor budget's share) or positive", c.RPC.MaxOpenConnections)
	case c.Health.MaxBlockAge < 0:
		return fmt.Errorf("health.max_block_age %s: must not be negative", c.Health.MaxBlockAge)
	}
	if err := c.API.Limits.Validate(); err != nil {
		return fmt.Errorf("api.limits: %w", err)
	}
	return c.validateRetention()
}

// MaxBlockAge is the head age past which /healthz reports a stall.
func (c Config) MaxBlockAge() time.Duration {
	if c.Health.MaxBlockAge > 0 {
		return c.Health.MaxBlockAge
	}
	return health.DefaultMaxAge(c.Consensus.TimeoutCommit)
}

// Paths of a node's home directory.
type Paths struct{ Home string }

func (p Paths) ConfigDir() string   { return filepath.Join(p.Home, "config") }
func (p Paths) DataDir() string     { return filepath.Join(p.Home, "data") }
func (p Paths) ConfigFile() string  { return filepath.Join(p.Home, "config", "agora.toml") }
func (p Paths) GenesisFile() string { return filepath.Join(p.Home, "config", "genesis.json") }
func (p Paths) NodeKeyFile() string { return filepath.Join(p.Home, "config", "node_key.json") }
func (p Paths) PrivValKeyFile() string {
	return filepath.Join(p.Home, "config", "priv_validator_key.json")
}
func (p Paths) PrivValStateFile() string {
	return filepath.Join(p.Home, "data", "priv_validator_state.json")
}
func (p Paths) StateDir() string    { return filepath.Join(p.Home, "data", "app") }
func (p Paths) LockFile() string    { return filepath.Join(p.Home, "data", "agora.lock") }
func (p Paths) ExplorerDir() string { return filepath.Join(p.Home, "data", "explorer") }

// LoadConfig reads agora.toml from home.
func LoadConfig(home string) (Config, error) {
	c := DefaultConfig()
	path := Paths{home}.ConfigFile()
	if _, err := toml.DecodeFile(path, &c); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("no node config at %s: run `agora init --home %s` first", path, home)
		}
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	return c, c.Validate()
}

// WriteConfig writes agora.toml to home.
func WriteConfig(home string, c Config) error {
	path := Paths{home}.ConfigFile()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintln(f, "# Agora node configuration. Command-line flags override these values.")
	return toml.NewEncoder(f).Encode(c)
}

// cometConfig derives CometBFT's configuration.
func (c Config) cometConfig(home string) *cmtcfg.Config {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(home)
	cc.Moniker = c.Moniker
	cc.LogLevel = "info"
	cc.DBBackend = "pebbledb"
	cc.Genesis = "config/genesis.json"
	cc.NodeKey = "config/node_key.json"
	cc.PrivValidatorKey = "config/priv_validator_key.json"
	cc.PrivValidatorState = "data/priv_validator_state.json"
	cc.RPC.ListenAddress = c.RPC.Laddr
	// CometBFT's RPC shares the process's descriptors with the other
	// servers: a flood of it must not starve consensus either.
	cc.RPC.MaxOpenConnections = c.RPC.MaxOpenConnections
	if cc.RPC.MaxOpenConnections == 0 {
		cc.RPC.MaxOpenConnections = netlimit.Current().PerServer
	}
	cc.RPC.MaxSubscriptionClients = 200
	cc.RPC.MaxRequestBatchSize = 100 // lets clients batch broadcasts
	cc.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	cc.GRPC.ListenAddress = ""
	cc.P2P.ListenAddress = c.P2P.Laddr
	cc.P2P.ExternalAddress = c.P2P.ExternalAddress
	cc.P2P.PersistentPeers = c.P2P.PersistentPeers
	cc.P2P.AddrBookStrict = false // peers on loopback and private networks are fine
	cc.P2P.AllowDuplicateIP = true
	cc.P2P.PexReactor = true
	cc.Consensus.TimeoutPropose = c.Consensus.TimeoutPropose
	cc.Consensus.TimeoutCommit = c.Consensus.TimeoutCommit
	cc.Mempool.Size = c.Mempool.Size
	cc.Mempool.Recheck = c.Mempool.Recheck
	cc.Mempool.CacheSize = 4 * c.Mempool.Size
	cc.Mempool.MaxTxsBytes = 256 << 20
	cc.TxIndex.Indexer = c.TxIndex.Indexer
	cc.Instrumentation.Prometheus = c.Instrumentation.CometBFTMetrics
	cc.Instrumentation.PrometheusListenAddr = "" // served on our /metrics instead
	c.Retention.comet(cc)
	return cc
}
