package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/reqauth"
)

// GatewayOptions configure `agora bench gateway`.
type GatewayOptions struct {
	Duration   time.Duration // per measurement
	Conns      []int
	JSON       bool
	CPUProfile string // of this process only
	MemProfile string // allocations during the measurements, this process only
	Only       string // measure only this path (direct, provider, gateway)
	Mode       string // measure only this mode (json, sse)
	Rounds     int    // turns over the paths per measurement (Duration split evenly)
	Procs      bool   // run the backend, the provider and the gateway as separate processes
	Out        io.Writer
}

// GatewayRow is one measurement.
type GatewayRow struct {
	Path   string  `json:"path"` // direct, provider, gateway
	Stream bool    `json:"stream"`
	Conns  int     `json:"conns"`
	Reqs   int     `json:"requests"`
	Errors int     `json:"errors"`
	RPS    float64 `json:"req_per_s"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
}

// fakeBackend answers every completion instantly with a fixed body.
func fakeBackend() http.Handler {
	content := "Hello from a fake backend."
	fr := "stop"
	js, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": "fake",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": fr}},
		"usage":   map[string]int{"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
	})
	chunk := func(delta string, finish any) []byte {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "fake",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": delta}, "finish_reason": finish}}})
		return b
	}
	var sse bytes.Buffer
	for _, d := range []string{"Hello", " from", " a fake backend."} {
		fmt.Fprintf(&sse, "data: %s\n\n", chunk(d, nil))
	}
	fmt.Fprintf(&sse, "data: %s\n\n", chunk("", fr))
	usage, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "fake", "choices": []any{},
		"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}})
	fmt.Fprintf(&sse, "data: %s\n\ndata: [DONE]\n\n", usage)
	sseBytes := sse.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write(sseBytes)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(js)
	})
}

func benchKeyNamed(s string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("agora-bench-gw/" + s))
	return ed25519.NewKeyFromSeed(seed[:])
}

// RunGateway measures the request path: a fake instant backend called (i)
// directly, (ii) through a provider (adapter), (iii) through gateway →
// provider, at each connection count, JSON and SSE.
func RunGateway(ctx context.Context, o GatewayOptions) ([]GatewayRow, error) {
	switch {
	case o.Only != "" && o.Only != "direct" && o.Only != "provider" && o.Only != "gateway":
		return nil, fmt.Errorf("--only %q: want direct, provider or gateway", o.Only)
	case o.Mode != "" && o.Mode != "json" && o.Mode != "sse":
		return nil, fmt.Errorf("--mode %q: want json or sse", o.Mode)
	case o.Duration <= 0 || o.Rounds < 0:
		return nil, errors.New("--duration must be positive and --rounds not negative")
	}
	for _, c := range o.Conns {
		if c < 1 {
			return nil, fmt.Errorf("--conns %d: want at least 1", c)
		}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	logf := func(format string, a ...any) {
		if !o.JSON {
			fmt.Fprintf(o.Out, format+"\n", a...)
		}
	}
	dir, err := os.MkdirTemp("", "agora-bench-gw-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// chain
	provKey, cliKey, opKey := benchKeyNamed("provider"), benchKeyNamed("client"), benchKeyNamed("operator")
	addr := func(k ed25519.PrivateKey) types.Address {
		return types.AddressFromPubKey(k.Public().(ed25519.PublicKey))
	}
	params := types.DefaultParams()
	g := node.GenesisOptions{ChainID: "agora-bench-gw", Params: params, Accounts: []types.GenesisAccount{
		{Address: addr(provKey), Balance: 1e12}, {Address: addr(cliKey), Balance: 1e12}, {Address: addr(opKey), Balance: 1e12}}}
	n, cfg, err := startNode(dir, g, addr(opKey), 300*time.Millisecond, "kv", true, quiet)
	if err != nil {
		return nil, err
	}
	defer n.Stop()
	for n.App().Height() < 2 {
		time.Sleep(50 * time.Millisecond)
	}

	// the fake backend, the provider (adapter) and the gateway
	parts := startParts
	if o.Procs {
		parts = spawnParts
	}
	pt, err := parts(ctx, cfg.RPC.Laddr, dir, quiet)
	if err != nil {
		return nil, err
	}
	defer pt.stop()
	backendURL := pt.backend

	// a channel of our own for calling the provider directly
	c, _ := client.New(cfg.RPC.Laddr)
	st, _ := c.Status(ctx)
	res, err := c.NewSigner(cliKey).Send(ctx, &types.MsgOpenChannel{Provider: addr(provKey), Deposit: 1 << 38, ExpiryHeight: st.SyncInfo.LatestBlockHeight + 100000})
	if err != nil {
		return nil, err
	}
	chID, _ := strconv.ParseUint(res.Events["channel_id"], 10, 64)
	voucher := payment.FormatVoucher(types.SignVoucher(cliKey, g.ChainID, chID, 0))
	// each request to the provider is authenticated by the channel's key,
	// as the gateway's are (one MAC per request; the key once)
	reqKey, err := reqauth.ClientKey(cliKey, provKey.Public().(ed25519.PublicKey), g.ChainID, chID)
	if err != nil {
		return nil, err
	}
	signProvider := func(req *http.Request, body []byte) {
		req.Header.Set(reqauth.Header, reqauth.Sign(&reqKey, chID, time.Now(), http.MethodPost, "/v1/chat/completions", body, voucher))
	}

	body := func(stream bool) []byte {
		b, _ := json.Marshal(map[string]any{"model": "fake", "stream": stream, "max_tokens": 16,
			"messages": []map[string]string{{"role": "user", "content": "Say hello."}}})
		return b
	}
	targets := []struct {
		name, url string
		header    map[string]string
		sign      func(*http.Request, []byte)
	}{
		{"direct", backendURL + "/chat/completions", nil, nil},
		{"provider", pt.provider + "/v1/chat/completions", map[string]string{payment.VoucherHeader: voucher}, signProvider},
		{"gateway", pt.gateway + "/v1/chat/completions", nil, nil},
	}
	// warm up the gateway's channel
	for i := 0; i < 3; i++ {
		if _, err := doRequest(http.DefaultClient, targets[2].url, body(false), nil, nil); err != nil {
			return nil, fmt.Errorf("warm-up through the gateway: %w", err)
		}
	}
	where := "all in this process"
	if o.Procs {
		where = "backend, provider and gateway each in its own process"
	}
	logf("bench gateway: %s per measurement, fake backend at %s; %s", o.Duration, backendURL, where)
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if o.MemProfile != "" {
		// Sampled finely from here (the start-up before, at the default
		// rate, is a small part of the whole), and written at that rate:
		// pprof scales the samples by the rate in force when written.
		f, err := os.Create(o.MemProfile)
		if err != nil {
			return nil, err
		}
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				logf("memprofile: %v", err)
			}
			f.Close()
		}()
	}
	// The paths are measured in turns (each for Duration/Rounds, Rounds
	// times), so that a machine whose speed drifts — a shared VM — drifts
	// under all of them alike and their ratios stay meaningful.
	rounds := max(1, o.Rounds)
	slice := o.Duration / time.Duration(rounds)
	var rows []GatewayRow
	for _, stream := range []bool{false, true} {
		for _, conns := range o.Conns {
			lats := make([][]time.Duration, len(targets))
			errs := make([]int, len(targets))
			for r := 0; r < rounds; r++ {
				for i, t := range targets {
					if (o.Only != "" && o.Only != t.name) || (o.Mode == "json" && stream) || (o.Mode == "sse" && !stream) {
						continue
					}
					l, e := load(t.url, body(stream), t.header, t.sign, conns, slice)
					lats[i], errs[i] = append(lats[i], l...), errs[i]+e
				}
			}
			byPath := map[string]GatewayRow{}
			for i, t := range targets {
				if len(lats[i]) == 0 && errs[i] == 0 {
					continue
				}
				row := summarize(lats[i], errs[i], slice*time.Duration(rounds))
				row.Path, row.Stream, row.Conns = t.name, stream, conns
				rows = append(rows, row)
				byPath[t.name] = row
				logf("  %-8s stream=%-5v conns=%-3d %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms  (%d requests, %d errors)",
					t.name, stream, conns, row.RPS, row.P50ms, row.P99ms, row.Reqs, row.Errors)
			}
			if d, g := byPath["direct"], byPath["gateway"]; d.RPS > 0 && g.RPS > 0 {
				// the targets: ≥ 15 % of direct at 64 connections, ≤ +0.3 ms p50 on one
				logf("  → gateway path: %.1f %% of direct req/s, %+.3f ms p50", 100*g.RPS/d.RPS, g.P50ms-d.P50ms)
			}
		}
	}
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return rows, enc.Encode(rows)
	}
	return rows, nil
}

// doRequest posts body to url with header, and sign's headers if any.
func doRequest(hc *http.Client, url string, body []byte, header map[string]string, sign func(*http.Request, []byte)) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if sign != nil {
		sign(req, body)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, fmt.Errorf("status %d", resp.StatusCode)
	}
	return 200, nil
}

// load runs conns closed-loop clients for d and reports throughput and latency.
// load runs conns closed-loop clients for d, returning the latencies of the
// requests that succeeded and the count of those that failed.
func load(url string, body []byte, header map[string]string, sign func(*http.Request, []byte), conns int, d time.Duration) ([]time.Duration, int) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute}}
	var mu sync.Mutex
	var lats []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			le := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := doRequest(hc, url, body, header, sign); err != nil {
					le++
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += le
			mu.Unlock()
		}()
	}
	wg.Wait()
	hc.CloseIdleConnections()
	return lats, errs
}

// summarize turns the latencies measured over d into a row.
func summarize(lats []time.Duration, errs int, d time.Duration) GatewayRow {
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	row := GatewayRow{Reqs: len(lats), Errors: errs, RPS: float64(len(lats)) / d.Seconds()}
	if len(lats) > 0 {
		row.P50ms = float64(lats[len(lats)/2].Microseconds()) / 1000
		row.P99ms = float64(lats[len(lats)*99/100].Microseconds()) / 1000
	}
	return row
}
