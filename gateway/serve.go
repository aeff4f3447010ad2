package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/reqauth"
)

// Response headers naming who served a request and its receipt.
const (
	ProviderHeader  = "X-Agora-Provider"
	ReceiptIDHeader = "X-Agora-Receipt-Id"
	// ReceiptIDComment prefixes the SSE comment carrying a stream's receipt
	// id, just before its [DONE] (SSE clients ignore comments).
	ReceiptIDComment = ": agora-receipt-id "
)

func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", g.auth(g.handleModels))
	mux.HandleFunc("GET /v1/models/{id...}", g.auth(g.handleModel))
	mux.HandleFunc("POST /v1/chat/completions", g.auth(func(w http.ResponseWriter, r *http.Request) { g.handleCompletion(w, r, "/v1/chat/completions", true) }))
	mux.HandleFunc("POST /v1/completions", g.auth(func(w http.ResponseWriter, r *http.Request) { g.handleCompletion(w, r, "/v1/completions", false) }))
	mux.HandleFunc("GET /v1/receipts", g.auth(g.handleReceipts))
	mux.HandleFunc("GET /v1/receipts/{id}", g.auth(g.handleReceipt))
	mux.HandleFunc("POST /v1/receipts/{id}/dispute", g.auth(g.handleDispute))
	mux.HandleFunc(zkinfer.InferRoute, g.auth(g.handleZKInfer))
	if g.reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	}
	mux.Handle("GET /healthz", g.health)
	mux.HandleFunc("/", oai.Fallback(mux))
	return mux
}

type acctKey struct{}

// auth maps the bearer API key to the account that pays (no keys
// configured: everyone pays from the default account).
func (g *Gateway) auth(next http.HandlerFunc) http.HandlerFunc {
	if len(g.accounts) == 0 {
		return func(w http.ResponseWriter, r *http.Request) {
			next(w, r.WithContext(context.WithValue(r.Context(), acctKey{}, g.def)))
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		var found *account
		for k, a := range g.accounts {
			if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
				found = a
			}
		}
		if found == nil {
			oai.Errorf(http.StatusUnauthorized, "invalid_request_error", "", "missing or unknown API key").Write(w)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), acctKey{}, found)))
	}
}

func accountOf(r *http.Request) *account { return r.Context().Value(acctKey{}).(*account) }

func (g *Gateway) handleModels(w http.ResponseWriter, r *http.Request) {
	seen := map[string]bool{}
	out := struct {
		Object string      `json:"object"`
		Data   []oai.Model `json:"data"`
	}{Object: "list", Data: []oai.Model{}}
	g.dirMu.RLock()
	for _, p := range g.providers {
		for m := range p.models {
			if !seen[m] {
				seen[m] = true
				out.Data = append(out.Data, oai.Model{ID: m, Object: "model", OwnedBy: "agora"})
			}
		}
	}
	g.dirMu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// handleModel is the OpenAI SDKs' models.retrieve: a model some provider
// serves, else a 404 in OpenAI's error format. The id may hold slashes
// ("org/name"), as the SDKs send it unescaped.
func (g *Gateway) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	served := false
	g.dirMu.RLock()
	for _, p := range g.providers {
		if _, ok := p.models[id]; ok {
			served = true
			break
		}
	}
	g.dirMu.RUnlock()
	if !served {
		e := oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "The model %q does not exist: no provider on the network serves it", id)
		e.Code = "model_not_found" // what OpenAI answers
		e.Write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(oai.Model{ID: id, Object: "model", OwnedBy: "agora"})
}

func (g *Gateway) fail(w http.ResponseWriter, e *oai.Error) {
	g.metrics.requests.WithLabelValues(strconv.Itoa(e.Status)).Inc()
	e.Write(w)
}

// errRetry marks a provider failure before any byte reached the client.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }

