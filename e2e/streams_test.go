package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/testutil/poll"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/testnet"
	"github.com/agoranet/agora/validator"
)

// streamNet is a chain, native providers serving a model slow enough (tens
// of tokens a second) that a long stream is still being generated when its
// client leaves or a stop comes, and a gateway.
type streamNet struct {
	nw        *testnet.Network
	modelPath string
	providers []*provider.Provider
	provDirs  []string
	provRegs  []*prometheus.Registry
	gw        *gateway.Gateway
	gwDir     string
	gwReg     *prometheus.Registry
	logs      *syncBuffer // every daemon's log, warnings and errors
}

// syncBuffer is a log sink shared by the daemons' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const streamModel = "slow"

func startStreamNet(t *testing.T, providers int, drain time.Duration) *streamNet {
	t.Helper()
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.OpeningWindow = 10, 4, 2000
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 1 + providers, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sn := &streamNet{nw: nw, modelPath: filepath.Join(dir, streamModel+".gguf"), logs: &syncBuffer{}}
	if err := native.WriteRandomModel(sn.modelPath, native.GenOptions{Dim: 512, Layers: 8, Heads: 8, KVHeads: 4, Vocab: 600, Context: 2048, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(sn.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	for i := 0; i < providers; i++ {
		b, err := provider.NewNativeBackend([]string{sn.modelPath}, native.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		pdir := filepath.Join(dir, fmt.Sprintf("provider%d", i))
		reg := prometheus.NewRegistry()
		p, err := provider.New(provider.Config{
			ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1+i], Listen: "127.0.0.1:0", DataDir: pdir,
			PriceIn: uint64(1000 * (i + 1)), PriceOut: uint64(2000 * (i + 1)), Concurrency: 4, Tick: 100 * time.Millisecond,
			DrainTimeout: drain,
		}, b, logger, reg)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop() })
		sn.providers, sn.provDirs, sn.provRegs = append(sn.providers, p), append(sn.provDirs, pdir), append(sn.provRegs, reg)
	}
	sn.gwDir = filepath.Join(dir, "gateway")
	sn.gwReg = prometheus.NewRegistry()
	gw, err := gateway.New(gateway.Config{
		ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0", DataDir: sn.gwDir,
		Deposit: 50_000_000, ChannelBlocks: 400, Refresh: 200 * time.Millisecond, DrainTimeout: drain,
	}, logger, sn.gwReg)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop() })
	sn.gw = gw
	return sn
}

