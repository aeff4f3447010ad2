package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"time"

	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/receipt"
)

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", p.handleModels)
	mux.HandleFunc("GET /v1/models/{id...}", p.handleModel)
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { p.handleCompletion(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { p.handleCompletion(w, r, false) })
	mux.HandleFunc(payment.VouchersRoute, p.handleVoucher)
	mux.HandleFunc(inference.ProofRoute, p.handleProof)
	mux.HandleFunc(inference.RequestReceiptRoute, p.handleRequestReceipt)
	mux.HandleFunc(inference.OpeningsRoute, p.handleOpenings)
	mux.HandleFunc(inference.OpeningRoute, p.handleOpening)
	mux.HandleFunc(zkinfer.InferRoute, p.handleZKInfer)
	if p.reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}))
	}
	mux.Handle("GET /healthz", p.health)
	if p.cfg.Mount != nil {
		p.cfg.Mount(mux)
	}
	mux.HandleFunc("/", oai.Fallback(mux))
	return mux
}

func (p *Provider) handleModels(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Object string      `json:"object"`
		Data   []oai.Model `json:"data"`
	}{Object: "list"}
	for _, m := range p.backend.Models() {
		out.Data = append(out.Data, oai.Model{ID: m.Name, Object: "model", OwnedBy: p.addr.String()})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// handleModel is the OpenAI SDKs' models.retrieve: a model this provider
// serves, else a 404 in OpenAI's error format.
func (p *Provider) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, m := range p.backend.Models() {
		if m.Name == id {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(oai.Model{ID: m.Name, Object: "model", OwnedBy: p.addr.String()})
			return
		}
	}
	e := oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "The model %q does not exist: this provider does not serve it", id)
	e.Code = "model_not_found" // what OpenAI answers
	e.Write(w)
}

func (p *Provider) fail(w http.ResponseWriter, e *oai.Error) {
	p.metrics.requests.WithLabelValues(fmt.Sprint(e.Status)).Inc()
	e.Write(w)
}

