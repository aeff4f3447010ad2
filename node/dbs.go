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
	dbs []*onceCloseDB
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
	w := &onceCloseDB{DB: db}
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

// onceCloseDB makes Close idempotent (Pebble panics on a second close).
type onceCloseDB struct {
	dbm.DB
	once sync.Once
	err  error
}

func (d *onceCloseDB) Close() error {
	d.once.Do(func() { d.err = d.DB.Close() })
	return d.err
}