// counter reads a counter from a registry (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// openStream starts a long stream through the gateway and reads it until it
// has seen n content events; it returns the response and its reader.
func openStream(t *testing.T, gwURL, prompt string, maxTokens, n int) (*http.Response, *bufio.Reader) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"max_tokens":%d,"temperature":0,"stream":true}`, streamModel, prompt, maxTokens)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post(gwURL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	for seen := 0; seen < n; {
		line, err := br.ReadString('\n')
		if err != nil {
			resp.Body.Close()
			t.Fatalf("stream ended after %d content events: %v", seen, err)
		}
		if strings.HasPrefix(line, "data: [DONE]") {
			t.Fatalf("stream finished after %d content events, before the test cut it", seen)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
			seen++
		}
	}
	return resp, br
}

// receipts lists the gateway's receipts.
func gatewayReceipts(t *testing.T, gwURL string) []gateway.StoredReceipt {
	t.Helper()
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, gwURL+"/v1/receipts?limit=1000", &list)
	return list.Data
}

// TestStreamDisconnectBilled: a client reads part of a long stream and
// leaves. The provider stops generating and bills what it generated; the
// gateway fetches that receipt by request id, checks, stores and pays it;
// and once disputed, a validator's re-execution of its partial transcript
// finds it honest.
func TestStreamDisconnectBilled(t *testing.T) {
	sn := startStreamNet(t, 1, 10*time.Second)
	const maxTokens = 1500
	const read = 20 // content events the client reads before leaving
	resp, _ := openStream(t, sn.gw.URL(), "tell me a long story about the network", maxTokens, read)
	resp.Body.Close() // the client leaves mid-stream

	var r gateway.StoredReceipt
	poll.True(t, 30*time.Second, "the gateway holds the partial stream's receipt", func() bool {
		list := gatewayReceipts(t, sn.gw.URL())
		if len(list) > 1 {
			t.Fatalf("%d receipts for one request: %+v", len(list), list)
		}
		if len(list) == 1 {
			r = list[0]
		}
		return len(list) == 1
	})
	t.Logf("partial receipt: %d prompt + %d completion tokens, %d uagr", r.Prompt, r.Output, r.Amount)
	if r.Output < read || r.Output >= maxTokens {
		t.Fatalf("partial receipt counts %d completion tokens; the client read %d events of %d tokens at most", r.Output, read, maxTokens)
	}
	if want := inference.Cost(int(r.Prompt), int(r.Output), 1000, 2000); r.Amount != want || r.Amount == 0 {
		t.Fatalf("receipt bills %d, %d+%d tokens cost %d", r.Amount, r.Prompt, r.Output, want)
	}
	p := sn.providers[0]
	var id [32]byte
	if b, err := hex.DecodeString(r.ID); err != nil || copy(id[:], b) != 32 {
		t.Fatalf("receipt id %q", r.ID)
	}
	held, err := p.Store().ReceiptByID(id)
	if err != nil {
		t.Fatalf("the provider does not hold the gateway's receipt: %v", err)
	}
	if held.Receipt.CompletionTokens != r.Output || held.Receipt.Amount != r.Amount {
		t.Fatalf("provider's receipt %+v, gateway's %+v", held.Receipt, r)
	}
	tr, err := p.Store().Transcript(r.Epoch, r.Index)
	if err != nil || !tr.Cancelled || len(tr.OutputIDs) != int(r.Output) {
		t.Fatalf("transcript of the partial stream: cancelled %v, %d tokens, err %v", tr != nil && tr.Cancelled, len(tr.OutputIDs), err)
	}
	// Verified (signature) and owed: the gateway pays it once idle.
	poll.True(t, 30*time.Second, "the gateway pays the partial receipt", func() bool {
		chans, err := p.Store().Channels()
		if err != nil {
			t.Fatal(err)
		}
		var best uint64
		for _, c := range chans {
			best += c.BestCum
		}
		if best > r.Amount {
			t.Fatalf("paid %d, more than the receipt's %d", best, r.Amount)
		}
		return best == r.Amount
	})
	if got := counter(t, sn.gwReg, "agora_gateway_partial_receipts_total"); got != 1 {
		t.Fatalf("gateway counted %v partial receipts", got)
	}
	if got := counter(t, sn.provRegs[0], "agora_provider_partial_receipts_total"); got != 1 {
		t.Fatalf("provider counted %v partial receipts", got)
	}

	// A dispute makes the provider open it; the validator's re-execution
	// of the partial transcript passes.
	c := sn.nw.Client(0)
	ctx := context.Background()
	poll.True(t, 60*time.Second, "the receipt's epoch is committed", func() bool {
		var ep api.EpochView
		var cm api.CommitmentView
		if c.Query(ctx, fmt.Sprintf("/epoch/%d", r.Epoch), 0, &ep) != nil || c.Query(ctx, fmt.Sprintf("/commitment/%d/%s", r.Epoch, r.Provider), 0, &cm) != nil {
			return false
		}
		st, err := c.Status(ctx)
		return err == nil && st.SyncInfo.LatestBlockHeight > ep.CommitDeadline
	})
	dresp, err := http.Post(sn.gw.URL()+"/v1/receipts/"+r.ID+"/dispute", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := io.ReadAll(dresp.Body)
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusOK {
		t.Fatalf("dispute: %d %s", dresp.StatusCode, db)
	}
	auditor, err := validator.NewAuditor(c, []string{sn.modelPath})
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	f, err := auditor.AuditReceipt(ctx, r.Epoch, p.Address(), r.Index)
	if err != nil {
		t.Fatal(err)
	}
	if !f.OK || f.Fault != validator.FaultNone {
		t.Fatalf("the partial transcript failed re-execution: %+v", f)
	}
}

// TestStreamsCutAtStop: long streams in flight when a provider stops, then
// when the gateway stops. Each stream still ends with a receipt (for the
// tokens it got) and [DONE]; every receipt is stored on both sides; the
// stops return once their drain runs out (the streams would take minutes);
// and no request meets a closed store.
func TestStreamsCutAtStop(t *testing.T) {
	// A short drain: the faster the engine, the more tokens a stream gets
	// before the cut, and the likelier the small random model ends it on
	// its own first.
	const drain = 300 * time.Millisecond
	const maxTokens = 2000
	sn := startStreamNet(t, 2, drain)
	const n = 4
	type ended struct {
		id   string // the receipt id announced before [DONE]
		done bool
		tail string
	}
	// streams opens n streams, each read until a few events came (all in
	// flight), and returns a function collecting how each ended.
	streams := func(round string) func() []ended {
		var rs []*bufio.Reader
		var bodies []io.Closer
		var trailers []*http.Response
		for i := 0; i < n; i++ {
			resp, br := openStream(t, sn.gw.URL(), fmt.Sprintf("%s: stream %d, a long story", round, i), maxTokens, 3)
			rs, bodies, trailers = append(rs, br), append(bodies, resp.Body), append(trailers, resp)
		}
		return func() []ended {
			out := make([]ended, n)
			var wg sync.WaitGroup
			for i := range rs {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					defer bodies[i].Close()
					rest, err := io.ReadAll(rs[i])
					text := string(rest)
					out[i].tail = text[max(0, len(text)-300):]
					if err != nil {
						return
					}
					out[i].done = strings.HasSuffix(text, "\ndata: [DONE]\n\n")
					if j := strings.Index(text, gateway.ReceiptIDComment); j >= 0 {
						out[i].id, _, _ = strings.Cut(text[j+len(gateway.ReceiptIDComment):], "\n")
					}
					if tr := trailers[i].Trailer.Get(gateway.ReceiptIDHeader); tr != out[i].id {
						out[i].id = "trailer " + tr + " differs from " + out[i].id
					}
				}(i)
			}
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(2 * time.Minute):
				for _, b := range bodies {
					b.Close()
				}
				<-finished
				t.Fatalf("%s: streams still running two minutes after the stop: it did not cut them", round)
			}
			return out
		}
	}
	stopTimed := func(what string, stop func() error) {
		t0 := time.Now()
		if err := stop(); err != nil {
			t.Fatalf("%s stop: %v", what, err)
		}
		// Not a timing assertion: uncut, these streams would run for
		// minutes; a stop that waited for them would not return here.
		t.Logf("%s stopped in %v (drain %v)", what, time.Since(t0), drain)
	}
	var ids []string
	check := func(round string, es []ended) {
		for i, e := range es {
			if !e.done || len(e.id) != 64 {
				t.Fatalf("%s: stream %d did not end with a receipt id and [DONE] (id %q); its end:\n%s", round, i, e.id, e.tail)
			}
			ids = append(ids, e.id)
		}
	}

	// A provider stops: its generations are cut when the drain runs out,
	// and each stream ends in band with its partial receipt.
	end := streams("provider stop")
	stopTimed("provider", sn.providers[0].Stop)
	check("provider stop", end())
	// The gateway stops: it cuts its streams when its drain runs out, the
	// provider bills what it generated, and the gateway ends each stream
	// with that receipt. (The first provider is gone: these go to the
	// second.)
	end = streams("gateway stop")
	stopTimed("gateway", sn.gw.Stop)
	check("gateway stop", end())
	stopTimed("provider", sn.providers[1].Stop)

	// Every receipt is stored by the gateway and by its provider, each for
	// fewer tokens than asked: the stops cut them.
	gst, err := gateway.OpenStore(sn.gwDir)
	if err != nil {
		t.Fatal(err)
	}
	defer gst.Close()
	var pst []*provider.Store
	for _, d := range sn.provDirs {
		st, err := provider.OpenStore(d)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		pst = append(pst, st)
	}
	cut := make([]int, len(ids)/n) // per round, streams the stop cut
	for i, id := range ids {
		gr, err := gst.Receipt(id)
		if err != nil {
			t.Fatalf("receipt %d (%s) not held by the gateway: %v %+v", i, id, err, gr)
		}
		if gr.Output == 0 || gr.Output >= maxTokens {
			t.Fatalf("receipt %d counts %d completion tokens: not cut short", i, gr.Output)
		}
		prov := 0
		if i >= n {
			prov = 1
		}
		var rid [32]byte
		b, _ := hex.DecodeString(id)
		copy(rid[:], b)
		sr, err := pst[prov].ReceiptByID(rid)
		if err != nil {
			t.Fatalf("receipt %d (%s) not held by provider %d: %v", i, id, prov, err)
		}
		if got := sr.IDHex(); got != id || sr.Receipt.Amount != gr.Amount {
			t.Fatalf("provider %d holds %s billing %d, the gateway %s billing %d", prov, got, sr.Receipt.Amount, id, gr.Amount)
		}
		tr, err := pst[prov].Transcript(sr.Receipt.Epoch, sr.Receipt.Index)
		if err != nil {
			t.Fatalf("receipt %d: transcript: %v", i, err)
		}
		// A small random model may end a generation on its own (its end
		// token) within the drain: such a stream was not cut, and it ended
		// as any other. Each round must still have cut some of its streams
		// (each ending, cut or not, was checked above).
		if tr.Cancelled {
			cut[i/n]++
		} else if gr.Output >= maxTokens {
			t.Fatalf("receipt %d: neither cut nor ended by the model (%d tokens)", i, gr.Output)
		}
	}
	for round, k := range cut {
		if k < 1 {
			t.Fatalf("round %d: only %d of %d streams were cut by the stop (the rest ended on their own before it)", round, k, n)
		}
	}
	if logs := sn.logs.String(); strings.Contains(logs, "store closed") {
		t.Fatalf("a request met a closed store during the stops:\n%s", logs)
	}
}