func (p *Provider) handleCompletion(w http.ResponseWriter, r *http.Request, chat bool) {
	start := time.Now()
	if p.stopping.Load() { // a request on a connection opened before the stop
		p.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "provider is stopping"))
		return
	}
	req, body, e := oai.Decode(r, chat)
	if e != nil {
		p.fail(w, e)
		return
	}
	// A request with an id is tracked from here, so that asking for its
	// receipt waits for however it ends (cancel.go).
	rid := r.Header.Get(inference.RequestIDHeader)
	tracker, e := p.trackRequest(rid)
	if e != nil {
		p.fail(w, e)
		return
	}
	var sr *receipt.Signed
	defer func() { p.finish(rid, tracker, sr) }()
	v, err := payment.ParseVoucher(r.Header.Get(payment.VoucherHeader))
	if err != nil {
		p.fail(w, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "%v", err))
		return
	}
	if e := p.authenticate(r, v.ChannelId, body); e != nil {
		p.fail(w, e)
		return
	}
	ir := &InferenceRequest{Chat: chat, MaxTokens: req.MaxOutput(p.cfg.DefaultMax)}
	ir.Logprobs, ir.TopLogprobs = req.LogprobsWanted(chat)
	if chat {
		for _, m := range req.Messages {
			role := m.Role
			if role == "developer" {
				role = "system"
			}
			ir.Messages = append(ir.Messages, native.Message{Role: role, Content: string(m.Content)})
		}
	} else {
		ir.Prompt = *req.Prompt
	}
	if req.Temperature != nil {
		ir.Params.Temperature = *req.Temperature
	} else {
		ir.Params.Temperature = 1
	}
	if req.TopP != nil {
		ir.Params.TopP = *req.TopP
	}
	if req.TopK != nil {
		ir.Params.TopK = *req.TopK
	}
	if req.MinP != nil {
		ir.Params.MinP = *req.MinP
	}
	if req.FrequencyPenalty != nil {
		ir.Params.FrequencyPenalty = *req.FrequencyPenalty
	}
	if req.PresencePenalty != nil {
		ir.Params.PresencePenalty = *req.PresencePenalty
	}
	if req.Seed != nil {
		ir.Params.Seed = *req.Seed
	} else {
		var b [8]byte
		rand.Read(b[:])
		for _, x := range b {
			ir.Params.Seed = ir.Params.Seed<<8 | uint64(x)
		}
	}
	ir.Params.Stop = req.Stop
	prep, err := p.backend.Prepare(req.Model, ir)
	switch {
	case errors.Is(err, ErrUnknownModel):
		p.fail(w, oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "model %q is not served here", req.Model))
		return
	case errors.Is(err, ErrPromptTooLong):
		p.fail(w, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "messages", "%v", err))
		return
	case err != nil:
		p.fail(w, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "", "%v", err))
		return
	}
	priceIn, priceOut := p.prices() // this request is priced at admission
	maxCost := inference.Cost(prep.PromptTokens, prep.MaxTokens, priceIn, priceOut)

	release, e := p.reserve(r.Context(), v, maxCost)
	if e != nil {
		p.fail(w, e)
		return
	}
	defer release()

	// Admission: a bounded queue, then a bounded number of generations.
	if !p.enqueue(w) {
		return
	}
	defer func() { <-p.queue }()
	select {
	case p.sem <- struct{}{}:
	case <-r.Context().Done():
		return
	case <-p.cut.Done(): // stopping, and the drain ran out: nothing generated
		p.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "provider is stopping"))
		return
	}
	defer func() { <-p.sem }()

	var idb [12]byte
	rand.Read(idb[:])
	id := "chatcmpl-" + hex.EncodeToString(idb[:]) // unique per completion, as OpenAI's are
	object := "chat.completion"
	if !chat {
		id, object = "cmpl-"+id[9:], "text_completion"
	}
	created := time.Now().Unix()
	var out *Output
	if req.Stream {
		out, sr, err = p.stream(w, r, req, ir, prep, chat, id, created, body, v, priceIn, priceOut)
		if err != nil {
			p.log.Debug("stream ended early", "err", err)
			if !errors.Is(err, errNotStarted) { // else answered with an error status, counted
				p.metrics.requests.WithLabelValues("stream_aborted").Inc()
			}
			return
		}
	} else {
		out, err = prep.Run(r.Context(), nil)
		if err != nil {
			p.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "generation failed: %v", err))
			return
		}
		if sr, err = p.record(prep, out, body, v, priceIn, priceOut); err != nil {
			p.fail(w, oai.Errorf(http.StatusInternalServerError, "api_error", "", "recording receipt: %v", err))
			return
		}
		resp := oai.Response{ID: id, Object: object, Created: created, Model: req.Model, Usage: usageOf(prep, out)}
		fr := out.FinishReason
		text := out.Text
		if chat {
			resp.Choices = []oai.Choice{{Message: &oai.RespMessage{Role: "assistant", Content: &text}, FinishReason: &fr}}
		} else {
			resp.Choices = []oai.Choice{{Text: &text, FinishReason: &fr}}
		}
		if ir.Logprobs {
			resp.Choices[0].Logprobs = renderLogprobs(chat, TokenLogprobs{out.Pieces, out.Logprobs, out.Top}, ir.TopLogprobs, 0)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(inference.ReceiptHeader, sr.Encode())
		json.NewEncoder(w).Encode(resp)
	}
	p.metrics.requests.WithLabelValues("200").Inc()
	p.metrics.tokens.WithLabelValues("prompt").Add(float64(out.PromptTokens))
	p.metrics.tokens.WithLabelValues("completion").Add(float64(out.CompletionTokens))
	p.metrics.billed.Add(float64(sr.Receipt.Amount))
	p.metrics.latency.Observe(time.Since(start).Seconds())
}

