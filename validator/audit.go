// Package validator is the verification worker beside a validator node: it
// fetches the receipts an epoch's seed selects from each provider, checks
// them against the committed roots, and re-executes native-engine
// transcripts bit for bit.
package validator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/verify"
)

// Fault types an audit can find.
const (
	FaultNone       = ""
	FaultRefused    = "refused_opening"   // the provider did not serve its openings
	FaultMissing    = "missing_opening"   // a sampled receipt was not opened
	FaultBadProof   = "bad_opening"       // proof, signature or receipt fields do not check out
	FaultFabricated = "fabricated_output" // re-execution disagrees with the transcript
	Unverifiable    = "unverifiable"      // the auditor does not hold the model
)

// Finding is the audit result for one sampled receipt (or one provider).
type Finding struct {
	Epoch    uint64 `json:"epoch"`
	Provider string `json:"provider"`
	Index    uint64 `json:"index"`
	OK       bool   `json:"ok"`
	Fault    string `json:"fault,omitempty"`
	Reason   string `json:"reason,omitempty"`

	// Report is the on-chain verdict for a fault the chain can act on.
	Report *types.MsgReportFault `json:"-"`
}

// Report submits the findings' verdicts on chain, returning how many were
// accepted.
func Report(ctx context.Context, signer *client.Signer, fs []Finding) (int, error) {
	n := 0
	for _, f := range fs {
		if f.Report == nil {
			continue
		}
		if _, err := signer.Send(ctx, f.Report); err != nil {
			return n, fmt.Errorf("report epoch %d provider %s receipt %d: %w", f.Epoch, f.Provider, f.Index, err)
		}
		n++
	}
	return n, nil
}

// Auditor checks openings against the chain with the models it holds.
type Auditor struct {
	chain *client.Client
	tol   verify.Tolerances
	httpc *http.Client

	mu          sync.Mutex // guards the models (FetchRegistered adds to them)
	models      map[[32]byte]*native.Model
	vocabs      map[[32]byte]*verify.Vocab
	fetchDir    string                 // where registered models are fetched to ("": never)
	fetchMax    uint64                 // the largest model fetched (0: any)
	fetchFailed map[[32]byte]time.Time // when a model last could not be fetched
}

// NewAuditor loads the GGUF models the auditor can re-execute (identified by
// the sha256 of the file, as providers register them).
func NewAuditor(chain *client.Client, modelPaths []string) (*Auditor, error) {
	a := &Auditor{chain: chain, models: map[[32]byte]*native.Model{}, vocabs: map[[32]byte]*verify.Vocab{}, fetchFailed: map[[32]byte]time.Time{},
		tol: verify.DefaultTolerances(), httpc: &http.Client{Timeout: 30 * time.Second}}
	for _, p := range modelPaths {
		bz, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(bz)
		m, err := native.Load(p, native.Options{})
		if err != nil {
			return nil, err
		}
		tok, err := tokenizer.FromGGUF(m.File)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("tokenizer of %s: %w", p, err)
		}
		a.models[h] = m
		a.vocabs[h] = verify.NewVocab(tok)
	}
	return a, nil
}

// Close releases the models.
func (a *Auditor) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.models {
		m.Close()
	}
}

// AuditEpoch audits every commitment of epoch (its seed must exist).
func (a *Auditor) AuditEpoch(ctx context.Context, epoch uint64) ([]Finding, error) {
	var ep api.EpochView
	if err := a.chain.Query(ctx, api.EpochPath(epoch), 0, &ep); err != nil {
		return nil, err
	}
	if len(ep.Seed) == 0 {
		return nil, fmt.Errorf("epoch %d has no seed yet (seed height %d)", epoch, ep.SeedHeight)
	}
	params, err := a.chain.Params(ctx)
	if err != nil {
		return nil, err
	}
	var cms []api.CommitmentView
	if err := a.chain.Query(ctx, api.CommitmentsPath(epoch), 0, &cms); err != nil {
		return nil, err
	}
	var out []Finding
	for _, cm := range cms {
		out = append(out, a.auditCommitment(ctx, ep, params, cm)...)
	}
	return out, nil
}

