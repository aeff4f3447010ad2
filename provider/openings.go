package provider

import (
	"encoding/json"
	"github.com/agoranet/agora/chain/api"
	"net/http"
	"strconv"

	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
)

// handleOpenings serves the receipts the epoch's seed selected for audit,
// once the seed exists, with proofs against the committed root.
func (p *Provider) handleOpenings(w http.ResponseWriter, r *http.Request) {
	e, err := strconv.ParseUint(r.PathValue("epoch"), 10, 64)
	if err != nil {
		oai.Errorf(http.StatusBadRequest, "invalid_request_error", "epoch", "epoch must be a number").Write(w)
		return
	}
	var ep api.EpochView
	if err := p.chain.Query(r.Context(), api.EpochPath(e), 0, &ep); err != nil || len(ep.Seed) == 0 {
		oai.Errorf(http.StatusConflict, "invalid_request_error", "epoch", "epoch %d has no sampling seed yet", e).Write(w)
		return
	}
	es, err := p.store.Epoch(e)
	if err != nil || !es.Committed {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "epoch", "no commitment for epoch %d", e).Write(w)
		return
	}
	ids, err := p.EpochIDs(e)
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return
	}
	// The audit rate follows the reputation recorded in the on-chain commitment.
	var cm api.CommitmentView
	if err := p.chain.Query(r.Context(), api.CommitmentPath(e, p.addr), 0, &cm); err != nil {
		oai.Errorf(http.StatusConflict, "invalid_request_error", "epoch", "commitment for epoch %d not readable on chain: %v", e, err).Write(w)
		return
	}
	out := inference.Openings{Epoch: e, Count: uint64(len(ids)), Openings: []inference.Opening{}}
	out.Indices = sampling.Sample(ep.Seed, p.addr, out.Count, p.params.AuditFloorBps, p.params.AuditCeilingBps, cm.ReputationBps)
	root := merkle.Root(ids)
	for _, i := range out.Indices {
		sr, err := p.store.ReceiptByID(ids[i])
		if err != nil {
			continue // an empty leaf (a write that failed): nothing to open
		}
		proof, err := merkle.Prove(ids, int(i))
		if err != nil {
			continue
		}
		tr, err := p.store.Transcript(e, i)
		if err != nil {
			continue
		}
		out.Openings = append(out.Openings, inference.Opening{Proof: receipt.ProofToJSON(sr, proof, root, true), Transcript: tr})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// handleOpening serves one receipt's opening (inclusion proof and
// transcript) when a client disputes it on chain, so validators can
// re-execute it; undisputed, unsampled transcripts stay private.
func (p *Provider) handleOpening(w http.ResponseWriter, r *http.Request) {
	e, err1 := strconv.ParseUint(r.PathValue("epoch"), 10, 64)
	i, err2 := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err1 != nil || err2 != nil {
		oai.Errorf(http.StatusBadRequest, "invalid_request_error", "", "epoch and index must be numbers").Write(w)
		return
	}
	var ds []api.DisputeView
	if err := p.chain.Query(r.Context(), api.DisputesPath, 0, &ds); err != nil {
		oai.Errorf(http.StatusServiceUnavailable, "api_error", "", "read disputes: %v", err).Write(w)
		return
	}
	disputed := false
	for _, d := range ds {
		disputed = disputed || (d.Epoch == e && d.Index == i && string(d.Provider) == string(p.addr))
	}
	if !disputed {
		oai.Errorf(http.StatusForbidden, "invalid_request_error", "", "receipt %d of epoch %d is not disputed: its transcript is not public", i, e).Write(w)
		return
	}
	ids, err := p.EpochIDs(e)
	if err != nil || i >= uint64(len(ids)) {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "", "no receipt %d in epoch %d", i, e).Write(w)
		return
	}
	sr, err := p.store.ReceiptByID(ids[i])
	if err != nil {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "", "receipt %d of epoch %d: %v", i, e, err).Write(w)
		return
	}
	proof, err := merkle.Prove(ids, int(i))
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return
	}
	tr, err := p.store.Transcript(e, i)
	if err != nil {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "", "transcript %d of epoch %d: %v", i, e, err).Write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(inference.Opening{Proof: receipt.ProofToJSON(sr, proof, merkle.Root(ids), true), Transcript: tr})
}
