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
type recorder struct {
	write func(g []*recordJob) // signs and stores g, sets each job's result and closes done

	mu      sync.Mutex
	forming []*recordJob
	busy    bool // a group is being written
}

type recordJob struct {
	r  *types.Receipt
	tr *Transcript

	sr   *receipt.Signed
	err  error
	done chan struct{} // closed once written (or failed)
	lead chan struct{} // receives once if this job is to write its group
}

// record returns r signed, once it is stored with tr.
func (rc *recorder) record(r *types.Receipt, tr *Transcript) (*receipt.Signed, error) {
	j := &recordJob{r: r, tr: tr, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	rc.mu.Lock()
	rc.forming = append(rc.forming, j)
	if rc.busy {
		rc.mu.Unlock()
		select {
		case <-j.done:
			return j.sr, j.err
		case <-j.lead: // j is first in the forming group
			rc.mu.Lock()
		}
	}
	rc.busy = true
	g := rc.forming
	if len(g) > types.ReceiptBatchMax {
		rc.forming = append([]*recordJob(nil), g[types.ReceiptBatchMax:]...)
		g = g[:types.ReceiptBatchMax]
	} else {
		rc.forming = nil
	}
	rc.mu.Unlock()

	rc.write(g)

	rc.mu.Lock()
	if len(rc.forming) > 0 {
		rc.forming[0].lead <- struct{}{} // busy stays set: that job writes next
	} else {
		rc.busy = false
	}
	rc.mu.Unlock()
	return j.sr, j.err
}

// writeReceipts is the provider's recorder.write: one batch signature, one
// synced store write.
func (p *Provider) writeReceipts(g []*recordJob) {
	rs := make([]*types.Receipt, len(g))
	trs := make([]*Transcript, len(g))
	for i, j := range g {
		rs[i], trs[i] = j.r, j.tr
	}
	srs, err := receipt.SignBatch(p.cfg.Key, rs)
	if err == nil {
		err = p.store.Record(srs, trs)
	}
	for i, j := range g {
		if err == nil {
			j.sr = srs[i]
		}
		j.err = err
		close(j.done)
	}
}
