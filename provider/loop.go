package provider

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"net/http"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/receipt"
)

// loop follows the chain: advances the epoch label, commits each finished
// epoch's receipt root before its deadline, then redeems the best voucher
// of every channel.
func (p *Provider) loop(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.tick(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("chain sync", "err", err)
			}
		}
	}
}

func (p *Provider) tick(ctx context.Context) error {
	st, err := p.chain.Status(ctx)
	if err != nil {
		return err
	}
	h := st.SyncInfo.LatestBlockHeight
	p.mu.Lock()
	p.height = h
	cur := epochs.Number(p.params, h+1)
	if cur > p.epoch {
		p.epoch = cur // new receipts go to the new epoch from now on
	}
	if p.nextFrom != 0 && cur >= p.nextFrom {
		p.priceIn, p.priceOut, p.nextFrom = p.nextIn, p.nextOut, 0
	}
	p.utilSum += uint64(len(p.queue)) * 1000 / uint64(cap(p.queue))
	p.utilN++
	p.mu.Unlock()
	if err := p.reprice(ctx, cur); err != nil {
		p.log.Warn("publish prices", "err", err)
	}
	committed := false
	for e := uint64(0); e < cur; e++ {
		if cur-e > 3 {
			continue
		}
		ok, err := p.commitEpoch(ctx, e, h)
		switch {
		case errors.Is(err, errDeadlinePassed):
			if !p.missed[e] { // said once, not every tick
				p.missed[e] = true
				p.log.Error("commit epoch", "epoch", e, "err", err)
			}
		case err != nil:
			p.log.Error("commit epoch", "epoch", e, "err", err)
		}
		committed = committed || ok
	}
	if err := p.answerChallenges(ctx, h); err != nil {
		p.log.Error("answer omission challenges", "err", err)
	}
	// Redeem after each commit, and periodically: a client pays its last
	// receipts with a voucher that may arrive after the epoch was committed.
	if committed || h >= p.nextRedeem {
		p.nextRedeem = h + max(1, p.params.EpochLength/2)
		return p.redeemAll(ctx)
	}
	return nil
}

// EpochIDs returns the receipt ids of epoch e by index, count long; an index
// whose receipt was never stored (a failed write) is an empty (zero) leaf.
func (p *Provider) EpochIDs(e uint64) ([][32]byte, error) {
	p.mu.Lock()
	count := p.epCount[e]
	p.mu.Unlock()
	rs, err := p.store.Receipts(e)
	if err != nil {
		return nil, err
	}
	ids := make([][32]byte, count)
	for _, r := range rs {
		if r.Receipt.Index < count {
			ids[r.Receipt.Index] = r.ID()
		}
	}
	return ids, nil
}

// errDeadlinePassed: an epoch's commitment can no longer be sent.
var errDeadlinePassed = errors.New("commit deadline passed")

func (p *Provider) commitEpoch(ctx context.Context, e uint64, h int64) (bool, error) {
	es, err := p.store.Epoch(e)
	if err != nil || es.Committed {
		return false, err
	}
	p.mu.Lock()
	es.Count, es.Total = p.epCount[e], p.epTotal[e]
	tokens := p.epTokens[e]
	busy := p.writing[e] > 0
	p.mu.Unlock()
	if es.Count == 0 || busy {
		return false, nil // nothing to commit, or receipts still being written
	}
	var ev api.EpochView
	if err := p.chain.Query(ctx, api.EpochPath(e), 0, &ev); err != nil {
		if client.IsNotFound(err) {
			return false, nil // not closed on chain yet
		}
		return false, err
	}
	if h >= ev.CommitDeadline {
		return false, fmt.Errorf("%w (height %d, deadline %d): the epoch's %d receipts go uncommitted", errDeadlinePassed, h, ev.CommitDeadline, es.Count)
	}
	ids, err := p.EpochIDs(e)
	if err != nil {
		return false, err
	}
	root := merkle.Root(ids)
	_, err = p.signer.Send(ctx, &types.MsgCommitEpoch{Epoch: e, Root: root[:], RecordCount: es.Count, TotalBilled: es.Total, TotalTokens: tokens})
	var te *client.TxError
	if err != nil && !(errors.As(err, &te) && strings.Contains(te.Log, "already committed")) {
		return false, err
	}
	es.Committed, es.Root = true, root[:]
	if err := p.store.SaveEpoch(e, es); err != nil {
		return false, err
	}
	p.log.Info("epoch committed", "epoch", e, "receipts", es.Count, "billed", es.Total, "root", hex.EncodeToString(root[:8]))
	return true, nil
}

