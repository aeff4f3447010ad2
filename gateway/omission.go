package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
)

// Omission watch: once a receipt's epoch is past its commit deadline, the
// gateway checks that the provider committed it. A receipt beyond the
// committed count (or an epoch not committed at all) is reported at once;
// receipts inside the count are checked with the provider's inclusion proof,
// a few per provider and epoch chosen by the gateway (the provider cannot
// tell which), and one that does not verify is reported (the chain then
// challenges the provider to prove inclusion). One report per provider and
// epoch: the chain applies at most one omission fault for it.

// omissionSpotChecks is how many receipts per provider and epoch inside the
// committed count are verified against the provider's proof.
const omissionSpotChecks = 4

// omissionRetryMargin: a provider that cannot be reached for a proof is
// asked again at later ticks rather than reported at once (a report costs a
// bond that a provider answering the challenge later would win); only
// within this many blocks of the report deadline (the settle height) is it
// reported anyway.
const omissionRetryMargin = 5

// errUnreachable marks a proof request that got no answer from the provider
// (connection error, timeout, 5xx, 429), as opposed to a wrong answer.
type errUnreachable struct{ err error }

func (e errUnreachable) Error() string { return e.err.Error() }

var keyOmitCursor = []byte("m/omitcursor")

// omitCursor is the last receipt sequence number already checked.
func (s *Store) omitCursor() uint64 {
	bz, c, err := s.db.Get(keyOmitCursor)
	if err != nil {
		return 0
	}
	defer c.Close()
	return binary.BigEndian.Uint64(bz)
}

// setOmitCursor is not synced: after a crash a few receipts are checked again.
func (s *Store) setOmitCursor(seq uint64) error {
	return s.db.Set(keyOmitCursor, binary.BigEndian.AppendUint64(nil, seq))
}

// checkOmissions checks the receipts whose epochs' commit deadlines passed.
func (g *Gateway) checkOmissions(ctx context.Context) error {
	g.dirMu.RLock()
	h := g.height
	g.dirMu.RUnlock()
	rs, err := g.store.Receipts(g.store.omitCursor(), 1000, "")
	if err != nil {
		return err
	}
	type group struct {
		cm      *api.CommitmentView
		checked int
		done    bool // reported, or known fine
	}
	epochs := map[uint64]*api.EpochView{}
	groups := map[string]*group{}
	cursor := uint64(0)
receipts:
	for _, r := range rs {
		ep, ok := epochs[r.Epoch]
		if !ok {
			var v api.EpochView
			if err := g.chain.Query(ctx, api.EpochPath(r.Epoch), 0, &v); err == nil {
				ep = &v
			} else if !client.IsNotFound(err) {
				return err
			}
			epochs[r.Epoch] = ep
		}
		if ep == nil || h <= ep.CommitDeadline {
			break // receipts are in order: the rest are newer
		}
		prev := cursor
		cursor = r.Seq
		key := fmt.Sprintf("%s/%d", r.Provider, r.Epoch)
		gr := groups[key]
		if gr == nil {
			gr = &group{}
			var cm api.CommitmentView
			prov, err := types.ParseAddress(r.Provider)
			if err == nil {
				err = g.chain.Query(ctx, api.CommitmentPath(r.Epoch, prov), 0, &cm)
			}
			switch {
			case err == nil:
				gr.cm = &cm
			case !client.IsNotFound(err):
				return err
			}
			groups[key] = gr
		}
		if gr.done {
			continue
		}
		why := ""
		switch {
		case gr.cm == nil:
			why = "the provider did not commit the epoch"
		case r.Index >= gr.cm.RecordCount:
			why = fmt.Sprintf("receipt index %d is beyond the %d committed", r.Index, gr.cm.RecordCount)
		case gr.checked < omissionSpotChecks:
			err := g.proveIncluded(ctx, r, gr.cm.Root)
			if errors.As(err, new(errUnreachable)) && h+omissionRetryMargin < ep.SettleHeight {
				g.log.Info("provider unreachable for an inclusion proof: asking again later", "provider", r.Provider, "epoch", r.Epoch, "index", r.Index, "err", err)
				cursor = prev // from this receipt on, checked again at the next tick
				break receipts
			}
			gr.checked++
			if err != nil {
				why = err.Error()
			}
		}
		if why == "" {
			continue
		}
		gr.done = true
		if err := g.reportOmission(ctx, r, why); err != nil {
			g.log.Error("omission report", "provider", r.Provider, "epoch", r.Epoch, "index", r.Index, "err", err)
		}
	}
	if cursor > 0 {
		return g.store.setOmitCursor(cursor)
	}
	return nil
}

// proveIncluded fetches the receipt's inclusion proof from its provider and
// checks it against the committed root.
func (g *Gateway) proveIncluded(ctx context.Context, r StoredReceipt, root []byte) error {
	g.dirMu.RLock()
	endpoint := ""
	for _, p := range g.providers {
		if p.addr.String() == r.Provider {
			endpoint = p.endpoint
		}
	}
	g.dirMu.RUnlock()
	if endpoint == "" {
		var pv api.ProviderView
		prov, err := types.ParseAddress(r.Provider)
		if err == nil {
			err = g.chain.Query(ctx, api.ProviderPath(prov), 0, &pv)
		}
		if err != nil {
			return fmt.Errorf("provider record: %w", err)
		}
		endpoint = pv.Endpoint
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+inference.ProofPath(r.ID), nil)
	resp, err := g.httpc.Do(req)
	if err != nil {
		return errUnreachable{fmt.Errorf("no inclusion proof: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return errUnreachable{fmt.Errorf("no inclusion proof: the provider answered %d", resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("no inclusion proof: the provider answered %d", resp.StatusCode)
	}
	var pj receipt.ProofJSON
	if err := json.Unmarshal(body, &pj); err != nil {
		return fmt.Errorf("malformed inclusion proof: %w", err)
	}
	s, err := pj.VerifyAgainst(root)
	if err != nil {
		return fmt.Errorf("inclusion proof: %w", err)
	}
	if s.IDHex() != r.ID {
		return errors.New("the inclusion proof is for another receipt")
	}
	return nil
}

// reportOmission sends MsgReportOmission for r from the gateway's account.
func (g *Gateway) reportOmission(ctx context.Context, r StoredReceipt, why string) error {
	sr, err := receipt.Decode(r.Encoded)
	if err != nil {
		return err
	}
	res, err := g.signer.Send(ctx, &types.MsgReportOmission{Receipt: sr.Bytes, ReceiptSignature: sr.Signature})
	if err != nil {
		return err
	}
	g.log.Warn("receipt omitted by its provider: reported on chain", "provider", r.Provider, "epoch", r.Epoch, "index", r.Index,
		"receipt", r.ID, "why", why, "tx", res.Hash)
	return nil
}
