package explorer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"strings"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
)

// State answers JSON state queries (app.App does, at height 0 = latest).
type State interface {
	QueryJSON(path string, height int64) (any, int64, error)
}

// query runs a state query into out; found is false for a missing object.
func query(st State, path string, out any) (found bool, err error) {
	v, _, err := st.QueryJSON(path, 0)
	if types.CodeOf(err) == types.CodeNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	bz, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(bz, out)
}

// CheckResult is the outcome of a receipt check. Verified is true only when
// the provider's signature holds and the receipt is included under the root
// the provider committed on chain for the receipt's epoch.
type CheckResult struct {
	ID               string `json:"id"`
	Provider         string `json:"provider"`
	Client           string `json:"client"`
	ChannelID        uint64 `json:"channel_id"`
	Epoch            uint64 `json:"epoch"`
	Index            uint64 `json:"index"`
	Model            string `json:"model_hash"`
	PromptTokens     uint32 `json:"prompt_tokens"`
	CompletionTokens uint32 `json:"completion_tokens"`
	Amount           uint64 `json:"amount"`

	SignatureOK     bool   `json:"signature_ok"`
	Committed       bool   `json:"committed"`
	Root            string `json:"committed_root,omitempty"`
	CommittedHeight int64  `json:"committed_height,omitempty"`
	ReceiptsInEpoch uint64 `json:"receipts_in_epoch,omitempty"`
	Included        bool   `json:"included"`
	Verified        bool   `json:"verified"`
	Problem         string `json:"problem,omitempty"` // why it is not verified
}

// ErrBadReceipt marks input that is not a receipt at all.
var ErrBadReceipt = errors.New("not a receipt")

// Checker checks receipts against the chain, fetching inclusion proofs from
// the providers' registered endpoints when the input does not carry one.
type Checker struct {
	State State
	HTTP  *http.Client
}

// parsed is what a pasted input holds.
type parsed struct {
	id     string // hex id, when only an id was given
	signed *receipt.Signed
	proof  *receipt.ProofJSON
}

// parseInput accepts a receipt id (64 hex), an encoded receipt (the
// "receipt" field of a gateway's /v1/receipts entry, and the provider's
// X-Agora-Receipt header), or JSON holding one: a gateway's stored
// receipt ({"receipt": ...}) or a provider's inclusion proof.
func parseInput(in string) (*parsed, error) {
	in = strings.TrimSpace(in)
	if in == "" {
		return nil, fmt.Errorf("%w: the input is empty; paste a receipt id, an encoded receipt or a receipt's JSON", ErrBadReceipt)
	}
	if len(in) > 64<<10 {
		return nil, fmt.Errorf("%w: the input is larger than 64 KiB", ErrBadReceipt)
	}
	if b, err := hex.DecodeString(in); err == nil && len(b) == 32 {
		return &parsed{id: strings.ToLower(in)}, nil
	}
	if strings.HasPrefix(in, "{") {
		var pj receipt.ProofJSON
		if err := json.Unmarshal([]byte(in), &pj); err != nil {
			return nil, fmt.Errorf("%w: malformed JSON: %v", ErrBadReceipt, err)
		}
		if pj.Receipt == "" {
			return nil, fmt.Errorf("%w: the JSON has no \"receipt\" field", ErrBadReceipt)
		}
		s, err := receipt.Decode(pj.Receipt)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
		}
		p := &parsed{signed: s}
		if pj.Root != "" && pj.Siblings != nil { // a provider's inclusion proof
			p.proof = &pj
		}
		return p, nil
	}
	s, err := receipt.Decode(in)
	if err != nil {
		return nil, fmt.Errorf("%w: expected a 64-character receipt id, a receipt's JSON or an encoded receipt (the \"receipt\" field of the gateway's /v1/receipts/{id}); decoding it failed: %v", ErrBadReceipt, err)
	}
	return &parsed{signed: s}, nil
}

