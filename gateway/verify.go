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
// cofactored verification (RFC 8032 / FIPS 186-5), cheaper per signature
// the larger the batch (~2x at a few dozen): receipts wait up to
// batchWindow to be verified together, which delays only when they count
// as owed, never a response.
var batchOpts = &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}

const batchWindow = 20 * time.Millisecond

type pendingReceipt struct {
	ch       *channel
	provider *providerEntry
	sr       *receipt.Signed
	seq      uint64
}

// expandedKeys caches providers' decompressed public keys (decompressing is
// a large part of adding a signature to a batch). Only the verifier
// goroutine uses it.
type expandedKeys map[string]*voi.ExpandedPublicKey

func (k expandedKeys) of(pub []byte) *voi.ExpandedPublicKey {
	x, ok := k[string(pub)]
	if !ok {
		x, _ = voi.NewExpandedPublicKey(voi.PublicKey(pub)) // nil for an invalid key: its entries fail
		if len(k) > 4096 {
			clear(k)
		}
		k[string(pub)] = x
	}
	return x
}

func (g *Gateway) verifier(ctx context.Context) {
	defer close(g.verifyDone)
	batch := make([]pendingReceipt, 0, 256)
	keys := expandedKeys{}
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
					g.verifyBatch(batch, keys)
					return
				}
			}
		case p := <-g.verifyCh:
			batch = append(batch[:0], p)
			deadline := time.After(batchWindow)
		collect:
			for len(batch) < cap(batch) {
				select {
				case p := <-g.verifyCh:
					batch = append(batch, p)
				case <-deadline:
					break collect
				}
			}
			g.verifyBatch(batch, keys)
			batch = batch[:0]
		}
	}
}

func (g *Gateway) verifyBatch(batch []pendingReceipt, keys expandedKeys) {
	if len(batch) == 0 {
		return
	}
	bv := voi.NewBatchVerifierWithCapacity(len(batch))
	for _, p := range batch {
		msg := append([]byte(receipt.SignDomain), p.sr.Bytes...)
		if x := keys.of(p.provider.pub); x != nil {
			bv.AddExpandedWithOptions(x, msg, p.sr.Signature, batchOpts)
		} else {
			bv.AddWithOptions(voi.PublicKey(p.provider.pub), msg, p.sr.Signature, batchOpts)
		}
	}
	_, valid := bv.Verify(rand.Reader)
	seqs := make([]uint64, 0, len(batch))
	for i, p := range batch {
		if valid[i] {
			seqs = append(seqs, p.seq)
		}
	}
	if err := g.store.MarkVerifiedAll(seqs); err != nil {
		g.log.Error("mark receipts verified", "err", err)
	}
	for i, p := range batch {
		if !valid[i] {
			g.log.Warn("receipt signature does not verify: not paying it", "provider", p.provider.addr, "receipt", p.sr.IDHex())
			p.provider.observe(false, 0)
			continue
		}
		p.ch.mu.Lock()
		p.ch.state.Billed += p.sr.Receipt.Amount
		p.ch.mu.Unlock()
		g.metrics.paid.Add(float64(p.sr.Receipt.Amount))
	}
}
