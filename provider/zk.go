package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/zk"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/protocol/zkinfer"
	"github.com/agoranet/agora/zkml"
)

// ZKModel is a zk model this provider proves inferences of: the directory
// of its circuit and keys (`agora zk compile` and a setup or ceremony) and
// its private int8 model (default DIR/model.json). It must be registered
// on chain by this provider's account (`agora zk register`) with the same
// commitment and verifying key.
type ZKModel struct {
	Dir   string `toml:"dir"`
	Model string `toml:"model"`
}

// ParseZKModel reads the flag form DIR[,MODEL.json].
func ParseZKModel(s string) ZKModel {
	dir, model, _ := strings.Cut(s, ",")
	return ZKModel{Dir: dir, Model: model}
}

// zkServed is a loaded zk model. Proofs are made one at a time (gnark's
// prover uses every core already).
type zkServed struct {
	view   api.ZKModelView
	prover *zkml.Prover
	model  *zkml.Model // the weights proofs are made with: prover.Model unless a test swapped them
	mu     sync.Mutex
}

// loadZK loads the configured zk models and finds each one's registration:
// a zk model owned by this provider with the same commitment and key.
func (p *Provider) loadZK(ctx context.Context) error {
	if len(p.cfg.ZK) == 0 {
		return nil
	}
	var reg []api.ZKModelView
	if err := p.chain.Query(ctx, api.ZKModelsPath(), 0, &reg); err != nil {
		return fmt.Errorf("list registered zk models: %w", err)
	}
	p.zk = map[uint64]*zkServed{}
	for _, zm := range p.cfg.ZK {
		modelPath := zm.Model
		if modelPath == "" {
			modelPath = zm.Dir + "/model.json"
		}
		t0 := time.Now()
		pr, err := zkml.LoadProver(zm.Dir, modelPath)
		if err != nil {
			return fmt.Errorf("zk model %s: %w", zm.Dir, err)
		}
		var found *api.ZKModelView
		for i := range reg {
			v := &reg[i]
			if v.Owner.String() == p.addr.String() && bytes.Equal(v.Commitment, pr.Commitment) && bytes.Equal(v.VKHash, pr.KeyHash[:]) && int(v.Batch) == pr.Batch {
				found = v
			}
		}
		if found == nil {
			return fmt.Errorf("zk model %s (commitment %x, verifying key %x) is not registered by provider %s: run `agora zk register --dir %s --model %s --from KEY` with this provider's key first",
				zm.Dir, pr.Commitment, pr.KeyHash, p.addr, zm.Dir, modelPath)
		}
		if _, dup := p.zk[found.ID]; dup {
			return fmt.Errorf("zk model %d is configured twice", found.ID)
		}
		s := &zkServed{view: *found, prover: pr, model: pr.Model}
		if p.cfg.ZKWeights != nil {
			s.model = p.cfg.ZKWeights(pr.Model)
		}
		p.zk[found.ID] = s
		p.log.Info("serving zk model", "id", found.ID, "name", found.Name, "batch", pr.Batch, "constraints", pr.CS.GetNbConstraints(), "price", found.Price, "load", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// zkBilled adds the stored proven answers to the channels' billed totals
// (Start, beside the receipts).
func (p *Provider) zkBilled() error {
	return p.store.ScanZK(func(a ZKAnswer) { p.billed[a.Channel] += a.Amount })
}

// handleZKInfer proves a batch of inferences of a registered zk model,
// paid like a completion (voucher, request MAC, bounded credit), billed
// Count × the registered price, and answers with the statement, the proof
// and the provider's signature over them.
func (p *Provider) handleZKInfer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if p.stopping.Load() {
		p.fail(w, oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "provider is stopping"))
		return
	}
	body, e := oai.ReadLimited(r, zkinfer.MaxRequestBytes)
	if e != nil {
		p.fail(w, e)
		return
	}
	var req zkinfer.Request
	if err := zkinfer.DecodeStrict(bytes.NewReader(body), zkinfer.MaxRequestBytes, &req); err != nil {
		p.fail(w, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "", "%v", err))
		return
	}
	s := p.zk[req.Model]
	if s == nil {
		p.fail(w, oai.Errorf(http.StatusNotFound, "invalid_request_error", "model", "zk model %d is not served here", req.Model))
		return
	}
	if err := zkinfer.CheckShape(req.Inputs, s.prover.Batch, s.prover.Model.InLen()); err != nil {
		p.fail(w, oai.Errorf(http.StatusBadRequest, "invalid_request_error", "inputs", "zk model %d: %v", req.Model, err))
		return
	}
	v, err := payment.ParseVoucher(r.Header.Get(payment.VoucherHeader))
	if err != nil {
		p.fail(w, oai.Errorf(http.StatusPaymentRequired, "payment_required", payment.VoucherHeader, "%v", err))
		return
	}
	if e := p.authenticate(r, v.ChannelId, body); e != nil {
		p.fail(w, e)
		return
	}
	cost := uint64(len(req.Inputs)) * s.view.Price
	release, e := p.reserve(r.Context(), v, cost)
	if e != nil {
		p.fail(w, e)
		return
	}
	defer release()
	if !p.enqueue(w) {
		return
	}
	defer func() { <-p.queue }()

	s.mu.Lock()
	inputs := zkinfer.Pad(req.Inputs, s.prover.Batch)
	pf, err := zkml.Prove(s.prover.CS, s.prover.PK, s.model, inputs)
	s.mu.Unlock()
	if err != nil {
		p.fail(w, oai.Errorf(http.StatusInternalServerError, "api_error", "", "prove: %v", err))
		return
	}
	proof, err := pf.ProofBytes()
	if err != nil {
		p.fail(w, oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err))
		return
	}
	a := zkinfer.Answer{Model: req.Model, Provider: p.addr, Count: len(req.Inputs), Inputs: inputs, Logits: pf.Statement.Logits, Proof: proof, Amount: cost}
	for _, c := range pf.Statement.Classes {
		a.Classes = append(a.Classes, uint32(c))
	}
	in, lg, cl := a.Flat()
	a.Statement = zk.StatementHashOf(req.Model, in, lg, cl)
	a.Signature = ed25519.Sign(p.cfg.Key, zk.AnswerBytes(p.chainID, req.Model, a.Statement, proof))

	// Billed once stored (synced): the next voucher may pay it.
	if err := p.store.AddZKAnswer(ZKAnswer{Channel: v.ChannelId, Model: req.Model, Count: a.Count, Amount: cost,
		Statement: a.Statement, Signature: a.Signature, Time: time.Now().Unix()}); err != nil {
		p.fail(w, oai.Errorf(http.StatusInternalServerError, "api_error", "", "store: %v", err))
		return
	}
	p.mu.Lock()
	p.billed[v.ChannelId] += cost
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a)
	p.metrics.requests.WithLabelValues("200").Inc()
	p.metrics.billed.Add(float64(cost))
	p.metrics.zkProofs.Inc()
	p.metrics.zkProveSeconds.Observe(time.Since(start).Seconds())
	p.log.Debug("zk answer", "model", req.Model, "count", a.Count, "amount", cost, "took", time.Since(start).Round(time.Millisecond))
}
