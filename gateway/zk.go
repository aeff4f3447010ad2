package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consensys/gnark/backend/groth16"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/reqauth"
)

// zkModel is a registered zk model with its verifying key decoded (a
// registration never changes, so it is cached for good).
type zkModel struct {
	view api.ZKModelView
	vk   groth16.VerifyingKey
}

// zkModel finds a registered zk model by id (a JSON number or a string of
// digits) or by its registered name.
func (g *Gateway) zkModel(ctx context.Context, ref json.RawMessage) (*zkModel, *oai.Error) {
	var id uint64
	var name string
	if err := json.Unmarshal(ref, &id); err != nil {
		if err := json.Unmarshal(ref, &name); err != nil || name == "" {
			return nil, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "model", "model: a zk model's id or name is required")
		}
		if n, err := strconv.ParseUint(name, 10, 64); err == nil {
			id, name = n, ""
		}
	}
	g.zkMu.Lock()
	if name == "" {
		if m := g.zkModels[id]; m != nil {
			g.zkMu.Unlock()
			return m, nil
		}
	}
	g.zkMu.Unlock()
	var views []api.ZKModelView
	if name == "" {
		var v api.ZKModelView
		if err := g.chain.Query(ctx, api.ZKModelPath(id), 0, &v); err != nil {
			return nil, oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "zk model %d: %v", id, err)
		}
		views = []api.ZKModelView{v}
	} else {
		var all []api.ZKModelView
		if err := g.chain.Query(ctx, api.ZKModelsPath(), 0, &all); err != nil {
			return nil, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "list zk models: %v", err)
		}
		var ids []string
		for _, v := range all {
			if v.Name == name {
				views = append(views, v)
				ids = append(ids, strconv.FormatUint(v.ID, 10))
			}
		}
		switch {
		case len(views) == 0:
			return nil, oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "no zk model is registered as %q", name)
		case len(views) > 1:
			return nil, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "model", "%d zk models are registered as %q (ids %s): ask for one by id", len(views), name, strings.Join(ids, ", "))
		}
	}
	v := views[0]
	vk, err := zk.ReadVerifyingKey(bytes.NewReader(v.VerifyingKey))
	if err != nil {
		return nil, oai.Errorf(http.StatusBadGateway, "api_error", "", "zk model %d's verifying key: %v", v.ID, err)
	}
	m := &zkModel{view: v, vk: vk}
	g.zkMu.Lock()
	g.zkModels[v.ID] = m
	g.zkMu.Unlock()
	return m, nil
}