// renderLogprobs is a choice's logprobs in its endpoint's format.
func renderLogprobs(chat bool, t TokenLogprobs, n, offset int) json.RawMessage {
	if chat {
		return chatLogprobs(t, n)
	}
	return textLogprobs(t, n, offset)
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func usageOf(prep *Prepared, out *Output) *oai.Usage {
	return &oai.Usage{PromptTokens: out.PromptTokens, CompletionTokens: out.CompletionTokens, TotalTokens: out.PromptTokens + out.CompletionTokens}
}

// enqueue takes a place in the bounded queue of admitted requests, or
// answers 429 when it is full; the caller gives the place back.
func (p *Provider) enqueue(w http.ResponseWriter) bool {
	select {
	case p.queue <- struct{}{}:
		return true
	default:
		p.fail(w, oai.Errorf(http.StatusTooManyRequests, "rate_limit_error", "", "provider overloaded: %d requests already queued", cap(p.queue)))
		return false
	}
}

// reserve admits a request that may cost up to maxCost on v's channel.
// Payment is made after the fact: each voucher pays for what the client
// has received so far (receipts, proven answers). The provider extends a
// bounded credit (bills not yet covered by a voucher, plus requests in
// flight) and the channel's deposit must cover everything billed and
// reserved. release gives the reservation back once the request is billed
// or failed.
func (p *Provider) reserve(ctx context.Context, v *types.Voucher, maxCost uint64) (release func(), e *oai.Error) {
	chLock := p.channelLock(v.ChannelId)
	chLock.Lock()
	ch, err := p.channel(ctx, v.ChannelId, 0)
	if err != nil {
		chLock.Unlock()
		return nil, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "channel %d: %v", v.ChannelId, err)
	}
	if perr := p.checkChannel(ch, v); perr != nil {
		chLock.Unlock()
		return nil, perr
	}
	state, perr := p.acceptVoucher(v, ch)
	if perr != nil {
		chLock.Unlock()
		return nil, perr
	}
	p.mu.Lock()
	reserved := p.reserved[v.ChannelId]
	p.mu.Unlock()
	unpaid := uint64(0)
	if state.Billed > state.BestCum {
		unpaid = state.Billed - state.BestCum
	}
	if unpaid+reserved+maxCost > p.cfg.Credit {
		chLock.Unlock()
		return nil, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader,
			"%d uagr billed on channel %d is not covered by a voucher (best %d) and %d is in flight; this request may cost %d and the credit is %d: send a voucher for at least %d",
			state.Billed, v.ChannelId, state.BestCum, reserved, maxCost, p.cfg.Credit, state.Billed)
	}
	if state.Billed+reserved+maxCost > ch.Deposit {
		// maybe topped up since we cached it
		ch, err = p.channel(ctx, v.ChannelId, state.Billed+reserved+maxCost)
	}
	if err != nil || state.Billed+reserved+maxCost > ch.Deposit {
		chLock.Unlock()
		return nil, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader,
			"channel %d is underfunded: deposit %d, billed %d, in flight %d, this request up to %d: top it up", v.ChannelId, ch.Deposit, state.Billed, reserved, maxCost)
	}
	p.mu.Lock()
	p.reserved[v.ChannelId] += maxCost
	p.mu.Unlock()
	chLock.Unlock()
	return func() {
		p.mu.Lock()
		p.reserved[v.ChannelId] -= maxCost
		p.mu.Unlock()
	}, nil
}

