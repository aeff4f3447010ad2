package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/reqauth"
	"github.com/agoranet/agora/testutil/testkey"
)

// After a restart, receipts billed before the stop are paid once the
// channel is idle, with no new request to that provider: the channels are
// restored from the store with their billed totals, and flush sends the
// voucher for them.
func TestRestoredChannelsArePaid(t *testing.T) {
	key, pub := testkey.Pair("client")
	acct := &account{key: key, addr: types.AddressFromPubKey(pub)}
	provKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	prov := types.AddressFromPubKey(provKey.Public().(ed25519.PublicKey))

	var mu sync.Mutex
	var got []*types.Voucher
	guard := reqauth.NewGuard(0, time.Now().Add(-time.Second), 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := payment.ParseVoucher(r.Header.Get(payment.VoucherHeader))
		if r.URL.Path != "/v1/vouchers" || err != nil || types.VerifyVoucher(pub, "c", v) != nil {
			http.Error(w, "bad voucher", http.StatusBadRequest)
			return
		}
		// authenticated by the channel's key, as a provider requires
		err = guard.Check(r.Header.Get(reqauth.Header), v.ChannelId, func(ch uint64) (*reqauth.Key, error) {
			k, err := reqauth.ProviderKey(provKey, pub, "c", ch)
			return &k, err
		}, r.Method, r.URL.Path, nil, r.Header.Get(payment.VoucherHeader), time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	st := testStore(t, "")
	k := acct.addr.String() + "/" + prov.String()
	if err := st.SaveChannel(k, ChannelState{ChannelID: 7, Deposit: 1000, Paid: 2, Delivered: 2}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveChannel(acct.addr.String()+"/"+acct.addr.String(), ChannelState{ChannelID: 8, Deposit: 1000}); err != nil {
		t.Fatal(err) // a channel to a provider no longer in the directory
	}
	for _, amount := range []uint64{2, 30, 45} {
		r := &StoredReceipt{ID: fmt.Sprintf("r%d", amount), Provider: prov.String(), Payer: acct.addr.String(), Channel: 7, Amount: amount}
		if err := st.AddReceipt(r); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkVerified(r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	g := &Gateway{store: st, httpc: srv.Client(), log: slog.New(slog.DiscardHandler), chainID: "c", def: acct,
		chans: map[string]*channel{}, providers: []*providerEntry{{addr: prov, endpoint: srv.URL, pub: provKey.Public().(ed25519.PublicKey)}}}
	var err error
	if g.billedAtStart, err = st.BilledByProvider(func(StoredReceipt) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if err := g.restoreChannels(); err != nil {
		t.Fatal(err)
	}
	if len(g.chans) != 1 || g.chans[k] == nil || g.chans[k].state.Billed != 77 {
		t.Fatalf("restored channels: %+v", g.chans)
	}
	g.flush(context.Background(), 0)
	if len(got) != 1 || got[0].ChannelId != 7 || got[0].CumulativeAmount != 77 {
		t.Fatalf("vouchers sent after the restart: %+v", got)
	}
	if cs, _, err := st.Channel(k); err != nil || cs.Paid != 77 || cs.Delivered != 77 {
		t.Fatalf("channel state after paying: %+v %v", cs, err)
	}
}