// handleZKInfer serves a proven inference: the model's provider (its
// registered owner) proves it; the gateway pays for the answer only once
// its proof verifies against the registered key and commitment and the
// answer is the provider's, signed. A signed answer whose proof fails is
// reported on chain (the provider is slashed) and nothing is paid.
func (g *Gateway) handleZKInfer(w http.ResponseWriter, r *http.Request) {
	if g.stopping.Load() {
		g.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "gateway is stopping"))
		return
	}
	g.active.Add(1)
	defer g.active.Add(-1)
	body, e := oai.ReadLimited(r, zkinfer.MaxRequestBytes)
	if e != nil {
		g.fail(w, e)
		return
	}
	var req zkinfer.GatewayRequest
	if err := zkinfer.DecodeStrict(bytes.NewReader(body), zkinfer.MaxRequestBytes, &req); err != nil {
		g.fail(w, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "", "%v", err))
		return
	}
	m, e := g.zkModel(r.Context(), req.Model)
	if e != nil {
		g.fail(w, e)
		return
	}
	if err := zkinfer.CheckShape(req.Inputs, int(m.view.Batch), int(m.view.InLen)); err != nil {
		g.fail(w, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "inputs", "zk model %d: %v", m.view.ID, err))
		return
	}
	var p *providerEntry
	g.dirMu.RLock()
	for _, e := range g.providers {
		if e.addr.String() == m.view.Owner.String() {
			p = e
		}
	}
	g.dirMu.RUnlock()
	if p == nil {
		g.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "zk model %d's provider %s is not in the provider directory (not registered or not bonded)", m.view.ID, m.view.Owner))
		return
	}
	acct := accountOf(r)
	cost := uint64(len(req.Inputs)) * m.view.Price
	// The provider bills an answer once it has proved it, whether or not
	// the client is still there: the gateway keeps waiting for it (up to
	// zkAnswerTimeout, or a stop's drain), checks it and pays it, so a
	// client that leaves mid-proof does not leave honest work unpaid.
	actx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), zkAnswerTimeout)
	defer cancel()
	defer context.AfterFunc(g.cut, cancel)()
	a, err := g.askZK(actx, acct, p, m, req.Inputs, cost)
	if err != nil {
		var fe *zkFault
		if errors.As(err, &fe) {
			g.fail(w, oai.Errorf(http.StatusBadGateway, "api_error", "", "%v", err))
			return
		}
		p.observe(false, 0)
		g.fail(w, oai.Errorf(http.StatusBadGateway, "api_error", "", "zk model %d at provider %s: %v", m.view.ID, p.addr, err))
		return
	}
	out := zkinfer.GatewayAnswer{Answer: *a, Verified: true}
	if req.Publish {
		in, lg, cl := a.Flat()
		res, err := acct.signer.Send(r.Context(), &types.MsgVerifyZKProof{ModelId: m.view.ID, Inputs: in, Logits: lg, Classes: cl, Proof: a.Proof})
		var rec api.ZKProofView
		switch {
		case err == nil:
			out.PublishedHeight, out.PublishedTx = res.Height, res.Hash
		case g.chain.Query(r.Context(), api.ZKProofPath(m.view.ID, a.Statement), 0, &rec) == nil:
			// The same statement (same inputs, so same outputs) was
			// recorded before: it is on chain, at that height.
			out.PublishedHeight = rec.Height
		default:
			// Verified and paid here: the answer is the client's
			// whatever happened to its publication.
			out.PublishError = err.Error()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(ProviderHeader, p.addr.String())
	json.NewEncoder(w).Encode(out)
	g.metrics.requests.WithLabelValues("200").Inc()
}

// zkAnswerTimeout bounds how long the gateway waits for a proof (MNIST at
// batch 13: about 7 s here).
const zkAnswerTimeout = 10 * time.Minute

// zkFault is a provider's signed answer whose proof did not verify.
type zkFault struct {
	provider types.Address
	reason   error
	report   string // what reporting it on chain gave
}

func (f *zkFault) Error() string {
	return fmt.Sprintf("provider %s's signed answer does not verify (%v): nothing paid; %s", f.provider, f.reason, f.report)
}

// askZK sends a zk request to p on acct's channel and checks the answer;
// a verified answer is stored and billed to the channel before it returns.
func (g *Gateway) askZK(ctx context.Context, acct *account, p *providerEntry, m *zkModel, inputs [][]int8, cost uint64) (*zkinfer.Answer, error) {
	ch, err := g.channelFor(ctx, acct, p, cost)
	if err != nil {
		return nil, err
	}
	ch.mu.Lock()
	v, err := g.voucher(ch, false)
	var key *reqauth.Key
	if err == nil {
		key, err = g.requestKey(ch)
	}
	ch.inflight += cost
	ch.lastUse = time.Now()
	ch.mu.Unlock()
	defer func() {
		ch.mu.Lock()
		ch.inflight -= cost
		ch.lastUse = time.Now()
		ch.mu.Unlock()
	}()
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(zkinfer.Request{Model: m.view.ID, Inputs: inputs})
	preq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint+zkinfer.InferPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	preq.Header.Set("Content-Type", "application/json")
	vh := payment.FormatVoucher(v)
	preq.Header.Set(payment.VoucherHeader, vh)
	preq.Header.Set(reqauth.Header, reqauth.Sign(key, v.ChannelId, time.Now(), http.MethodPost, zkinfer.InferPath, body, vh))
	t0 := time.Now()
	resp, err := g.hop.Do(preq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, zkinfer.MaxAnswerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, oai.ParseError(resp.StatusCode, rb).Message)
	}
	if len(rb) > zkinfer.MaxAnswerBytes {
		return nil, fmt.Errorf("answer over %d bytes", zkinfer.MaxAnswerBytes)
	}
	var a zkinfer.Answer
	if err := json.Unmarshal(rb, &a); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if err := g.checkZK(p, m, inputs, cost, &a); err != nil {
		var fe *zkFault
		if errors.As(err, &fe) {
			fe.report = g.reportZK(acct, m, &a)
			g.metrics.zkFaults.Inc()
		}
		return nil, err
	}
	p.observe(true, time.Since(t0))
	// Billed to the channel it was asked on (its provider bills that
	// one), even if the channel was replaced meanwhile.
	st := &StoredZKAnswer{Provider: p.addr.String(), Payer: acct.addr.String(), Model: m.view.ID, Channel: v.ChannelId,
		Count: a.Count, Amount: cost, Statement: a.Statement, Classes: a.Classes, Time: time.Now().Unix()}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := g.store.AddZKAnswer(st); err != nil {
		return nil, fmt.Errorf("store the answer: %w", err)
	}
	if ch.state.ChannelID == v.ChannelId {
		ch.state.Billed += cost
	}
	g.metrics.zkAnswers.Inc()
	return &a, nil
}