func (g *Gateway) handleCompletion(w http.ResponseWriter, r *http.Request, path string, chat bool) {
	g.active.Add(1)
	defer g.active.Add(-1)
	start := time.Now()
	if g.stopping.Load() { // a request on a connection opened before the stop
		g.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "gateway is stopping"))
		return
	}
	req, body, e := oai.Decode(r, chat)
	if e != nil {
		g.fail(w, e)
		return
	}
	cands := g.candidates(req.Model)
	if len(cands) == 0 {
		g.fail(w, oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "no provider on the network serves model %q", req.Model))
		return
	}
	maxOut := req.MaxOutput(g.cfg.DefaultMax)
	var lastErr error
	for i, p := range cands {
		if i >= g.cfg.Tries {
			break
		}
		if g.cut.Err() != nil {
			lastErr = errors.New("the gateway is stopping")
			break
		}
		if i > 0 {
			g.metrics.failover.Inc()
		}
		maxCost, out := p.bound(req.Model, len(body), maxOut)
		err := g.try(w, r, accountOf(r), req.Stream, path, body, p, maxCost, out)
		var rt errRetry
		if err == nil {
			g.metrics.latency.Observe(time.Since(start).Seconds())
			return
		}
		if !errors.As(err, &rt) {
			g.log.Warn("request failed after the response started", "provider", p.addr, "err", err)
			return
		}
		lastErr = rt.err
		g.log.Info("provider failed, trying the next", "provider", p.addr, "err", rt.err)
	}
	var oe *oai.Error
	if errors.As(lastErr, &oe) {
		g.fail(w, oe)
		return
	}
	g.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "no provider could serve the request: %v", lastErr))
}

