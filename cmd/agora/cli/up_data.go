package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
)

// sampleData is the small text dataset `agora up` publishes, so that a
// compute-to-data run can be tried at once (no network needed).
//
//go:embed sampledata/*.txt
var sampleData embed.FS

const sampleName = "sample-texts"

// upSample is the sample dataset `agora up` published and how to run on it.
type upSample struct {
	ID     uint64
	Module string // the word-count module's file
}

// publishSample makes sure the sample dataset exists, published by the
// first provider (which hosts it) with the word-count module (ngram)
// allowed, and that the host holds its bytes. On a rerun it finds the one
// published before.
func publishSample(ctx context.Context, g *globals, chain *client.Client, key ed25519.PrivateKey, ex *executor.Executor) (*upSample, error) {
	dir := filepath.Join(g.home, sampleName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ents, err := sampleData.ReadDir("sampledata")
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		b, err := sampleData.ReadFile("sampledata/" + e.Name())
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return nil, err
		}
	}
	var tarBuf bytes.Buffer
	if err := pdata.TarDir(&tarBuf, dir); err != nil {
		return nil, err
	}
	set := tarBuf.Bytes()
	root := blob.Of(set)
	if err := ex.PutDataset(root, set); err != nil {
		return nil, fmt.Errorf("sample dataset: %w", err)
	}
	modPath := filepath.Join(g.home, "examples", "ngram.wasm")
	mod, err := os.ReadFile(modPath)
	if err != nil {
		fmt.Fprintf(g.out, "Building the word-count module (examples/ngram, GOOS=wasip1) ...\n")
		if mod, err = examples.Build(ctx, "ngram"); err != nil {
			return nil, fmt.Errorf("sample dataset: the word-count module: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(modPath), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(modPath, mod, 0o644); err != nil {
			return nil, err
		}
	}
	modID := blob.Of(mod)
	// The host keeps the module too, so a run may name it by its blob ID.
	if _, err := ex.Store().Put(modID, bytes.NewReader(mod), uint64(len(mod))); err != nil {
		return nil, err
	}
	owner := types.AddressFromPubKey(key.Public().(ed25519.PublicKey))
	mine, err := chain.DatasetsByOwner(ctx, owner)
	if err != nil {
		return nil, err
	}
	for _, d := range mine {
		if d.Name == sampleName && !d.Retired && blob.ID(d.Root) == root {
			return &upSample{ID: d.ID, Module: modPath}, nil
		}
	}
	res, err := chain.NewSigner(key).Send(ctx, &types.MsgPublishDataset{
		Root: root[:], Size: uint64(len(set)), Name: sampleName,
		Description: "three short texts, to try compute-to-data: agora up's sample",
		Licence:     "CC0", Host: ex.Address(), RunPrice: 100_000, Download: true, DownloadPrice: 500_000,
		AllowedModules: [][]byte{modID[:]}, OutputCap: 16 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("publish the sample dataset: %w", err)
	}
	id, err := u64(res.Events["dataset_id"], "dataset id")
	if err != nil {
		return nil, err
	}
	return &upSample{ID: id, Module: modPath}, nil
}