func (a *Auditor) auditCommitment(ctx context.Context, ep api.EpochView, params types.Params, cm api.CommitmentView) []Finding {
	addr := cm.Provider.String()
	fail := func(index uint64, fault, format string, args ...any) Finding {
		return Finding{Epoch: ep.Number, Provider: addr, Index: index, Fault: fault, Reason: fmt.Sprintf(format, args...)}
	}
	want := sampling.Sample(ep.Seed, cm.Provider, cm.RecordCount, params.AuditFloorBps, params.AuditCeilingBps, cm.ReputationBps)
	var pv api.ProviderView
	var acc api.AccountView
	if err := a.chain.Query(ctx, api.ProviderPath(cm.Provider), 0, &pv); err != nil {
		return []Finding{fail(0, FaultRefused, "provider record: %v", err)}
	}
	if err := a.chain.Query(ctx, api.AccountPath(cm.Provider), 0, &acc); err != nil {
		return []Finding{fail(0, FaultRefused, "provider account: %v", err)}
	}
	var got inference.Openings
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pv.Endpoint+inference.OpeningsPath(ep.Number), nil)
	resp, err := a.httpc.Do(req)
	if err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if resp.StatusCode != 200 {
			err = fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
		} else {
			err = json.Unmarshal(body, &got)
		}
	}
	refused := func(i uint64) *types.MsgReportFault {
		return &types.MsgReportFault{Epoch: ep.Number, Provider: cm.Provider, Index: i, Fault: types.FaultRefused}
	}
	if err != nil {
		var fs []Finding
		for _, i := range want {
			f := fail(i, FaultRefused, "openings not served: %v", err)
			f.Report = refused(i)
			fs = append(fs, f)
		}
		return fs
	}
	opened := map[uint64]inference.Opening{}
	for _, o := range got.Openings {
		opened[o.Proof.Index] = o
	}
	var out []Finding
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	for _, i := range want {
		o, ok := opened[i]
		if !ok {
			f := fail(i, FaultMissing, "sampled receipt %d not opened", i)
			f.Report = refused(i)
			out = append(out, f)
			continue
		}
		out = append(out, a.checkOpening(ctx, ep, cm, acc.PubKey, i, o))
	}
	return out
}