// try sends the request to one provider. A returned errRetry means nothing
// was written to the client and another provider may be tried.
func (g *Gateway) try(w http.ResponseWriter, r *http.Request, acct *account, stream bool, path string, body []byte, p *providerEntry, maxCost uint64, maxOut int) error {
	ch, err := g.channelFor(r.Context(), acct, p, maxCost)
	if err != nil {
		return errRetry{err}
	}
	ch.mu.Lock()
	v, err := g.voucher(ch, false)
	var key *reqauth.Key
	if err == nil {
		key, err = g.requestKey(ch)
	}
	ch.inflight += maxCost
	ch.lastUse = time.Now()
	ch.mu.Unlock()
	done := func() {
		ch.mu.Lock()
		ch.inflight -= maxCost
		ch.lastUse = time.Now()
		ch.mu.Unlock()
	}
	defer done()
	if err != nil {
		return errRetry{err}
	}
	t0 := time.Now()
	// The provider's request ends when the client goes away or a stop's
	// drain runs out (the connection is closed: the provider stops).
	uctx, ucancel := context.WithCancel(r.Context())
	defer ucancel()
	defer context.AfterFunc(g.cut, ucancel)()
	preq, err := http.NewRequestWithContext(uctx, http.MethodPost, p.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return errRetry{err}
	}
	// A stream's request id lets us fetch its receipt if it does not end
	// cleanly (cancel.go in package provider).
	var rid string
	if stream {
		rid = newRequestID()
		preq.Header.Set(inference.RequestIDHeader, rid)
	}
	preq.Header.Set("Content-Type", "application/json")
	vh := payment.FormatVoucher(v)
	preq.Header.Set(payment.VoucherHeader, vh)
	// the request as the provider's API sees it: path, not the endpoint's URL
	preq.Header.Set(reqauth.Header, reqauth.Sign(key, v.ChannelId, time.Now(), http.MethodPost, path, body, vh))
	started := false
	var enc string
	var usage *oai.Usage
	var model string
	// cutShort ends a stream that did not end cleanly — the client went
	// away, the connection to the provider broke, or a stop's drain ran
	// out. The provider bills what it generated until then: its receipt is
	// fetched by request id, checked and stored like any other (so it is
	// paid), and the stream ends with it and [DONE] if the client is still
	// there.
	cutShort := func(cause error) error {
		ucancel() // the provider stops generating, if it has not yet
		clientGone := r.Context().Err() != nil
		stopping := g.cut.Err() != nil
		if !clientGone && !stopping {
			p.observe(false, 0)
		}
		penc, err := g.fetchPartial(p, rid)
		if err != nil {
			if !started && !clientGone { // nothing written: another provider, or a 503 if stopping
				return errRetry{fmt.Errorf("provider stream: %w", cause)}
			}
			return fmt.Errorf("stream cut short (%v); its receipt: %w", cause, err)
		}
		st, err := g.acceptReceipt(ch, p, penc, v.CumulativeAmount, maxCost, maxOut, usage, model)
		if err != nil {
			return fmt.Errorf("stream cut short (%v); its receipt: %w", cause, err)
		}
		g.metrics.partial.Inc()
		if !started && !clientGone && !stopping {
			// nothing reached the client: another provider may serve it
			return errRetry{fmt.Errorf("provider stream: %w (billed %d by receipt %s)", cause, st.Amount, st.ID)}
		}
		if clientGone {
			return fmt.Errorf("client went away mid-stream: %w (billed %d by receipt %s)", cause, st.Amount, st.ID)
		}
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set(ProviderHeader, p.addr.String())
			w.Header().Set("Trailer", ReceiptIDHeader)
			w.WriteHeader(http.StatusOK)
		}
		w.Header().Set(ReceiptIDHeader, st.ID) // the trailer
		if _, werr := io.WriteString(w, ReceiptIDComment+st.ID+"\ndata: [DONE]\n\n"); werr != nil {
			return fmt.Errorf("client went away: %w", werr)
		}
		g.metrics.requests.WithLabelValues("200").Inc()
		return nil
	}
	resp, err := g.hop.Do(preq)
	if err != nil {
		if stream && (r.Context().Err() != nil || g.cut.Err() != nil) {
			// Cut before the response came: the provider may have begun.
			return cutShort(err)
		}
		p.observe(false, 0)
		return errRetry{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		eb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		oe := oai.ParseError(resp.StatusCode, eb)
		// (401: the provider refused our request authentication — a clock
		// off by more than its window, say: not the client's request's fault)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusPaymentRequired ||
			resp.StatusCode == http.StatusUnauthorized {
			p.observe(false, 0)
			return errRetry{oe}
		}
		// the request itself is at fault: pass the provider's answer on
		g.fail(w, oe)
		return nil
	}
	g.markDelivered(ch, v.CumulativeAmount)
	if !stream {
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			p.observe(false, 0)
			return errRetry{fmt.Errorf("reading provider response: %w", err)}
		}
		// only what the receipt is checked against; the body is passed on as is
		var parsed struct {
			Model   string            `json:"model"`
			Choices []json.RawMessage `json:"choices"`
			Usage   *oai.Usage        `json:"usage"`
		}
		if err := json.Unmarshal(rb, &parsed); err != nil || len(parsed.Choices) == 0 || parsed.Usage == nil {
			p.observe(false, 0)
			return errRetry{fmt.Errorf("provider returned an invalid completion")}
		}
		st, err := g.acceptReceipt(ch, p, resp.Header.Get(inference.ReceiptHeader), v.CumulativeAmount, maxCost, maxOut, parsed.Usage, parsed.Model)
		if err != nil {
			p.observe(false, 0)
			return errRetry{err}
		}
		p.observe(true, time.Since(t0))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(ProviderHeader, p.addr.String())
		w.Header().Set(ReceiptIDHeader, st.ID)
		w.Write(rb)
		g.metrics.requests.WithLabelValues("200").Inc()
		return nil
	}
	// Streaming: pass SSE events through as they arrive, keep the receipt
	// comment for ourselves. The stream is completed ([DONE]) only once its
	// receipt is checked and stored, as a JSON answer is: the client then
	// finds the receipt's id in a comment before [DONE] and in a trailer.
	fl, _ := w.(http.Flusher)
	br := oai.NewStreamReader(resp.Body)
	defer oai.ReleaseStreamReader(br)
	for {
		line, err := br.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return cutShort(err)
		}
		if strings.HasPrefix(line, inference.ReceiptComment) {
			enc = strings.TrimSpace(strings.TrimPrefix(line, inference.ReceiptComment))
			continue
		}
		done := strings.HasPrefix(line, "data: [DONE]")
		// Only the model (first event) and the usage (last events) are
		// checked against the receipt: other events pass through unparsed.
		if data, ok := strings.CutPrefix(line, "data: "); ok && !done && (model == "" || strings.Contains(data, `"usage"`)) {
			var c oai.Response
			if json.Unmarshal([]byte(data), &c) == nil {
				if c.Usage != nil {
					usage = c.Usage
				}
				if model == "" {
					model = c.Model
				}
			}
		}
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set(ProviderHeader, p.addr.String())
			w.Header().Set("Trailer", ReceiptIDHeader)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if done {
			st, err := g.acceptReceipt(ch, p, enc, v.CumulativeAmount, maxCost, maxOut, usage, model)
			if err != nil {
				// The client has the tokens but no [DONE]: its SDK reports an
				// incomplete stream, and nothing is paid for it.
				p.observe(false, 0)
				return fmt.Errorf("stream receipt: %w", err)
			}
			w.Header().Set(ReceiptIDHeader, st.ID) // the trailer
			if _, werr := io.WriteString(w, ReceiptIDComment+st.ID+"\n"+line+"\n"); werr != nil {
				return fmt.Errorf("client went away: %w", werr)
			}
			break
		}
		if _, werr := io.WriteString(w, line); werr != nil {
			return cutShort(fmt.Errorf("client went away: %w", werr))
		}
		if line == "\n" && fl != nil && !oai.EventBuffered(br) && !receiptNext(br) {
			fl.Flush() // nothing more to pass on without waiting: the client gets it now
		}
	}
	// No flush: the handler returns at once, and net/http then writes the
	// receipt id, [DONE] and the stream's end in one write.
	p.observe(true, time.Since(t0))
	g.metrics.requests.WithLabelValues("200").Inc()
	return nil
}