// acceptVoucher checks v against what was billed and stores it if it is the
// best voucher seen for its channel (synced). Call with the channel lock held.
// It returns the channel's state with its billed total.
func (p *Provider) acceptVoucher(v *types.Voucher, ch api.ChannelView) (ChannelState, *oai.Error) {
	p.mu.Lock()
	state, ok := p.vouchers[v.ChannelId]
	p.mu.Unlock()
	if !ok {
		var err error
		if state, err = p.store.Channel(v.ChannelId); err != nil {
			return state, oai.Errorf(http.StatusInternalServerError, "api_error", "", "store: %v", err)
		}
	}
	p.mu.Lock()
	state.Billed = p.billed[v.ChannelId]
	p.mu.Unlock()
	if v.CumulativeAmount > ch.Deposit {
		return state, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "voucher for %d uagr exceeds channel %d deposit of %d", v.CumulativeAmount, v.ChannelId, ch.Deposit)
	}
	if v.CumulativeAmount > state.Billed {
		return state, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "voucher for %d uagr is above the %d billed on channel %d: vouchers pay for receipts already given", v.CumulativeAmount, state.Billed, v.ChannelId)
	}
	if v.CumulativeAmount > state.BestCum {
		state.BestCum, state.BestSig = v.CumulativeAmount, v.Signature
		if err := p.store.SaveVoucher(v.ChannelId, state); err != nil {
			return state, oai.Errorf(http.StatusInternalServerError, "api_error", "", "store: %v", err)
		}
	}
	p.mu.Lock()
	p.vouchers[v.ChannelId] = state
	p.mu.Unlock()
	return state, nil
}

// handleVoucher takes a payment voucher on its own (the gateway sends one
// when it has received receipts it has not paid for yet).
func (p *Provider) handleVoucher(w http.ResponseWriter, r *http.Request) {
	v, err := payment.ParseVoucher(r.Header.Get(payment.VoucherHeader))
	if err != nil {
		oai.Errorf(http.StatusBadRequest, "invalid_request_error", payment.VoucherHeader, "%v", err).Write(w)
		return
	}
	// the body (none is expected) is covered by the request's MAC
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		oai.Errorf(http.StatusRequestEntityTooLarge, "invalid_request_error", "", "a voucher request has no body").Write(w)
		return
	}
	if e := p.authenticate(r, v.ChannelId, body); e != nil {
		p.fail(w, e)
		return
	}
	l := p.channelLock(v.ChannelId)
	l.Lock()
	defer l.Unlock()
	ch, err := p.channel(r.Context(), v.ChannelId, 0)
	if err != nil {
		oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "channel %d: %v", v.ChannelId, err).Write(w)
		return
	}
	if e := p.checkChannel(ch, v); e != nil {
		e.Write(w)
		return
	}
	if _, e := p.acceptVoucher(v, ch); e != nil {
		e.Write(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkChannel validates a voucher against its channel's on-chain state.
func (p *Provider) checkChannel(ch api.ChannelView, v *types.Voucher) *oai.Error {
	pay := func(format string, args ...any) *oai.Error {
		return oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, format, args...)
	}
	switch {
	case string(ch.Provider) != string(p.addr):
		return pay("channel %d is not a channel to this provider", v.ChannelId)
	case ch.Closed:
		return pay("channel %d is closed", v.ChannelId)
	case ch.ExpiryHeight <= p.currentHeight()+p.params.EpochLength+p.params.CommitWindow+2:
		return pay("channel %d expires at height %d, too soon to settle this request (current height %d): extend it", v.ChannelId, ch.ExpiryHeight, p.currentHeight())
	}
	// The gateway re-sends its last voucher until it pays more: remember the
	// last one verified per channel and skip checking it again.
	p.mu.Lock()
	last, ok := p.verified[v.ChannelId]
	p.mu.Unlock()
	if ok && last.CumulativeAmount == v.CumulativeAmount && bytes.Equal(last.Signature, v.Signature) {
		return nil
	}
	if err := types.VerifyVoucher(ch.ClientPubKey, p.chainID, v); err != nil {
		return pay("invalid voucher for channel %d: %v", v.ChannelId, err)
	}
	p.mu.Lock()
	p.verified[v.ChannelId] = v
	p.mu.Unlock()
	return nil
}

// idle reports whether this is the only request admitted.
func (p *Provider) idle() bool { return len(p.queue) <= 1 }

func (p *Provider) currentHeight() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.height
}