// redeemAll redeems, per channel, the best voucher above what was redeemed.
func (p *Provider) redeemAll(ctx context.Context) error {
	chans, err := p.store.Channels()
	if err != nil {
		return err
	}
	for id, st := range chans {
		if st.BestCum <= st.Redeemed {
			continue
		}
		var cv api.ChannelView
		if err := p.chain.Query(ctx, api.ChannelPath(id), 0, &cv); err != nil {
			return err
		}
		if !cv.Closed && cv.Redeemed < st.BestCum {
			res, err := p.signer.Send(ctx, &types.MsgRedeemVoucher{Voucher: &types.Voucher{ChannelId: id, CumulativeAmount: st.BestCum, Signature: st.BestSig}})
			if err != nil {
				p.log.Error("redeem voucher", "channel", id, "err", err)
				continue
			}
			p.log.Info("voucher redeemed", "channel", id, "cumulative", st.BestCum, "paid", res.Events["paid"])
		}
		l := p.channelLock(id)
		l.Lock()
		p.mu.Lock()
		cur, ok := p.vouchers[id]
		p.mu.Unlock()
		if !ok {
			cur, err = p.store.Channel(id)
		}
		if err == nil {
			cur.Redeemed = max(cur.Redeemed, st.BestCum)
			err = p.store.SaveVoucher(id, cur)
			p.mu.Lock()
			p.vouchers[id] = cur
			p.mu.Unlock()
		}
		l.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// ProofJSON is the answer of GET /v1/receipts/{id}/proof.
type ProofJSON = receipt.ProofJSON

func (p *Provider) handleProof(w http.ResponseWriter, r *http.Request) {
	idb, err := hex.DecodeString(r.PathValue("id"))
	if err != nil || len(idb) != 32 {
		oai.Errorf(http.StatusBadRequest, "invalid_request_error", "id", "receipt id must be 64 hex characters").Write(w)
		return
	}
	var id [32]byte
	copy(id[:], idb)
	sr, err := p.store.ReceiptByID(id)
	if errors.Is(err, pebble.ErrNotFound) {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "id", "no receipt %x here", id).Write(w)
		return
	}
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return
	}
	ids, err := p.EpochIDs(sr.Receipt.Epoch)
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return
	}
	root := merkle.Root(ids)
	proof, err := merkle.Prove(ids, int(sr.Receipt.Index))
	if err != nil {
		oai.Errorf(http.StatusInternalServerError, "api_error", "", "%v", err).Write(w)
		return
	}
	es, _ := p.store.Epoch(sr.Receipt.Epoch)
	out := receipt.ProofToJSON(sr, proof, root, es.Committed)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// reprice applies the price policy once per epoch: it publishes new prices
// on chain, charged from the next epoch.
func (p *Provider) reprice(ctx context.Context, cur uint64) error {
	p.mu.Lock()
	if !p.cfg.Pricing.Adaptive || cur <= p.lastPricedEpoch || p.nextFrom != 0 {
		p.mu.Unlock()
		return nil
	}
	p.lastPricedEpoch = cur
	util := uint64(0)
	if p.utilN > 0 {
		util = p.utilSum / p.utilN
	}
	p.utilSum, p.utilN = 0, 0
	in := p.cfg.Pricing.NextPrice(p.priceIn, p.cfg.PriceIn, util)
	out := p.cfg.Pricing.NextPrice(p.priceOut, p.cfg.PriceOut, util)
	p.mu.Unlock()
	if in == p.priceIn && out == p.priceOut {
		return nil
	}
	info := p.info()
	info.PriceInputPer_1K, info.PriceOutputPer_1K = in, out
	if _, err := p.signer.Send(ctx, &types.MsgUpdateProvider{Info: info}); err != nil {
		return err
	}
	p.mu.Lock()
	p.nextIn, p.nextOut, p.nextFrom = in, out, cur+1
	p.mu.Unlock()
	p.log.Info("prices published", "input_per_1k", in, "output_per_1k", out, "from_epoch", cur+1, "utilisation_permille", util)
	return nil
}

// answerChallenges answers every open omission challenge against this
// provider with the challenged receipt's inclusion proof. A receipt it
// signed is in its store and in its committed root, so an honest provider
// always can; an answer already sent is not sent again until it could have
// been included.
func (p *Provider) answerChallenges(ctx context.Context, h int64) error {
	var chs []api.ChallengeView
	if err := p.chain.Query(ctx, api.ProviderChallengesPath(p.addr), 0, &chs); err != nil {
		return err
	}
	for _, c := range chs {
		key := fmt.Sprintf("%d/%d", c.Epoch, c.Index)
		if until, ok := p.answered[key]; ok && h <= until {
			continue
		}
		var id [32]byte
		copy(id[:], c.ReceiptID)
		sr, err := p.store.ReceiptByID(id)
		if err != nil {
			p.log.Error("omission challenge on a receipt this provider does not hold", "epoch", c.Epoch, "index", c.Index, "receipt", fmt.Sprintf("%x", id), "err", err)
			continue
		}
		if sr.Receipt.Epoch != c.Epoch || sr.Receipt.Index != c.Index {
			continue
		}
		ids, err := p.EpochIDs(c.Epoch)
		if err != nil {
			return err
		}
		pr, err := merkle.Prove(ids, int(c.Index))
		if err != nil {
			return err
		}
		m := &types.MsgAnswerOmission{Epoch: c.Epoch, Index: c.Index, ProofLeft: pr.Left}
		for _, s := range pr.Siblings {
			m.Proof = append(m.Proof, append([]byte(nil), s[:]...))
		}
		if _, err := p.signer.Send(ctx, m); err != nil {
			return fmt.Errorf("answer challenge on receipt %d of epoch %d: %w", c.Index, c.Epoch, err)
		}
		p.answered[key] = h + 3
		p.log.Info("omission challenge answered", "epoch", c.Epoch, "index", c.Index)
	}
	return nil
}