// Check verifies a pasted receipt. Input that is not a receipt returns an
// error wrapping ErrBadReceipt; a receipt that fails a check returns a
// result with Verified false and the Problem.
func (c *Checker) Check(ctx context.Context, input string) (*CheckResult, error) {
	p, err := parseInput(input)
	if err != nil {
		return nil, err
	}
	if p.signed == nil {
		pj, err := c.findByID(ctx, p.id)
		if err != nil {
			return nil, err
		}
		s, err := receipt.Decode(pj.Receipt)
		if err != nil || s.IDHex() != p.id {
			return nil, fmt.Errorf("a provider answered receipt %s with another receipt", p.id)
		}
		p.signed, p.proof = s, pj
	}
	s := p.signed
	r := s.Receipt
	res := &CheckResult{ID: s.IDHex(), Provider: types.Address(r.Provider).String(), Client: types.Address(r.Client).String(),
		ChannelID: r.ChannelId, Epoch: r.Epoch, Index: r.Index, Model: hex.EncodeToString(r.ModelHash),
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, Amount: r.Amount}

	var acc api.AccountView
	if _, err := query(c.State, api.AccountPath(r.Provider), &acc); err != nil {
		return nil, err
	}
	if len(acc.PubKey) == 0 {
		res.Problem = "the receipt names provider " + res.Provider + ", which has no public key on chain"
		return res, nil
	}
	if err := s.Verify(acc.PubKey); err != nil {
		res.Problem = err.Error()
		return res, nil
	}
	res.SignatureOK = true

	var cm api.CommitmentView
	found, err := query(c.State, api.CommitmentPath(r.Epoch, r.Provider), &cm)
	if err != nil {
		return nil, err
	}
	if !found {
		res.Problem = fmt.Sprintf("epoch %d is not committed on chain by this provider yet (it is committed after the epoch ends)", r.Epoch)
		return res, nil
	}
	res.Committed = true
	res.Root = hex.EncodeToString(cm.Root)
	res.CommittedHeight = cm.Height
	res.ReceiptsInEpoch = cm.RecordCount
	if p.proof == nil {
		var pv api.ProviderView
		if _, err := query(c.State, api.ProviderPath(r.Provider), &pv); err != nil {
			return nil, err
		}
		pj, err := c.fetchProof(ctx, pv.Endpoint, res.ID)
		if err != nil {
			res.Problem = "could not get an inclusion proof from the provider: " + err.Error()
			return res, nil
		}
		p.proof = pj
	}
	if p.proof.Count != cm.RecordCount {
		res.Problem = fmt.Sprintf("the inclusion proof is for %d receipts, the provider committed %d", p.proof.Count, cm.RecordCount)
		return res, nil
	}
	proven, err := p.proof.VerifyAgainst(cm.Root)
	if err != nil {
		res.Problem = err.Error()
		return res, nil
	}
	if proven.IDHex() != res.ID {
		res.Problem = "the inclusion proof is for another receipt"
		return res, nil
	}
	res.Included = true
	res.Verified = true
	return res, nil
}

// findByID asks the registered providers for the receipt's proof.
func (c *Checker) findByID(ctx context.Context, id string) (*receipt.ProofJSON, error) {
	var provs []api.ProviderView
	if _, err := query(c.State, api.ProvidersPath, &provs); err != nil {
		return nil, err
	}
	const maxAsked = 32
	for i, pv := range provs {
		if i == maxAsked {
			break
		}
		if pv.Endpoint == "" {
			continue
		}
		if pj, err := c.fetchProof(ctx, pv.Endpoint, id); err == nil {
			return pj, nil
		}
	}
	return nil, fmt.Errorf("%w: no registered provider holds a receipt with id %s; paste the receipt itself (the gateway's /v1/receipts/{id} entry)", ErrBadReceipt, id)
}

func (c *Checker) fetchProof(ctx context.Context, endpoint, id string) (*receipt.ProofJSON, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+inference.ProofPath(id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", endpoint, resp.StatusCode)
	}
	var pj receipt.ProofJSON
	if err := json.Unmarshal(body, &pj); err != nil {
		return nil, fmt.Errorf("%s: malformed proof: %w", endpoint, err)
	}
	return &pj, nil
}