// checkZK checks an answer against the request and the registration. Any
// mismatch the provider's signature does not cover is an error; a signed
// answer whose proof fails is a *zkFault (evidence for the chain).
func (g *Gateway) checkZK(p *providerEntry, m *zkModel, inputs [][]int8, cost uint64, a *zkinfer.Answer) error {
	b, n, o := int(m.view.Batch), int(m.view.InLen), int(m.view.OutLen)
	switch {
	case a.Model != m.view.ID || a.Provider.String() != p.addr.String():
		return fmt.Errorf("the answer is for model %d by %s, asked model %d of %s", a.Model, a.Provider, m.view.ID, p.addr)
	case a.Count != len(inputs) || a.Amount != cost:
		return fmt.Errorf("the answer bills %d for %d inferences, asked %d for %d", a.Amount, a.Count, cost, len(inputs))
	case len(a.Inputs) != b || len(a.Logits) != b || len(a.Classes) != b:
		return fmt.Errorf("the answer has %d inputs, %d logit vectors and %d classes: the model's batch is %d", len(a.Inputs), len(a.Logits), len(a.Classes), b)
	}
	for i := range b {
		if len(a.Inputs[i]) != n || len(a.Logits[i]) != o {
			return fmt.Errorf("answer item %d has %d inputs and %d logits, want %d and %d", i, len(a.Inputs[i]), len(a.Logits[i]), n, o)
		}
		if i < len(inputs) && !slices.Equal(a.Inputs[i], inputs[i]) {
			return fmt.Errorf("answer item %d is for other inputs than asked", i)
		}
	}
	in, lg, cl := a.Flat()
	if sh := zk.StatementHashOf(m.view.ID, in, lg, cl); !bytes.Equal(sh, a.Statement) {
		return fmt.Errorf("the answer's statement hash %x is not its statement's (%x)", []byte(a.Statement), sh)
	}
	if !ed25519.Verify(p.pub, zk.AnswerBytes(g.chainID, m.view.ID, a.Statement, a.Proof), a.Signature) {
		return errors.New("the answer is not signed by its provider")
	}
	// Signed: from here a failure is the provider's fault, provable on chain.
	proof, err := zk.ReadProof(a.Proof)
	if err == nil {
		classes := make([]int, len(a.Classes))
		for i, c := range a.Classes {
			classes[i] = int(c)
		}
		err = zk.VerifyStatement(m.vk, proof, new(big.Int).SetBytes(m.view.Commitment), a.Inputs, a.Logits, classes, n, o)
	}
	if err != nil {
		return &zkFault{provider: p.addr, reason: err}
	}
	return nil
}

// reportZK sends a failed signed answer to the chain, which checks it
// again and slashes the provider (the reporting account gets its share).
func (g *Gateway) reportZK(acct *account, m *zkModel, a *zkinfer.Answer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, lg, cl := a.Flat()
	res, err := acct.signer.Send(ctx, &types.MsgReportZKFault{ModelId: m.view.ID, Provider: a.Provider, Inputs: in, Logits: lg, Classes: cl, Proof: a.Proof, Signature: a.Signature})
	if err != nil {
		g.log.Error("report a zk fault", "provider", a.Provider, "model", m.view.ID, "err", err)
		return fmt.Sprintf("reporting it on chain failed: %v", err)
	}
	g.log.Warn("zk fault reported", "provider", a.Provider, "model", m.view.ID, "height", res.Height, "slashed", res.Events["slashed"])
	return fmt.Sprintf("reported on chain in block %d (tx %s): provider slashed %s uagr", res.Height, res.Hash, res.Events["slashed"])
}
