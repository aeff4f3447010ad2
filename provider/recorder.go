package provider

import (
	"sync"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// recorder signs and stores receipts in groups. The first request to
// arrive writes its receipt (signing it, then storing it with its
// transcript, synced); requests that arrive meanwhile form the next group,
// which one of them writes when the group before is done, with one
// signature over the group's Merkle root (receipt.SignBatch) and one synced
// write. Under load a signature and a sync serve several requests; a lone
// request is written at once, exactly as it would be alone.
//
// A receipt is returned only once stored: it must not leave the provider
// before (a crash in between would free its index for another receipt,
// and whoever held the first could report it omitted).
type recorder struct {
	sign  func(g []*pendingRecord) error // sets each entry's sr
	store func(g []*pendingRecord) error // stores the signed receipts, synced

	mu      sync.Mutex
	forming []*pendingRecord
	busy    bool // a group is being written
}

// pendingRecord is one receipt in a recorder group: signed, then stored
// with its transcript, by whichever request leads the group.
type pendingRecord struct {
	r  *types.Receipt
	tr []byte // the encoded transcript

	sr   *receipt.Signed
	err  error         // signing or storing failed; set before done is closed
	done chan struct{} // closed once stored (or failed to)
	lead chan struct{} // receives once if this entry is to write its group
}

// record returns r signed, once it is stored with tr (its encoded
// transcript).
func (rc *recorder) record(r *types.Receipt, tr []byte) (*receipt.Signed, error) {
	j := &pendingRecord{r: r, tr: tr, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	rc.mu.Lock()
	rc.forming = append(rc.forming, j)
	if rc.busy {
		rc.mu.Unlock()
		select {
		case <-j.done: // written by another job of its group
			return j.result()
		case <-j.lead: // j is first in the forming group
			rc.mu.Lock()
		}
	}
	rc.busy = true
	g := rc.forming
	if len(g) > types.ReceiptBatchMax {
		rc.forming = append([]*pendingRecord(nil), g[types.ReceiptBatchMax:]...)
		g = g[:types.ReceiptBatchMax]
	} else {
		rc.forming = nil
	}
	rc.mu.Unlock()

	err := rc.sign(g)
	if err == nil {
		err = rc.store(g)
	}
	for _, x := range g {
		x.err = err
		close(x.done)
	}

	rc.mu.Lock()
	if len(rc.forming) > 0 {
		rc.forming[0].lead <- struct{}{} // busy stays set: that entry writes next
	} else {
		rc.busy = false
	}
	rc.mu.Unlock()
	return j.result()
}

func (j *pendingRecord) result() (*receipt.Signed, error) {
	if j.err != nil {
		return nil, j.err
	}
	return j.sr, nil
}

// signReceipts is the provider's recorder.sign: one batch signature, RFC
// 8032 ed25519 (its nonce derived from the key and the message, so no
// state a cloned process could replay).
func (p *Provider) signReceipts(g []*pendingRecord) error {
	rs := make([]*types.Receipt, len(g))
	for i, j := range g {
		rs[i] = j.r
	}
	srs, err := receipt.SignBatch(p.cfg.Key, rs)
	if err != nil {
		return err
	}
	for i, j := range g {
		j.sr = srs[i]
	}
	return nil
}

// storeReceipts is the provider's recorder.store: one synced write.
func (p *Provider) storeReceipts(g []*pendingRecord) error {
	srs := make([]*receipt.Signed, len(g))
	trs := make([][]byte, len(g))
	for i, j := range g {
		srs[i], trs[i] = j.sr, j.tr
	}
	return p.store.Record(srs, trs)
}
