package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/testkey"
)

func storedFor(t *testing.T, priv ed25519.PrivateKey, index uint64, tentative bool) *StoredReceipt {
	t.Helper()
	pub := priv.Public().(ed25519.PublicKey)
	sr, err := receipt.Sign(priv, &types.Receipt{ChainId: "c", Provider: types.AddressFromPubKey(pub), ChannelId: 1, Index: index, Amount: 10 + index})
	if err != nil {
		t.Fatal(err)
	}
	return &StoredReceipt{ID: sr.IDHex(), Provider: types.AddressFromPubKey(pub).String(), Payer: "payer", Amount: sr.Receipt.Amount,
		Index: index, Channel: 1, Encoded: sr.Encode(), Tentative: tentative}
}

func (s *Store) has(t *testing.T, id string) bool {
	t.Helper()
	_, c, err := s.db.Get([]byte("ri/" + id))
	if errors.Is(err, pebble.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return true
}

// TestTentativeReceipts: a tentative receipt is stored but not listed,
// found or billed until confirmed; the confirmation survives a reopen; a
// dropped one is gone. At start, resolveEarly asks the provider: a receipt
// it holds is confirmed; one it does not know is dropped; no clear answer
// leaves it tentative.
func TestTentativeReceipts(t *testing.T) {
	priv, _ := testkey.Pair("prov")
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]*StoredReceipt, 7)
	for i := range rs {
		rs[i] = storedFor(t, priv, uint64(i), i != 0)
		if err := st.AddReceipt(rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	list, err := st.Receipts(0, 100, "")
	if err != nil || len(list) != 1 || list[0].ID != rs[0].ID {
		t.Fatalf("listed with tentative receipts: %+v %v", list, err)
	}
	if _, err := st.Receipt(rs[1].ID); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("a tentative receipt was found: %v", err)
	}
	if err := st.ConfirmReceipt(rs[1]); err != nil || rs[1].Tentative {
		t.Fatal(err)
	}
	if err := st.DropReceipt(rs[2]); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	if r, err := st.Receipt(rs[1].ID); err != nil || r.Tentative {
		t.Fatalf("confirmed receipt after reopen: %+v %v", r, err)
	}
	if st.has(t, rs[2].ID) {
		t.Fatal("a dropped receipt is still stored")
	}

	// At start: the provider holds 3, does not know 4, fails on 5, and
	// answers 6 with another receipt.
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/receipts/" + rs[3].ID + "/proof":
			json.NewEncoder(w).Encode(receipt.ProofJSON{ID: rs[3].ID})
		case "/v1/receipts/" + rs[4].ID + "/proof":
			http.Error(w, "no receipt here", http.StatusNotFound)
		case "/v1/receipts/" + rs[6].ID + "/proof":
			json.NewEncoder(w).Encode(receipt.ProofJSON{ID: rs[0].ID})
		default:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer prov.Close()
	// The omission watch went past them all while they were tentative.
	if err := st.setOmitCursor(rs[6].Seq); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{store: st, httpc: prov.Client(), log: slog.New(slog.DiscardHandler)}
	p := &providerEntry{endpoint: prov.URL}
	var checked []uint64
	billed, err := st.BilledByProvider(func(r StoredReceipt) bool {
		checked = append(checked, r.Index)
		return !r.Tentative || g.resolveEarly(context.Background(), &r, p) == confirmed
	})
	if err != nil {
		t.Fatal(err)
	}
	// 0 and 1 were never marked verified, so they are checked too.
	if want := []uint64{0, 1, 3, 4, 5, 6}; !slices.Equal(checked, want) {
		t.Fatalf("checked %v, want %v", checked, want)
	}
	if got, want := billed["payer/"+rs[0].Provider][1], rs[0].Amount+rs[1].Amount+rs[3].Amount; got != want {
		t.Fatalf("billed %d, want %d (0, 1 and the confirmed 3)", got, want)
	}
	if r, err := st.Receipt(rs[3].ID); err != nil || r.Tentative {
		t.Fatalf("receipt the provider holds: %+v %v", r, err)
	}
	if st.has(t, rs[4].ID) {
		t.Fatal("a receipt unknown to its provider was kept")
	}
	// the confirmed one is checked for omission: the watch starts from it
	if c := st.omitCursor(); c != rs[3].Seq-1 {
		t.Fatalf("omission cursor %d after confirming receipt seq %d, want %d", c, rs[3].Seq, rs[3].Seq-1)
	}
	if list, err := st.Receipts(st.omitCursor(), 100, ""); err != nil || len(list) == 0 || list[0].ID != rs[3].ID {
		t.Fatalf("the omission watch's next receipts: %+v %v", list, err)
	}
	for _, i := range []int{5, 6} {
		if !st.has(t, rs[i].ID) {
			t.Fatalf("receipt %d was dropped without a clear answer", i)
		}
		if _, err := st.Receipt(rs[i].ID); !errors.Is(err, pebble.ErrNotFound) {
			t.Fatalf("receipt %d is no longer tentative: %v", i, err)
		}
	}
}

