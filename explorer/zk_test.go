package explorer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/app"
	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
	"github.com/agoranet/agora/zkml"
)

// zkChain is a real in-process chain (every module, one validator) whose
// blocks are indexed as they are committed.
type zkChain struct {
	t      *testing.T
	app    *app.App
	x      *Index
	params types.Params
	height int64
	nonces map[string]uint64
}

func newZKChain(t *testing.T, funded ...ed25519.PrivateKey) *zkChain {
	t.Helper()
	p := types.DefaultParams()
	g := types.Genesis{Params: p,
		Validators: []types.GenesisValidator{{Operator: addrOf(testKey(t, 40)), ConsPubKey: types.HexBytes(testKey(t, 41).Public().(ed25519.PublicKey)), Bonded: p.MinValidatorStake}}}
	for _, k := range funded {
		g.Accounts = append(g.Accounts, types.GenesisAccount{Address: addrOf(k), Balance: 10_000_000_000})
	}
	genesis, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(t, app.DefaultModules(), genesis)
	if err != nil {
		t.Fatal(err)
	}
	x, err := OpenIndex(t.TempDir(), p.EpochLength)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	x.SetMsgs(a.Msgs())
	return &zkChain{t: t, app: a, x: x, params: p, nonces: map[string]uint64{}}
}

// tx signs msg from k with its next nonce and a fee that covers a tx of
// up to 16 KB.
func (c *zkChain) tx(k ed25519.PrivateKey, msg proto.Message) []byte {
	c.t.Helper()
	who := addrOf(k).String()
	body := &types.TxBody{ChainId: "test", Nonce: c.nonces[who]}
	if err := c.app.Msgs().Set(body, msg); err != nil {
		c.t.Fatal(err)
	}
	body.Fee = c.params.MinFee(c.app.Msgs().Name(body), 16<<10)
	c.nonces[who]++
	raw, err := types.SignTx(k, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

// block commits txs in the next block, indexes it and returns the txs'
// results; want are the codes the txs must end with.
func (c *zkChain) block(want []types.Code, txs ...[]byte) []TxResult {
	c.t.Helper()
	c.height++
	hash := sha256.Sum256([]byte(fmt.Sprint("block ", c.height)))
	when := time.Unix(1_700_000_000+c.height, 0)
	fin, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Txs: txs, Height: c.height, Hash: hash[:], Time: when})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		c.t.Fatal(err)
	}
	blk := &BlockData{Height: c.height, Hash: hash[:], Time: when, Txs: txs, Events: events(fin.Events)}
	for i, r := range fin.TxResults {
		if types.Code(r.Code) != want[i] {
			c.t.Fatalf("block %d tx %d: code %d (%s), want %d", c.height, i, r.Code, r.Log, want[i])
		}
		blk.Results = append(blk.Results, TxResult{Code: r.Code, Log: r.Log, Events: events(r.Events)})
	}
	if err := c.x.Apply(blk); err != nil {
		c.t.Fatal(err)
	}
	return blk.Results
}

func txHash(raw []byte) string { h := sha256.Sum256(raw); return hex.EncodeToString(h[:]) }

