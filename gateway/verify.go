package gateway

import (
	"context"
	"crypto/rand"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// Receipt signatures are checked off the request path, in batches (and a
// provider's batch signature — receipts signed together — once): a
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
	roots := verifiedRoots{}
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
					g.verifyBatch(batch, keys, roots)
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
			g.verifyBatch(batch, keys, roots)
			batch = batch[:0]
		}
	}
}

// verifiedRoots remembers batch signatures (provider key, root, signature)
// that verified, so the receipts of one provider batch that reach different
// verification batches are checked once. Only the verifier goroutine uses it.
type verifiedRoots map[string]struct{}

func (g *Gateway) verifyBatch(batch []pendingReceipt, keys expandedKeys, roots verifiedRoots) {
	if len(batch) == 0 {
		return
	}
	bv := voi.NewBatchVerifierWithCapacity(len(batch))
	entry := make([]int, len(batch)) // batch[i]'s entry in bv; -1: malformed; -2: root known good
	entries := map[string]int{}      // a provider batch's (key, root, signature) → its entry
	entryKeys := []string{}
	for i, p := range batch {
		msg, sig, err := types.ReceiptSignedMessage(p.sr.Bytes, p.sr.Signature)
		if err != nil {
			entry[i] = -1
			continue
		}
		var rk string
		if len(p.sr.Signature) > len(sig) { // batched: one check per provider batch
			rk = string(p.provider.pub) + string(msg) + string(sig)
			if _, ok := roots[rk]; ok {
				entry[i] = -2
				continue
			}
			if e, ok := entries[rk]; ok {
				entry[i] = e
				continue
			}
			entries[rk] = len(entryKeys)
		}
		entry[i] = len(entryKeys)
		entryKeys = append(entryKeys, rk)
		if x := keys.of(p.provider.pub); x != nil {
			bv.AddExpandedWithOptions(x, msg, sig, batchOpts)
		} else {
			bv.AddWithOptions(voi.PublicKey(p.provider.pub), msg, sig, batchOpts)
		}
	}
	var entryValid []bool
	if len(entryKeys) > 0 {
		_, entryValid = bv.Verify(rand.Reader)
	}
	if len(roots) > 4096 {
		clear(roots)
	}
	for e, rk := range entryKeys {
		if rk != "" && entryValid[e] {
			roots[rk] = struct{}{}
		}
	}
	valid := make([]bool, len(batch))
	for i, e := range entry {
		valid[i] = e == -2 || e >= 0 && entryValid[e]
	}
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