// errNotStarted is a stream's failure before its first byte, answered
// with an error status.
var errNotStarted = errors.New("the stream had not started")

// stream writes SSE chunks as tokens are generated, then the usage chunk (if
// asked), the receipt as an SSE comment, and [DONE].
func (p *Provider) stream(w http.ResponseWriter, r *http.Request, req *oai.Request, ir *InferenceRequest, prep *Prepared, chat bool, id string, created int64, body []byte, v *types.Voucher, priceIn, priceOut uint64) (*Output, *receipt.Signed, error) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return nil, nil, errors.New("streaming unsupported")
	}
	object := "chat.completion.chunk"
	if !chat {
		object = "text_completion"
	}
	// send writes one event; flush=false holds it in the response buffer
	// when the next one is already at hand.
	send := func(c oai.Response, flush bool) error {
		bz, _ := json.Marshal(c)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", bz); err != nil {
			return err
		}
		if flush {
			fl.Flush()
		}
		return nil
	}
	chunk := func(delta *string, role string, finish *string) oai.Response {
		c := oai.Response{ID: id, Object: object, Created: created, Model: req.Model}
		if chat {
			c.Choices = []oai.Choice{{Delta: &oai.RespMessage{Role: role, Content: delta}, FinishReason: finish}}
		} else {
			c.Choices = []oai.Choice{{Text: delta, FinishReason: finish}}
		}
		return c
	}
	// The response starts with the generation's first tokens, the role
	// event (chat) in the same write: a generation that fails before them
	// is answered with an error status, which a gateway takes as a cue to
	// try another provider, rather than with a stream cut short.
	started := false
	begin := func() error {
		if started {
			return nil
		}
		started = true
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if !chat {
			return nil
		}
		empty := ""
		return send(chunk(&empty, "assistant", nil), false)
	}
	offset := 0 // of the next token in the text (text completions' logprobs)
	// The generation stops early when the request is cancelled: the
	// gateway went away (its client did, or the connection broke), or a
	// stop's drain ran out. What was generated is then billed all the
	// same (out.Cancelled): a receipt for the partial output, which the
	// stream still ends with if its reader is there, and which the gateway
	// can fetch by request id if not (cancel.go).
	ctx, stopCtx := p.requestContext(r.Context())
	defer stopCtx()
	if ctx.Err() != nil { // cancelled while queued: nothing generated, nothing billed
		p.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "request cancelled before its generation began"))
		return nil, nil, fmt.Errorf("%w: %w", errNotStarted, ctx.Err())
	}
	out, err := prep.Run(ctx, func(d Delta) error {
		if err := begin(); err != nil {
			return err
		}
		text := d.Text
		c := chunk(&text, "", nil)
		if ir.Logprobs && d.Tokens.Len() > 0 {
			c.Choices[0].Logprobs = renderLogprobs(chat, d.Tokens, ir.TopLogprobs, offset)
			for _, piece := range d.Tokens.Pieces {
				offset += len(piece)
			}
		}
		return send(c, !d.More)
	})
	if err != nil {
		if !started {
			p.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "generation failed: %v", err))
			return nil, nil, fmt.Errorf("%w: %w", errNotStarted, err)
		}
		return nil, nil, err
	}
	if err := begin(); err != nil && !out.Cancelled { // a generation of no tokens
		return nil, nil, err
	}
	// The stream's end — finish, usage, receipt, [DONE] — is written only
	// once the receipt is stored (record returns then).
	sr, err := p.record(prep, out, body, v, priceIn, priceOut)
	if err != nil {
		return nil, nil, err
	}
	if out.Cancelled {
		p.metrics.partial.Inc()
	}
	fr := out.FinishReason
	if err := send(chunk(nil, "", &fr), false); err != nil {
		return out, sr, err
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		c := oai.Response{ID: id, Object: object, Created: created, Model: req.Model, Choices: []oai.Choice{}, Usage: usageOf(prep, out)}
		if err := send(c, false); err != nil {
			return out, sr, err
		}
	}
	if _, err := fmt.Fprintf(w, "%s%s\n", inference.ReceiptComment, sr.Encode()); err != nil {
		return out, sr, err
	}
	// No flush: the handler returns at once, and net/http then writes
	// [DONE] and the stream's end in one write.
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err != nil {
		return out, sr, err
	}
	return out, sr, nil
}