// TestUnsettledReceiptsPaidLater: receipts a crash left tentative whose
// provider does not answer at start are asked about again (recheck) rather
// than left for the next start: once the provider answers, the one it
// holds is confirmed, marked verified and billed to its channel — loaded
// or not yet — and paid by the next voucher; the one it does not know is
// dropped. While a provider does not answer, its other receipts are not
// asked about one by one.
func TestUnsettledReceiptsPaidLater(t *testing.T) {
	provKey, provPub := testkey.Pair("provider")
	prov := types.AddressFromPubKey(provPub)
	key, pub := testkey.Pair("client")
	acct := &account{key: key, addr: types.AddressFromPubKey(pub)}
	st := testStore(t, "")
	rs := []*StoredReceipt{storedFor(t, provKey, 0, false), storedFor(t, provKey, 1, true), storedFor(t, provKey, 2, true), storedFor(t, provKey, 3, true)}
	for i, r := range rs {
		r.Payer = acct.addr.String()
		if err := st.AddReceipt(r); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := st.MarkVerified(r.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	chKey := acct.addr.String() + "/" + prov.String()
	if err := st.SaveChannel(chKey, ChannelState{ChannelID: 1, Deposit: 1000}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	phase, asked := 0, 0
	var paid []uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/v1/vouchers" {
			v, err := payment.ParseVoucher(r.Header.Get(payment.VoucherHeader))
			if err != nil || types.VerifyVoucher(pub, "c", v) != nil {
				http.Error(w, "bad voucher", http.StatusBadRequest)
				return
			}
			paid = append(paid, v.CumulativeAmount)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		asked++
		switch {
		case phase >= 1 && r.URL.Path == "/v1/receipts/"+rs[1].ID+"/proof",
			phase >= 2 && r.URL.Path == "/v1/receipts/"+rs[3].ID+"/proof":
			json.NewEncoder(w).Encode(receipt.ProofJSON{ID: strings.Split(r.URL.Path, "/")[3]})
		case phase >= 1 && r.URL.Path == "/v1/receipts/"+rs[2].ID+"/proof":
			http.Error(w, "no receipt here", http.StatusNotFound)
		default:
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	at := func(p int) { mu.Lock(); phase = p; mu.Unlock() }
	count := func() int { mu.Lock(); defer mu.Unlock(); return asked }

	g := &Gateway{store: st, httpc: srv.Client(), log: slog.New(slog.DiscardHandler), chainID: "c", def: acct,
		chans: map[string]*channel{}, providers: []*providerEntry{{addr: prov, pub: provPub, endpoint: srv.URL}}}
	skip := map[string]bool{}
	var err error
	if g.billedAtStart, err = st.BilledByProvider(func(r StoredReceipt) bool { return g.settle(context.Background(), r, skip, &g.unsettled) }); err != nil {
		t.Fatal(err)
	}
	if b := g.billedFor(chKey, 1); b != rs[0].Amount || len(g.unsettled) != 3 || count() != 1 {
		t.Fatalf("at start: billed %d (want %d), %d unsettled (want 3), provider asked %d times (want 1)", b, rs[0].Amount, len(g.unsettled), count())
	}

	// The provider answers for two of them; the channel is not loaded yet.
	at(1)
	g.recheck(context.Background())
	if b := g.billedFor(chKey, 1); b != rs[0].Amount+rs[1].Amount || len(g.unsettled) != 1 || g.unsettled[0].ID != rs[3].ID {
		t.Fatalf("after the provider answered: billed %d (want %d), unsettled %+v (want receipt 3)", b, rs[0].Amount+rs[1].Amount, g.unsettled)
	}
	if r, err := st.Receipt(rs[1].ID); err != nil || r.Tentative || !st.verified(rs[1].Seq) {
		t.Fatalf("the receipt the provider holds: %+v %v", r, err)
	}
	if st.has(t, rs[2].ID) {
		t.Fatal("a receipt unknown to its provider was kept")
	}

	// Loaded, the channel owes both; the last receipt is billed to it live.
	if err := g.restoreChannels(); err != nil {
		t.Fatal(err)
	}
	at(2)
	g.recheck(context.Background())
	want := rs[0].Amount + rs[1].Amount + rs[3].Amount
	if ch := g.chans[chKey]; ch == nil || ch.state.Billed != want || len(g.unsettled) != 0 {
		t.Fatalf("live channel: %+v, %d unsettled; want billed %d", ch, len(g.unsettled), want)
	}
	g.flush(context.Background(), 0)
	mu.Lock()
	defer mu.Unlock()
	if len(paid) != 1 || paid[0] != want {
		t.Fatalf("vouchers sent: %v, want one for %d", paid, want)
	}
}
