package gateway

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
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
	priv, _ := testKey("prov")
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
		return !r.Tentative || g.resolveEarly(&r, p)
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