func (a *Auditor) checkOpening(ctx context.Context, ep api.EpochView, cm api.CommitmentView, pub []byte, i uint64, o inference.Opening) Finding {
	f := Finding{Epoch: ep.Number, Provider: cm.Provider.String(), Index: i}
	bad := func(fault, format string, args ...any) Finding {
		f.Fault, f.Reason = fault, fmt.Sprintf(format, args...)
		return f
	}
	if o.Proof.Count != cm.RecordCount {
		return bad(FaultBadProof, "proof for a tree of %d receipts, %d committed", o.Proof.Count, cm.RecordCount)
	}
	sr, err := o.Proof.VerifyAgainst(cm.Root)
	if err != nil {
		return bad(FaultBadProof, "%v", err)
	}
	if err := sr.Verify(pub); err != nil {
		return bad(FaultBadProof, "%v", err)
	}
	r := sr.Receipt
	tr := o.Transcript
	switch {
	case r.Epoch != ep.Number:
		return bad(FaultBadProof, "receipt is for epoch %d", r.Epoch)
	case tr == nil:
		return bad(FaultMissing, "no transcript")
	}
	outputs := len(tr.OutputIDs)
	if tr.Verify == inference.VerifyTolerance {
		outputs = len(tr.Pieces)
	}
	switch {
	case tr.Verify != inference.VerifyExact && tr.Verify != inference.VerifyTolerance:
		return bad(FaultBadProof, "unknown verification path %q", tr.Verify)
	case len(tr.PromptIDs) != int(r.PromptTokens) || outputs != int(r.CompletionTokens):
		return bad(FaultFabricated, "transcript has %d+%d tokens, receipt %d+%d", len(tr.PromptIDs), outputs, r.PromptTokens, r.CompletionTokens)
	case !bytes.Equal(sha256Of(tr.Text), r.ResponseHash):
		return bad(FaultFabricated, "transcript text does not hash to the receipt's response hash")
	}
	var mh [32]byte
	copy(mh[:], r.ModelHash)
	m, vocab, why := a.model(ctx, mh)
	if m == nil {
		f.Fault, f.Reason = Unverifiable, why
		return f
	}
	params := native.SampleParams{
		Temperature: tr.Temperature, TopP: tr.TopP, TopK: tr.TopK, MinP: tr.MinP, RepeatPenalty: tr.RepeatPen,
		FrequencyPenalty: tr.FreqPen, PresencePenalty: tr.PresPen, Seed: tr.Seed, MaxTokens: tr.MaxTokens}
	if tr.Verify == inference.VerifyTolerance {
		_, err = verify.CheckTolerance(m, vocab, verify.Reported{PromptIDs: tr.PromptIDs, Pieces: tr.Pieces,
			Logprobs: tr.Logprobs, Top: tr.Top, Params: params, Text: tr.Text}, a.tol)
	} else {
		err = verify.CheckNative(m, verify.Transcript{PromptIDs: tr.PromptIDs, OutputIDs: tr.OutputIDs, Logprobs: tr.Logprobs, Params: params})
	}
	if err != nil {
		f := bad(FaultFabricated, "%v", err)
		rep := &types.MsgReportFault{Epoch: ep.Number, Provider: cm.Provider, Index: i, Fault: types.FaultFabricated,
			Receipt: sr.Bytes, ReceiptSignature: sr.Signature, ProofLeft: o.Proof.Left}
		for _, h := range o.Proof.Siblings {
			b, _ := hex.DecodeString(h) // checked by VerifyAgainst above
			rep.Proof = append(rep.Proof, b)
		}
		f.Report = rep
		return f
	}
	f.OK = true
	return f
}

func sha256Of(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// AuditReceipt audits one disputed receipt: its opening is fetched from the
// provider and checked like a sampled one. An opening the provider does not
// serve is a refusal.
func (a *Auditor) AuditReceipt(ctx context.Context, epoch uint64, prov types.Address, index uint64) (Finding, error) {
	var ep api.EpochView
	var cm api.CommitmentView
	var pv api.ProviderView
	var acc api.AccountView
	addr := prov.String()
	if err := a.chain.Query(ctx, api.EpochPath(epoch), 0, &ep); err != nil {
		return Finding{}, err
	}
	if err := a.chain.Query(ctx, api.CommitmentPath(epoch, prov), 0, &cm); err != nil {
		return Finding{}, err
	}
	if err := a.chain.Query(ctx, api.ProviderPath(prov), 0, &pv); err != nil {
		return Finding{}, err
	}
	if err := a.chain.Query(ctx, api.AccountPath(prov), 0, &acc); err != nil {
		return Finding{}, err
	}
	refused := func(format string, args ...any) Finding {
		return Finding{Epoch: epoch, Provider: addr, Index: index, Fault: FaultRefused, Reason: fmt.Sprintf(format, args...),
			Report: &types.MsgReportFault{Epoch: epoch, Provider: prov, Index: index, Fault: types.FaultRefused}}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pv.Endpoint+inference.OpeningPath(epoch, index), nil)
	resp, err := a.httpc.Do(req)
	if err != nil {
		return refused("opening not served: %v", err), nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return refused("opening not served: status %d: %.200s", resp.StatusCode, body), nil
	}
	var o inference.Opening
	if err := json.Unmarshal(body, &o); err != nil {
		return refused("malformed opening: %v", err), nil
	}
	if o.Proof.Index != index {
		return refused("the opening is for receipt %d", o.Proof.Index), nil
	}
	return a.checkOpening(ctx, ep, cm, acc.PubKey, index, o), nil
}