// receiptNext reports whether the provider's receipt comment is the next
// line buffered in br. The provider sends it, once stored, with the
// stream's last events (finish, usage) and [DONE], so those events are
// held until the receipt is checked and stored here too and reach the
// client with [DONE] in one write instead of two.
func receiptNext(br *bufio.Reader) bool {
	b, _ := br.Peek(min(br.Buffered(), len(inference.ReceiptComment)))
	return len(b) == len(inference.ReceiptComment) && string(b) == inference.ReceiptComment
}

func (g *Gateway) markDelivered(ch *channel, cum uint64) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if cum > ch.state.Delivered {
		ch.state.Delivered = cum
	}
}

// acceptReceipt verifies a provider's receipt for a request we paid with a
// voucher for cum, and books it. usage (if known) must match it.
func (g *Gateway) acceptReceipt(ch *channel, p *providerEntry, enc string, cum, maxCost uint64, maxOut int, usage *oai.Usage, model string) (*StoredReceipt, error) {
	sr, err := g.checkReceipt(ch, p, enc, cum, maxCost, maxOut, usage)
	if err != nil {
		return nil, err
	}
	st := newStored(ch, p, sr, enc, model)
	if err := g.store.AddReceipt(&st); err != nil {
		return nil, err
	}
	// owed (and so paid) only once stored and its signature verified
	g.verifyCh <- pendingReceipt{ch: ch, provider: p, sr: sr, seq: st.Seq}
	return &st, nil
}

// checkReceipt decodes a provider's receipt and checks it against the
// request (its signature is checked later, in batches); usage is the
// response's, nil when not known yet (checkUsage then checks it).
func (g *Gateway) checkReceipt(ch *channel, p *providerEntry, enc string, cum, maxCost uint64, maxOut int, usage *oai.Usage) (*receipt.Signed, error) {
	if enc == "" {
		return nil, errors.New("provider sent no receipt")
	}
	sr, err := receipt.Decode(enc)
	if err != nil {
		return nil, err
	}
	r := sr.Receipt
	if string(r.Provider) != string(p.addr) {
		return nil, errors.New("receipt names another provider")
	}
	want := inference.Cost(int(r.PromptTokens), int(r.CompletionTokens), r.PriceInputPer_1K, r.PriceOutputPer_1K)
	current := r.PriceInputPer_1K == p.priceIn && r.PriceOutputPer_1K == p.priceOut
	previous := r.PriceInputPer_1K == p.prevIn && r.PriceOutputPer_1K == p.prevOut
	switch {
	case r.ChainId != g.chainID || r.ChannelId != ch.state.ChannelID:
		return nil, errors.New("receipt is for another chain or channel")
	case r.VoucherCumulative != cum:
		return nil, fmt.Errorf("receipt cites voucher %d, we sent %d", r.VoucherCumulative, cum)
	case !current && !previous:
		return nil, errors.New("receipt prices differ from the provider's registered prices")
	case r.Amount != want || r.Amount > maxCost:
		return nil, fmt.Errorf("receipt bills %d, tokens at registered prices cost %d (max %d)", r.Amount, want, maxCost)
	case int(r.CompletionTokens) > maxOut:
		return nil, fmt.Errorf("receipt counts %d completion tokens, max_tokens was %d", r.CompletionTokens, maxOut)
	}
	if usage != nil {
		if err := checkUsage(sr, usage); err != nil {
			return nil, err
		}
	}
	return sr, nil
}

func checkUsage(sr *receipt.Signed, usage *oai.Usage) error {
	if usage.PromptTokens != int(sr.Receipt.PromptTokens) || usage.CompletionTokens != int(sr.Receipt.CompletionTokens) {
		return errors.New("receipt token counts differ from the response's usage")
	}
	return nil
}

