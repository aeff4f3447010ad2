package gateway

import (
	"context"
	"crypto/rand"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/agoranet/agora/receipt"
)

// Receipt signatures are checked off the request path, in batches: a
// receipt is stored (synced) as soon as its contents check out, and counted
// as owed — so paid for — only once its signature verified. Batches use
// cofactored verification (RFC 8032 / FIPS 186-5), ~2x cheaper per
// signature than one by one.
var batchOpts = &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}

type pendingReceipt struct {
	ch       *channel
	provider *providerEntry
	sr       *receipt.Signed
	seq      uint64
}

func (g *Gateway) verifier(ctx context.Context) {
	defer close(g.verifyDone)
	batch := make([]pendingReceipt, 0, 256)
	for {
		select {
		case <-ctx.Done():
			// drain what is queued so nothing verified is left uncounted
			batch = batch[:0]
			for {
				select {
				case p := <-g.verifyCh:
					batch = append(batch, p)
				default:
					g.verifyBatch(batch)
					return
				}
			}
		case p := <-g.verifyCh:
			batch = append(batch[:0], p)
			deadline := time.After(2 * time.Millisecond)
		collect:
			for len(batch) < cap(batch) {
				select {
				case p := <-g.verifyCh:
					batch = append(batch, p)
				case <-deadline:
					break collect
				}
			}
			g.verifyBatch(batch)
			batch = batch[:0]
		}
	}
}

func (g *Gateway) verifyBatch(batch []pendingReceipt) {
	if len(batch) == 0 {
		return
	}
	bv := voi.NewBatchVerifierWithCapacity(len(batch))
	for _, p := range batch {
		bv.AddWithOptions(voi.PublicKey(p.provider.pub), append([]byte(receipt.SignDomain), p.sr.Bytes...), p.sr.Signature, batchOpts)
	}
	_, valid := bv.Verify(rand.Reader)
	for i, p := range batch {
		if !valid[i] {
			g.log.Warn("receipt signature does not verify: not paying it", "provider", p.provider.addr, "receipt", p.sr.IDHex())
			p.provider.observe(false, 0)
			continue
		}
		if err := g.store.MarkVerified(p.seq); err != nil {
			g.log.Error("mark receipt verified", "err", err)
		}
		p.ch.mu.Lock()
		p.ch.state.Billed += p.sr.Receipt.Amount
		p.ch.mu.Unlock()
		g.metrics.paid.Add(float64(p.sr.Receipt.Amount))
	}
}