// tinyZK is a two-layer int8 model (8 → 5 → 3), its circuit for a batch
// of 2 set up single-party, its verifying key's bytes and a proof of two
// inferences.
func tinyZK(t *testing.T) ([]byte, *zkml.Proof) {
	t.Helper()
	w := func(n, k int) []int8 {
		v := make([]int8, n)
		for i := range v {
			v[i] = int8((i*k)%61 - 30)
		}
		return v
	}
	m := &zkml.Model{Layers: []zkml.Layer{
		{Kind: zkml.Dense, In: 8, Out: 5, M: 7, S: 8, W: w(40, 7), B: []int32{100, -50, 0, 30, -7}},
		{Kind: zkml.Dense, In: 5, Out: 3, W: w(15, 11), B: []int32{5, -5, 1}},
	}}
	cs, err := zkml.Compile(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := zkml.SetupSingleParty(cs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := zkml.Prove(cs, pk, m, [][]int8{{1, -2, 3, -4, 5, -6, 7, -8}, {100, 90, -80, 70, 0, -1, 2, 127}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := vk.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), p
}

// verifyMsg is the verify_zk_proof of proof p for model id.
func verifyMsg(t *testing.T, id uint64, p *zkml.Proof) *types.MsgVerifyZKProof {
	t.Helper()
	pb, err := p.ProofBytes()
	if err != nil {
		t.Fatal(err)
	}
	m := &types.MsgVerifyZKProof{ModelId: id, Proof: pb}
	for i, x := range p.Statement.Inputs {
		for _, v := range x {
			m.Inputs = append(m.Inputs, byte(v))
		}
		m.Logits = append(m.Logits, p.Statement.Logits[i]...)
		m.Classes = append(m.Classes, uint32(p.Statement.Classes[i]))
	}
	return m
}

// TestZKRoutes: on a real chain, a zk model is registered, a proof of it
// verified (and the same statement refused a second time), a provider
// slashed for a signed answer claiming another class, and a second model
// registered. The explorer lists the models newest first with the chain's
// commitment, key hash, shape, price and proof count and the index's fault
// sums; the model's page lists the proof and the fault as the chain recorded
// them; the verifying key it serves verifies the proof offline; the txs and
// the verdict read as what they are.
func TestZKRoutes(t *testing.T) {
	owner, prover, prov, reporter := testKey(t, 50), testKey(t, 51), testKey(t, 52), testKey(t, 53)
	c := newZKChain(t, owner, prover, prov, reporter)
	vk, proof := tinyZK(t)
	ok := []types.Code{types.CodeOK}
	ok2 := []types.Code{types.CodeOK, types.CodeOK}

	model := func(name string, com []byte) *types.MsgRegisterZKModel {
		return &types.MsgRegisterZKModel{Name: name, Commitment: com, VerifyingKey: vk, Batch: 2, InLen: 8, OutLen: 3, Price: 10}
	}
	h := sha256.Sum256([]byte("model"))
	c.block(ok2, c.tx(prov, &types.MsgBondProvider{Amount: 2 * c.params.MinProviderStake}),
		c.tx(prov, &types.MsgRegisterProvider{Info: &types.ProviderInfo{Endpoint: "http://127.0.0.1:1",
			Models: []*types.ModelOffer{{Hash: h[:], Name: "m", ContextLength: 512}}, Capabilities: []string{"chat"}}}))
	reg := c.tx(owner, model("tiny-mlp", proof.Statement.Commitment.FillBytes(make([]byte, 32))))
	c.block(ok, reg)
	regHeight := c.height

	good := verifyMsg(t, 1, proof)
	ver := c.tx(prover, good)
	c.block(ok, ver)
	verHeight := c.height
	// The same statement again: refused by the chain, so not a proof.
	c.block([]types.Code{types.CodeInvalid}, c.tx(prover, good))

	lie := proto.Clone(good).(*types.MsgVerifyZKProof)
	lie.Classes[0] = (lie.Classes[0] + 1) % 3
	sh := zk.StatementHash(1, lie)
	answer := zk.AnswerBytes("test", 1, sh, lie.Proof)
	rep := c.tx(reporter, &types.MsgReportZKFault{Provider: addrOf(prov), ModelId: 1, Inputs: lie.Inputs, Logits: lie.Logits, Classes: lie.Classes,
		Proof: lie.Proof, Signature: ed25519.Sign(prov, answer)})
	res := c.block(ok, rep)
	slashed, _ := strconv.ParseUint(res[0].Events[0].Attrs["slashed"], 10, 64)
	if want := 2 * c.params.MinProviderStake * c.params.SlashBps["zk/bad_proof"] / 10000; slashed != want || slashed == 0 {
		t.Fatalf("slashed %d, want %d", slashed, want)
	}
	reward := slashed * audit.ReporterShareBps / 10000
	repHeight := c.height
	c.block(ok, c.tx(owner, model("other", big.NewInt(12345).FillBytes(make([]byte, 32)))))

	srv := httptest.NewServer(NewServer(c.x, c.app).Handler())
	defer srv.Close()
	get := getter(t, srv.URL)

	var ms []ZKModel
	get("/explorer/api/zk/models", 200, &ms)
	if len(ms) != 2 || ms[0].ID != 2 || ms[0].Name != "other" || ms[0].Proofs != 0 || ms[0].Faults != 0 || ms[1].ID != 1 {
		t.Fatalf("zk models: %+v", ms)
	}
	m := ms[1]
	vkHash := sha256.Sum256(vk)
	if m.Name != "tiny-mlp" || m.Owner.String() != addrOf(owner).String() || m.Commitment.String() != hex.EncodeToString(proof.Statement.Commitment.FillBytes(make([]byte, 32))) ||
		m.VKHash.String() != hex.EncodeToString(vkHash[:]) || m.VKSize != len(vk) || m.Batch != 2 || m.InLen != 8 || m.OutLen != 3 || m.Price != 10 ||
		m.Height != regHeight || m.Proofs != 1 || m.Faults != 1 || m.Slashed != slashed || m.Tx != txHash(reg) {
		t.Fatalf("zk model 1: %+v", m)
	}
	get("/explorer/api/zk/models?limit=1", 200, &ms)
	if len(ms) != 1 || ms[0].ID != 2 {
		t.Fatalf("zk models, limit 1: %+v", ms)
	}

	var page ZKModelPage
	get("/explorer/api/zk/model/1", 200, &page)
	wantProof := ZKProof{ModelID: 1, Statement: hex.EncodeToString(zk.StatementHash(1, good)), Submitter: addrOf(prover).String(), Inferences: 2,
		Height: verHeight, Time: time.Unix(1_700_000_000+verHeight, 0).UTC().Format(time.RFC3339Nano), Tx: txHash(ver)}
	if !reflect.DeepEqual(page.Model, m) || page.VerifyingKeyURL != "/explorer/api/zk/model/1/verifying.key" || len(page.ProofList) != 1 || page.ProofList[0] != wantProof {
		t.Fatalf("zk model 1's page: %+v\nwant proof %+v", page, wantProof)
	}
	ah := sha256.Sum256(answer)
	wantFault := ZKFault{ModelID: 1, Provider: addrOf(prov).String(), Answer: hex.EncodeToString(ah[:]), Slashed: slashed, Reward: reward,
		Reporter: addrOf(reporter).String(), Height: repHeight, Time: time.Unix(1_700_000_000+repHeight, 0).UTC().Format(time.RFC3339Nano), Tx: txHash(rep)}
	if len(page.FaultList) != 1 || page.FaultList[0] != wantFault {
		t.Fatalf("zk model 1's faults: %+v\nwant %+v", page.FaultList, wantFault)
	}
	// The proof the explorer lists is the chain's record.
	var rec struct {
		Submitter types.Address `json:"submitter"`
		Height    int64         `json:"height"`
	}
	if found, err := query(c.app, "/zk/proof/1/"+wantProof.Statement, &rec); !found || err != nil || rec.Height != verHeight || rec.Submitter.String() != wantProof.Submitter {
		t.Fatalf("the chain's record of the listed statement: %+v %v %v", rec, found, err)
	}
	var other ZKModelPage
	if get("/explorer/api/zk/model/2", 200, &other); other.Model.ID != 2 || len(other.ProofList) != 0 || len(other.FaultList) != 0 {
		t.Fatalf("zk model 2's page: %+v", other)
	}

	// The verifying key as served: the registered bytes, whose sha256 is
	// the model's key hash, and which verify the proof offline.
	resp, err := http.Get(srv.URL + page.VerifyingKeyURL)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, vk) || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="zk-model-1-verifying.key"`) {
		t.Fatalf("verifying key: %d, %d bytes (want %d), headers %v", resp.StatusCode, len(served), len(vk), resp.Header)
	}
	if got := sha256.Sum256(served); hex.EncodeToString(got[:]) != m.VKHash.String() {
		t.Fatalf("served key's sha256 %x, vk_hash %s", got, m.VKHash)
	}
	key, err := zkml.ReadVerifyingKey(bytes.NewReader(served))
	if err != nil {
		t.Fatal(err)
	}
	if err := zkml.Verify(key, proof.Proof, &proof.Statement, 8, 3); err != nil {
		t.Fatalf("the served key does not verify the proof: %v", err)
	}

	for _, e := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/zk/model/9", 404, "zk model 9 does not exist"},
		{"/explorer/api/zk/model/9/verifying.key", 404, "zk model 9 does not exist"},
		{"/explorer/api/zk/model/x", 400, "id must be a non-negative number"},
		{"/explorer/api/zk/model/1?limit=0", 400, "limit must be"},
		{"/explorer/api/zk/models?limit=5000", 400, "limit must be"},
		{"/explorer/", 200, `href="#/zk"`},
		{"/explorer/assets/app.js", 200, "function viewZKModel("},
	} {
		if body := get(e.path, e.status, nil); !strings.Contains(body, e.want) {
			t.Errorf("GET %s: %.200q lacks %q", e.path, body, e.want)
		}
	}

	// The three messages on their tx pages.
	var tx Tx
	get("/explorer/api/tx/"+txHash(reg), 200, &tx)
	if tx.Msg != "register_zk_model" || tx.Fields["name"] != "tiny-mlp" || tx.Fields["batch"] != "2" || tx.Fields["price"] != "10" ||
		tx.Results["zk_model_id"] != "1" || tx.Results["vk_hash"] != m.VKHash.String() {
		t.Fatalf("register tx: %+v", tx)
	}
	get("/explorer/api/tx/"+txHash(ver), 200, &tx)
	if tx.Msg != "verify_zk_proof" || tx.Fields["model_id"] != "1" || tx.Fields["inferences"] != "2" || tx.Results["statement"] != wantProof.Statement {
		t.Fatalf("verify tx: %+v", tx)
	}
	get("/explorer/api/tx/"+txHash(rep), 200, &tx)
	if tx.Msg != "report_zk_fault" || tx.Fields["provider"] != wantFault.Provider || tx.Results["answer"] != wantFault.Answer ||
		tx.Results["slashed"] != fmt.Sprint(slashed) || tx.Results["reward"] != fmt.Sprint(reward) {
		t.Fatalf("report tx: %+v", tx)
	}
	// The slash is a verdict against the provider like any other.
	var vs []Verdict
	get("/explorer/api/verdicts", 200, &vs)
	if len(vs) != 1 || vs[0].Kind != "zk_bad_proof" || vs[0].ZKModel != 1 || vs[0].Target != wantFault.Provider || vs[0].Slashed != slashed ||
		vs[0].Reward != reward || vs[0].Reporter != wantFault.Reporter || vs[0].Tx != txHash(rep) || !vs[0].Applied {
		t.Fatalf("verdicts: %+v", vs)
	}
	ps, err := c.x.Provider(addrOf(prov))
	if err != nil || ps.Faults != 1 || ps.Slashed != slashed {
		t.Fatalf("provider stats: %+v %v", ps, err)
	}
	tot, err := c.x.Totals()
	if err != nil || tot.Faults != 1 || tot.Slashed != slashed {
		t.Fatalf("totals: %+v %v", tot, err)
	}
}