func newStored(ch *channel, p *providerEntry, sr *receipt.Signed, enc, model string) StoredReceipt {
	r := sr.Receipt
	return StoredReceipt{ID: sr.IDHex(), Provider: p.addr.String(), Payer: ch.acct.addr.String(), Model: model, Amount: r.Amount, Epoch: r.Epoch, Index: r.Index,
		Channel: r.ChannelId, Prompt: r.PromptTokens, Output: r.CompletionTokens, Time: time.Now().Unix(), Encoded: enc}
}

func (g *Gateway) handleReceipts(w http.ResponseWriter, r *http.Request) {
	var after uint64
	limit := 100
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		a, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			oai.Errorf(http.StatusBadRequest, "invalid_request_error", "after", "after must be a receipt sequence number").Write(w)
			return
		}
		after = a
	}
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > 1000 {
			oai.Errorf(http.StatusBadRequest, "invalid_request_error", "limit", "limit must be between 1 and 1000").Write(w)
			return
		}
		limit = l
	}
	payer := ""
	if len(g.accounts) > 0 {
		payer = accountOf(r).addr.String() // a key sees its own account's receipts
	}
	list, err := g.store.Receipts(after, limit, payer)
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": list})
}

// callerReceipt loads the receipt in the path, answering 404 unless the
// caller's account paid it (without API keys every receipt is the default
// account's).
func (g *Gateway) callerReceipt(w http.ResponseWriter, r *http.Request) (*StoredReceipt, bool) {
	rec, err := g.store.Receipt(r.PathValue("id"))
	if err == nil && rec.Payer != accountOf(r).addr.String() {
		err = pebble.ErrNotFound
	}
	if errors.Is(err, pebble.ErrNotFound) {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "id", "no receipt %q", r.PathValue("id")).Write(w)
		return nil, false
	}
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return nil, false
	}
	return rec, true
}

func (g *Gateway) handleReceipt(w http.ResponseWriter, r *http.Request) {
	rec, ok := g.callerReceipt(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rec)
}

// handleDispute disputes a receipt on chain for the account that paid it
// (MsgDisputeReceipt, escrowing the dispute bond): validators re-execute it.
func (g *Gateway) handleDispute(w http.ResponseWriter, r *http.Request) {
	acct := accountOf(r)
	rec, ok := g.callerReceipt(w, r)
	if !ok {
		return
	}
	sr, err := receipt.Decode(rec.Encoded)
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "stored receipt: %v", err).Write(w)
		return
	}
	res, err := acct.signer.Send(r.Context(), &types.MsgDisputeReceipt{Receipt: sr.Bytes, ReceiptSignature: sr.Signature})
	var te *client.TxError
	if errors.As(err, &te) {
		oai.Errorf(http.StatusConflict, "invalid_request_error", "id", "the chain refused the dispute: %s", te.Log).Write(w)
		return
	}
	if err != nil {
		oai.Errorf(http.StatusBadGateway, "api_error", "", "send the dispute: %v", err).Write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"receipt": rec.ID, "provider": rec.Provider, "epoch": rec.Epoch, "index": rec.Index,
		"tx": res.Hash, "height": res.Height, "deadline": res.Events["deadline"]})
}

// partialWait bounds how long the gateway waits for the receipt of a stream
// cut short (the provider records it as soon as it notices the cut).
const partialWait = 10 * time.Second

// newRequestID is a stream's random request id (inference.RequestIDHeader):
// 128 bits, so that nobody else can guess it and fetch its receipt.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fetchPartial asks a provider for the receipt of a stream that did not end
// cleanly (GET /v1/requests/{id}/receipt; the provider waits until it is
// recorded).
func (g *Gateway) fetchPartial(p *providerEntry, rid string) (string, error) {
	if rid == "" {
		return "", errors.New("no request id")
	}
	ctx, cancel := context.WithTimeout(context.Background(), partialWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.endpoint+inference.RequestReceiptPath(rid), nil)
	if err != nil {
		return "", err
	}
	resp, err := g.httpc.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetching the receipt of request %s: %w", rid, err)
	}
	defer resp.Body.Close()
	eb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetching the receipt of request %s: %w", rid, oai.ParseError(resp.StatusCode, eb))
	}
	enc := resp.Header.Get(inference.ReceiptHeader)
	if enc == "" {
		return "", fmt.Errorf("fetching the receipt of request %s: the provider sent none", rid)
	}
	return enc, nil
}
