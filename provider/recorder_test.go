package provider

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testkey"
)

// TestRecorderGroups holds the first group's signing open while more
// receipts arrive: they are signed and stored together next, by one of
// them, each getting its own signed receipt only once its group is stored;
// a failed store fails its group's receipts (after they were signed).
func TestRecorderGroups(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var groups [][]uint64
	fail := false
	stored := map[uint64]bool{}
	rc := &recorder{}
	rc.sign = func(g []*pendingRecord) error {
		mu.Lock()
		idx := make([]uint64, len(g))
		for i, j := range g {
			idx[i] = j.r.Index
		}
		groups = append(groups, idx)
		first := len(groups) == 1
		mu.Unlock()
		if first {
			<-release
		}
		for _, j := range g {
			j.sr = &receipt.Signed{Receipt: j.r, Signature: []byte{byte(len(g))}}
		}
		return nil
	}
	rc.store = func(g []*pendingRecord) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("disk full")
		}
		for _, j := range g {
			stored[j.r.Index] = true
		}
		return nil
	}
	type result struct {
		sr  *receipt.Signed
		err error
	}
	results := make([]chan result, 6)
	start := func(i int) {
		results[i] = make(chan result, 1)
		go func() {
			sr, err := rc.record(&types.Receipt{Index: uint64(i)}, []byte("{}"))
			mu.Lock()
			if sr != nil && !stored[uint64(i)] {
				err = errors.Join(err, errors.New("receipt returned before it was stored"))
			}
			mu.Unlock()
			results[i] <- result{sr, err}
		}()
	}
	start(0)
	poll.True(t, 10*time.Second, "one group signed", func() bool { mu.Lock(); defer mu.Unlock(); return len(groups) == 1 })
	for i := 1; i <= 4; i++ {
		start(i)
	}
	poll.True(t, 10*time.Second, "four receipts forming", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.forming) == 4 })
	close(release)
	for i := 0; i <= 4; i++ {
		r := <-results[i]
		if r.err != nil || r.sr.Receipt.Index != uint64(i) {
			t.Fatalf("receipt %d: %+v", i, r)
		}
		if want := map[bool]byte{true: 1, false: 4}[i == 0]; r.sr.Signature[0] != want {
			t.Fatalf("receipt %d written in a group of %d, want %d", i, r.sr.Signature[0], want)
		}
	}
	mu.Lock()
	if len(groups) != 2 || len(groups[1]) != 4 {
		t.Fatalf("groups %v", groups)
	}
	fail = true
	mu.Unlock()
	start(5)
	if r := <-results[5]; r.err == nil || r.err.Error() != "disk full" || r.sr != nil {
		t.Fatalf("failed write: %+v", r)
	}
	if rc.busy || len(rc.forming) != 0 {
		t.Fatal("recorder left busy")
	}
}

// TestSignReceiptsDeterministic: the provider signs receipts with RFC 8032
// ed25519, whose nonce is derived from the key and the message, so a
// provider restored twice from one VM snapshot cannot reuse a nonce (which
// would reveal its key). Signing the same group twice gives the same bytes,
// and those are crypto/ed25519's signature of the receipt (a group of one)
// or of the batch root (a larger group), which verify as before.
func TestSignReceiptsDeterministic(t *testing.T) {
	priv, pub := testkey.Pair("prov")
	p := &Provider{cfg: Config{Key: priv}}
	for _, n := range []int{1, 2, 5, 16} {
		group := func() []*pendingRecord {
			g := make([]*pendingRecord, n)
			for i := range g {
				g[i] = &pendingRecord{r: &types.Receipt{ChainId: "c", Provider: types.AddressFromPubKey(pub), ChannelId: 1, Index: uint64(i), Amount: uint64(100 + i)}}
			}
			return g
		}
		a, b := group(), group()
		if err := p.signReceipts(a); err != nil {
			t.Fatal(err)
		}
		if err := p.signReceipts(b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !bytes.Equal(a[i].sr.Signature, b[i].sr.Signature) {
				t.Fatalf("n=%d, receipt %d: signed twice, two signatures", n, i)
			}
			if err := a[i].sr.Verify(pub); err != nil {
				t.Fatalf("n=%d, receipt %d: %v", n, i, err)
			}
			msg, sig64, err := types.ReceiptSignedMessage(a[i].sr.Bytes, a[i].sr.Signature)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sig64, ed25519.Sign(priv, msg)) {
				t.Fatalf("n=%d, receipt %d: not crypto/ed25519's signature", n, i)
			}
		}
	}
}
