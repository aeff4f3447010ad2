package explorer

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// fakeState answers queries from a map, like app.QueryJSON.
type fakeState map[string]any

func (f fakeState) QueryJSON(path string, _ int64) (any, int64, error) {
	v, ok := f[path]
	if !ok {
		return nil, 0, types.Errorf(types.CodeNotFound, "nothing at %s", path)
	}
	return v, 1, nil
}

// receiptFixture signs count receipts for epoch 4 and commits their root.
type receiptFixture struct {
	state    fakeState
	signed   []*receipt.Signed
	ids      [][32]byte
	root     [32]byte
	provider types.Address
}

func newReceiptFixture(t *testing.T, count int) *receiptFixture {
	t.Helper()
	priv := testKey(t, 5)
	f := &receiptFixture{provider: addrOf(priv)}
	for i := 0; i < count; i++ {
		s, err := receipt.Sign(priv, &types.Receipt{ChainId: "test", Provider: f.provider, Client: addrOf(testKey(t, 6)), ChannelId: 2,
			Epoch: 4, Index: uint64(i), Amount: uint64(10 + i), PromptTokens: 3, CompletionTokens: uint32(i)})
		if err != nil {
			t.Fatal(err)
		}
		f.signed = append(f.signed, s)
		f.ids = append(f.ids, s.ID())
	}
	f.root = merkle.Root(f.ids)
	p := f.provider.String()
	f.state = fakeState{
		"/account/" + p:      api.AccountView{Address: f.provider, PubKey: types.HexBytes(priv.Public().(ed25519.PublicKey))},
		"/commitment/4/" + p: api.CommitmentView{Epoch: 4, Provider: f.provider, Root: f.root[:], RecordCount: uint64(count), Height: 77},
	}
	return f
}

func (f *receiptFixture) proofJSON(t *testing.T, i int) string {
	t.Helper()
	p, err := merkle.Prove(f.ids, i)
	if err != nil {
		t.Fatal(err)
	}
	bz, _ := json.Marshal(receipt.ProofToJSON(f.signed[i], p, f.root, true))
	return string(bz)
}

func TestCheckReceipt(t *testing.T) {
	f := newReceiptFixture(t, 5)
	c := &Checker{State: f.state, HTTP: http.DefaultClient}
	ctx := context.Background()

	// A provider's inclusion proof, pasted as is: verified without any fetch.
	res, err := c.Check(ctx, f.proofJSON(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || !res.SignatureOK || !res.Committed || !res.Included || res.Index != 3 || res.Amount != 13 ||
		res.ReceiptsInEpoch != 5 || res.CommittedHeight != 77 || res.Root != hex.EncodeToString(f.root[:]) || res.ID != f.signed[3].IDHex() {
		t.Fatalf("valid proof: %+v", res)
	}

	// An encoded receipt alone: the proof comes from the provider's endpoint.
	var asked []string
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		for i, s := range f.signed {
			if r.URL.Path == "/v1/receipts/"+s.IDHex()+"/proof" {
				io.WriteString(w, f.proofJSON(t, i))
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer prov.Close()
	f.state["/provider/"+f.provider.String()] = api.ProviderView{Address: f.provider, Endpoint: prov.URL}
	f.state["/providers"] = []api.ProviderView{{Address: f.provider, Endpoint: prov.URL}}
	res, err = c.Check(ctx, f.signed[1].Encode())
	if err != nil || !res.Verified || res.Index != 1 {
		t.Fatalf("encoded receipt: %+v %v", res, err)
	}
	// A gateway's stored receipt JSON ({"receipt": ...}) and a bare id.
	stored := `{"id":"x","receipt":"` + f.signed[2].Encode() + `","amount":12}`
	if res, err = c.Check(ctx, stored); err != nil || !res.Verified || res.Index != 2 {
		t.Fatalf("stored receipt JSON: %+v %v", res, err)
	}
	if res, err = c.Check(ctx, strings.ToUpper(f.signed[4].IDHex())); err != nil || !res.Verified || res.Index != 4 {
		t.Fatalf("receipt id: %+v %v", res, err)
	}
	if len(asked) != 3 {
		t.Fatalf("provider asked %d times, want 3: %v", len(asked), asked)
	}
	if _, err := c.Check(ctx, strings.Repeat("ab", 32)); !errors.Is(err, ErrBadReceipt) || !strings.Contains(err.Error(), "no registered provider holds") {
		t.Fatalf("unknown id: %v", err)
	}

	// A different root on chain: signed, committed, but not included.
	other := newReceiptFixture(t, 5)
	other.root[0] ^= 1
	other.state["/commitment/4/"+other.provider.String()] = api.CommitmentView{Epoch: 4, Provider: other.provider, Root: other.root[:], RecordCount: 5, Height: 77}
	res, err = (&Checker{State: other.state, HTTP: http.DefaultClient}).Check(ctx, f.proofJSON(t, 0))
	if err != nil || res.Verified || !res.SignatureOK || !res.Committed || res.Included || res.Problem == "" {
		t.Fatalf("tampered root: %+v %v", res, err)
	}
	// A count that differs from the committed one.
	f.state["/commitment/4/"+f.provider.String()] = api.CommitmentView{Epoch: 4, Provider: f.provider, Root: f.root[:], RecordCount: 6, Height: 77}
	res, _ = c.Check(ctx, f.proofJSON(t, 0))
	if res.Verified || !strings.Contains(res.Problem, "committed 6") {
		t.Fatalf("count mismatch: %+v", res)
	}
	// Not committed yet.
	delete(f.state, "/commitment/4/"+f.provider.String())
	res, _ = c.Check(ctx, f.proofJSON(t, 0))
	if res.Verified || res.Committed || !res.SignatureOK || !strings.Contains(res.Problem, "not committed") {
		t.Fatalf("uncommitted: %+v", res)
	}
	// Signed by someone else than the provider named on chain.
	f.state["/account/"+f.provider.String()] = api.AccountView{Address: f.provider, PubKey: types.HexBytes(testKey(t, 9).Public().(ed25519.PublicKey))}
	res, _ = c.Check(ctx, f.proofJSON(t, 0))
	if res.Verified || res.SignatureOK || !strings.Contains(res.Problem, "signature") {
		t.Fatalf("wrong key: %+v", res)
	}
}

func TestParseInputRefusesNonReceipts(t *testing.T) {
	for _, in := range []string{"", "   ", "garbage!", "{", `{"receipt":""}`, `{"receipt":"!!"}`, `{"foo":1}`, "abcd", strings.Repeat("A", 70000), "AAAA"} {
		_, err := parseInput(in)
		if !errors.Is(err, ErrBadReceipt) {
			t.Errorf("%.40q: err = %v, want ErrBadReceipt", in, err)
		}
	}
}

func FuzzParseInput(f *testing.F) {
	fx := newReceiptFixture(&testing.T{}, 2)
	f.Add(fx.signed[0].Encode())
	f.Add(`{"receipt":"` + fx.signed[1].Encode() + `","root":"00","siblings":[]}`)
	f.Add(fx.signed[0].IDHex())
	f.Add("{")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseInput(in)
		if err != nil {
			if !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("error not marked ErrBadReceipt: %v", err)
			}
			return
		}
		if p.id == "" && p.signed == nil {
			t.Fatal("accepted input yields neither an id nor a receipt")
		}
	})
}