// record bills the request, signs its receipt and stores it with the
// transcript, synced, before the response completes (through the recorder:
// receipts that finish together share a signature and a sync). The
// receipt it returns is durable: only then may it leave the provider.
func (p *Provider) record(prep *Prepared, out *Output, body []byte, v *types.Voucher, priceIn, priceOut uint64) (*receipt.Signed, error) {
	amount := inference.Cost(out.PromptTokens, out.CompletionTokens, priceIn, priceOut)
	hash := prep.ModelHash
	ch, err := p.channel(context.Background(), v.ChannelId, 0)
	if err != nil {
		return nil, err
	}
	tr := &inference.Transcript{
		Model: prep.Model, PromptIDs: prep.PromptIDs, OutputIDs: out.OutputIDs, Logprobs: out.Logprobs,
		Temperature: prep.Params.Temperature, TopP: prep.Params.TopP, TopK: prep.Params.TopK, MinP: prep.Params.MinP,
		RepeatPen: prep.Params.RepeatPenalty, FreqPen: prep.Params.FrequencyPenalty, PresPen: prep.Params.PresencePenalty,
		Stop: prep.Params.Stop, Seed: prep.Params.Seed, MaxTokens: prep.MaxTokens, Text: []byte(out.Text),
		Verify: out.Verify, Cancelled: out.Cancelled,
	}
	if out.Verify == inference.VerifyTolerance { // what validators compare; the exact path re-derives them
		tr.Pieces, tr.Top = out.Pieces, out.Top
	}
	// Encoded here, on the request's goroutine and before an index is
	// taken: a transcript that cannot be stored fails its request alone,
	// and the recorder's group write only copies bytes.
	tbz, err := EncodeTranscript(tr)
	if err != nil {
		return nil, err
	}
	// Take the epoch label, index and new channel total together; the epoch
	// is not committed while any of its receipts is still being written.
	p.mu.Lock()
	epoch := p.epoch
	index := p.epCount[epoch]
	p.epCount[epoch]++
	p.epTotal[epoch] += amount
	p.epTokens[epoch] += uint64(out.PromptTokens) + uint64(out.CompletionTokens)
	p.billed[v.ChannelId] += amount
	channelBilled := p.billed[v.ChannelId]
	p.writing[epoch]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.writing[epoch]--
		p.mu.Unlock()
	}()
	respHash := sha256.Sum256([]byte(out.Text))
	r := &types.Receipt{
		ChainId: p.chainID, Provider: p.addr, ChannelId: v.ChannelId, Client: ch.Client,
		Epoch: epoch, Index: index, RequestHash: sha256Sum(body), ResponseHash: respHash[:], ModelHash: hash[:],
		PromptTokens: uint32(out.PromptTokens), CompletionTokens: uint32(out.CompletionTokens),
		PriceInputPer_1K: priceIn, PriceOutputPer_1K: priceOut, Amount: amount,
		ChannelBilled: channelBilled, VoucherCumulative: v.CumulativeAmount, Seed: prep.Params.Seed,
	}
	sr, err := p.recorder.record(r, tbz)
	if err != nil {
		// The index stays unused: the epoch's tree gets an empty leaf there.
		p.log.Error("storing a receipt failed", "err", err)
		return nil, err
	}
	return sr, nil
}
