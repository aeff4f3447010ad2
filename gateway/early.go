package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"time"

	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
)

// An idle provider sends a request's signed receipt ahead of its response
// (103 Early Hints carrying the receipt header; in a stream, the receipt
// comment ahead of [DONE]) and then syncs its own copy; the gateway checks
// the receipt and stores it, tentatively, during that sync instead of
// after it — the two durable writes overlap, which on one connection saves
// most of one sync. When the response arrives with
// the same receipt and a matching usage, the receipt is confirmed (and
// goes to signature verification, so it is paid); otherwise it is dropped
// and the response is treated as before (another provider is tried).
//
// Crash safety: the provider may crash before its sync, so a receipt
// stored tentatively is not the client's evidence until its response came
// — never listed, paid or used for an omission report while tentative. The
// confirmation mark is not synced; a receipt a crash left tentative is
// resolved at the next start by asking its provider for it (resolveEarly),
// and asked about again (recheck) until the provider answers.
type earlyReceipt struct {
	enc  string
	sr   *receipt.Signed
	st   StoredReceipt
	err  error // the checks or the store failed
	kept bool
}

// earlyTrace returns r with a client trace that stores an early receipt
// as it arrives, into *early.
func (g *Gateway) earlyTrace(r *http.Request, early **earlyReceipt, ch *channel, p *providerEntry, cum, maxCost uint64, maxOut int, model string) *http.Request {
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == http.StatusEarlyHints && *early == nil {
			if enc := h.Get(inference.ReceiptHeader); enc != "" {
				*early = g.storeEarly(ch, p, enc, cum, maxCost, maxOut, model)
			}
		}
		return nil
	}}
	return r.WithContext(httptrace.WithClientTrace(r.Context(), trace))
}

// storeEarly checks an early receipt (all but the usage, not known yet)
// and stores it, tentatively. It runs on the goroutine reading the
// provider's response, which has nothing else to do until the provider's
// sync ends: no goroutine to start and no hand-off back, and the response,
// when it came during the store, is read without waking a parked reader.
func (g *Gateway) storeEarly(ch *channel, p *providerEntry, enc string, cum, maxCost uint64, maxOut int, model string) *earlyReceipt {
	e := &earlyReceipt{enc: enc}
	sr, err := g.checkReceipt(ch, p, enc, cum, maxCost, maxOut, nil)
	if err != nil {
		e.err = err
		return e
	}
	e.sr, e.st = sr, newStored(ch, p, sr, enc, model)
	e.st.Tentative = true
	e.err = g.store.AddReceipt(&e.st)
	return e
}

// keepEarly confirms an early receipt once its response arrived with it.
func (g *Gateway) keepEarly(e *earlyReceipt, ch *channel, p *providerEntry, usage *oai.Usage) (*StoredReceipt, error) {
	if e.err != nil {
		return nil, e.err
	}
	if usage != nil {
		if err := checkUsage(e.sr, usage); err != nil {
			return nil, err
		}
	}
	e.kept = true
	g.metrics.early.WithLabelValues("kept").Inc()
	if err := g.store.ConfirmReceipt(&e.st); err != nil {
		g.log.Error("confirm an early receipt", "err", err) // resolved with the provider after a restart
	}
	// owed (and so paid) only once stored and its signature verified
	g.verifyCh <- pendingReceipt{ch: ch, provider: p, sr: e.sr, seq: e.st.Seq}
	return &e.st, nil
}

// dropEarly removes an early receipt that was not kept.
func (g *Gateway) dropEarly(e *earlyReceipt) {
	if e == nil || e.kept {
		return
	}
	g.metrics.early.WithLabelValues("dropped").Inc()
	if e.err == nil {
		if err := g.store.DropReceipt(&e.st); err != nil {
			g.log.Error("drop an early receipt", "err", err)
		}
	}
}

// resolution is what asking a provider about a tentative receipt settled.
type resolution int

const (
	undecided resolution = iota // no clear answer: asked again later
	confirmed                   // the provider holds it
	dropped                     // the provider does not know it: deleted
)

// resolveEarly settles a receipt a crash left tentative by asking its
// provider for it: held there (its response was complete) → confirmed;
// unknown there (the provider crashed before its sync) → dropped; no
// clear answer → left tentative, asked again later (recheck).
// A receipt confirmed here is checked for omission like any other, even if
// the watch's cursor went past it while it was tentative.
func (g *Gateway) resolveEarly(ctx context.Context, r *StoredReceipt, p *providerEntry) resolution {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.endpoint+inference.ProofPath(r.ID), nil)
	if err != nil {
		return undecided
	}
	resp, err := g.httpc.Do(req)
	if err != nil {
		g.log.Warn("tentative receipt: provider unreachable, asked again later", "receipt", r.ID, "err", err)
		return undecided
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var pj receipt.ProofJSON
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pj); err != nil || pj.ID != r.ID {
			g.log.Warn("tentative receipt: the provider's answer does not show it", "receipt", r.ID)
			return undecided
		}
		if err := g.store.ConfirmReceipt(r); err != nil {
			g.log.Error("confirm a tentative receipt", "receipt", r.ID, "err", err)
			return undecided
		}
		if err := g.store.rewindOmitCursor(r.Seq); err != nil {
			g.log.Error("omission watch: check a receipt confirmed late", "receipt", r.ID, "err", err)
		}
		g.log.Info("tentative receipt confirmed by its provider", "receipt", r.ID)
		return confirmed
	case http.StatusNotFound:
		if err := g.store.DropReceipt(r); err != nil {
			g.log.Error("drop a tentative receipt", "receipt", r.ID, "err", err)
			return undecided
		}
		g.log.Info("tentative receipt unknown to its provider: dropped", "receipt", r.ID)
		return dropped
	default:
		g.log.Warn("tentative receipt: provider answered, asked again later", "receipt", r.ID, "status", resp.StatusCode)
		return undecided
	}
}
