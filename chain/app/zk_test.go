package app

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/audit"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
	"github.com/agoranet/agora/zkml"
)

// zkFixture is a two-layer int8 model (8 → 5 → 3), its circuit for a
// batch of 2 set up single-party, and a proof of two inferences.
type zkFixture struct {
	m     *zkml.Model
	vk    []byte
	proof *zkml.Proof
}

func newZKFixture(t *testing.T) *zkFixture {
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
	return &zkFixture{m: m, vk: b.Bytes(), proof: p}
}

func (f *zkFixture) register(t *testing.T) *types.MsgRegisterZKModel {
	c := f.proof.Statement.Commitment.FillBytes(make([]byte, 32))
	return &types.MsgRegisterZKModel{Name: "tiny-mlp", Commitment: c, VerifyingKey: f.vk, Batch: 2, InLen: 8, OutLen: 3, Price: 10}
}

func (f *zkFixture) verify(t *testing.T, model uint64) *types.MsgVerifyZKProof {
	pb, err := f.proof.ProofBytes()
	if err != nil {
		t.Fatal(err)
	}
	m := &types.MsgVerifyZKProof{ModelId: model, Proof: pb}
	st := f.proof.Statement
	for i := range st.Inputs {
		for _, x := range st.Inputs[i] {
			m.Inputs = append(m.Inputs, byte(x))
		}
		m.Logits = append(m.Logits, st.Logits[i]...)
		m.Classes = append(m.Classes, uint32(st.Classes[i]))
	}
	return m
}

// TestZKRegisterAndVerify: a zk model is registered by its commitment and
// verifying key (checked against its declared shape); a true proof of
// its statement verifies in the tx and is recorded, once; a proof of
// other inputs, logits or classes, a proof under another model's key, a
// malformed proof or key: each refused with its reason, changing nothing.
func TestZKRegisterAndVerify(t *testing.T) {
	f := newZKFixture(t)
	j := newJobsHarness(t, nil)
	j.txBytes = 8000 // a verifying key is a few KB
	reg := f.register(t)
	clone := func(m *types.MsgRegisterZKModel, edit func(*types.MsgRegisterZKModel)) *types.MsgRegisterZKModel {
		c := proto.Clone(m).(*types.MsgRegisterZKModel)
		edit(c)
		return c
	}
	fieldMax := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)).FillBytes(make([]byte, 32))
	for _, c := range []struct {
		name string
		msg  *types.MsgRegisterZKModel
		want string
	}{
		{"another batch", clone(reg, func(m *types.MsgRegisterZKModel) { m.Batch = 3 }), "another circuit or batch size"},
		{"another input length", clone(reg, func(m *types.MsgRegisterZKModel) { m.InLen = 9 }), "another circuit or batch size"},
		{"a truncated key", clone(reg, func(m *types.MsgRegisterZKModel) { m.VerifyingKey = m.VerifyingKey[:len(m.VerifyingKey)/2] }), "verifying key"},
		{"no key", clone(reg, func(m *types.MsgRegisterZKModel) { m.VerifyingKey = nil }), "verifying key of 0 bytes"},
		{"a short commitment", clone(reg, func(m *types.MsgRegisterZKModel) { m.Commitment = m.Commitment[:31] }), "commitment of 31 bytes"},
		{"a commitment off the field", clone(reg, func(m *types.MsgRegisterZKModel) { m.Commitment = fieldMax }), "not a BN254 scalar"},
		{"no name", clone(reg, func(m *types.MsgRegisterZKModel) { m.Name = "" }), "name of 0 bytes"},
	} {
		t.Log(c.name)
		j.bad("owner", c.msg, types.CodeMalformed, c.want)
	}
	j.ok("owner", reg)
	v, _, err := j.app.QueryJSON(api.ZKModelPath(1), 0)
	if err != nil {
		t.Fatal(err)
	}
	zm := v.(api.ZKModelView)
	kh, _ := zk.KeyHash(f.vk)
	if zm.Name != "tiny-mlp" || zm.Owner.String() != j.addr("owner").String() || !bytes.Equal(zm.VKHash, kh[:]) || zm.Batch != 2 || zm.Proofs != 0 {
		t.Fatalf("registered: %+v", zm)
	}

	// A second model: same circuit shape, other weights' commitment.
	other := clone(reg, func(m *types.MsgRegisterZKModel) {
		m.Name, m.Commitment = "other", big.NewInt(12345).FillBytes(make([]byte, 32))
	})
	j.ok("p1", other)

	good := f.verify(t, 1)
	edit := func(e func(*types.MsgVerifyZKProof)) *types.MsgVerifyZKProof {
		c := proto.Clone(good).(*types.MsgVerifyZKProof)
		e(c)
		return c
	}
	for _, c := range []struct {
		name string
		msg  *types.MsgVerifyZKProof
		code types.Code
		want string
	}{
		{"other inputs", edit(func(m *types.MsgVerifyZKProof) { m.Inputs[0]++ }), types.CodeInvalid, "proof does not verify"},
		{"another logit", edit(func(m *types.MsgVerifyZKProof) { m.Logits[4]++ }), types.CodeInvalid, "proof does not verify"},
		{"another class", edit(func(m *types.MsgVerifyZKProof) { m.Classes[1] = (m.Classes[1] + 1) % 3 }), types.CodeInvalid, "proof does not verify"},
		{"another model's commitment", edit(func(m *types.MsgVerifyZKProof) { m.ModelId = 2 }), types.CodeInvalid, "proof does not verify"},
		{"a short statement", edit(func(m *types.MsgVerifyZKProof) { m.Logits = m.Logits[:5] }), types.CodeInvalid, "got 16 inputs, 5 logits, 2 classes"},
		{"no such model", edit(func(m *types.MsgVerifyZKProof) { m.ModelId = 9 }), types.CodeNotFound, "zk model 9 does not exist"},
		{"a flipped proof", edit(func(m *types.MsgVerifyZKProof) { m.Proof[10] ^= 1 }), 0, ""},
		{"a truncated proof", edit(func(m *types.MsgVerifyZKProof) { m.Proof = m.Proof[:100] }), types.CodeMalformed, "verify_zk_proof"},
	} {
		t.Log(c.name)
		if c.code == 0 { // a flipped bit may break the point's encoding (malformed) or only the pairing (invalid)
			code, log := j.send("p2", c.msg)
			if code == types.CodeOK {
				t.Fatalf("%s: accepted", c.name)
			}
			t.Logf("  refused: %d %s", code, log)
			continue
		}
		j.bad("p2", c.msg, c.code, c.want)
	}
	res := j.okEvents("p2", good)
	sh := zk.StatementHash(1, good)
	if res["statement"] != hex.EncodeToString(sh) {
		t.Fatalf("events %v, want statement %x", res, sh)
	}
	v, _, err = j.app.QueryJSON(api.ZKProofPath(1, sh), 0)
	if err != nil {
		t.Fatal(err)
	}
	if pv := v.(api.ZKProofView); pv.ModelID != 1 || pv.Submitter.String() != j.addr("p2").String() || pv.Height == 0 {
		t.Fatalf("proof record %+v", pv)
	}
	if v, _, _ := j.app.QueryJSON(api.ZKModelPath(1), 0); v.(api.ZKModelView).Proofs != 1 {
		t.Fatalf("model after a proof: %+v", v)
	}
	j.bad("p2", good, types.CodeInvalid, fmt.Sprintf("statement %x of zk model 1 was already proven", sh))
}

// okEvents runs msg from label alone in a block, requires success and
// returns its "agora" event's attributes.
func (j *jobsH) okEvents(label string, msg proto.Message) map[string]string {
	j.t.Helper()
	tx, _ := j.sign(label, msg)
	res := j.block(tx)
	if res[0].Code != 0 {
		j.t.Fatalf("%s %T: code %d %s", label, msg, res[0].Code, res[0].Log)
	}
	out := map[string]string{}
	for _, e := range res[0].Events {
		if e.Type == "agora" {
			for _, a := range e.Attributes {
				out[a.Key] = a.Value
			}
		}
	}
	return out
}

// TestZKFaultReport: a provider that signed an answer whose proof does not
// verify (another class claimed, or a malformed proof) is slashed
// slash_bps["zk/bad_proof"] of its bond when anyone reports it, the
// reporter gets its share, once per answer; a true answer, a signature
// that is not the provider's, or an unknown model is refused and changes
// nothing.
func TestZKFaultReport(t *testing.T) {
	f := newZKFixture(t)
	j := newJobsHarness(t, nil)
	j.txBytes = 8000
	j.ok("owner", f.register(t))
	good := f.verify(t, 1)
	answer := func(signer string, m *types.MsgVerifyZKProof) *types.MsgReportZKFault {
		sh := zk.StatementHash(1, m)
		sig := ed25519.Sign(key(signer), zk.AnswerBytes(testChain, 1, sh, m.Proof))
		return &types.MsgReportZKFault{Provider: j.addr("p1"), ModelId: 1, Inputs: m.Inputs, Logits: m.Logits, Classes: m.Classes, Proof: m.Proof, Signature: sig}
	}
	lie := proto.Clone(good).(*types.MsgVerifyZKProof)
	lie.Classes[0] = (lie.Classes[0] + 1) % 3
	junk := proto.Clone(good).(*types.MsgVerifyZKProof)
	junk.Proof = []byte("not a proof")

	j.bad("outsider", answer("p1", good), types.CodeInvalid, "the answer's proof verifies: no fault")
	j.bad("outsider", answer("p2", lie), types.CodeUnauthorized, "is not provider")
	other := answer("p1", lie)
	other.ModelId = 7
	j.bad("outsider", other, types.CodeNotFound, "zk model 7 does not exist")

	bond0, rep0, fee0 := j.bond("p1"), j.bal("outsider"), j.fees["outsider"]
	res := j.okEvents("outsider", answer("p1", lie))
	want := bond0 * j.params.SlashBps["zk/bad_proof"] / 10000
	if got := bond0 - j.bond("p1"); got != want || res["slashed"] != fmt.Sprint(want) || res["fault"] != "bad_proof" {
		t.Fatalf("slashed %d (events %v), want %d", got, res, want)
	}
	share := want * audit.ReporterShareBps / 10000
	if got := j.bal("outsider") + (j.fees["outsider"] - fee0) - rep0; got != share {
		t.Fatalf("the reporter gained %d, its share is %d", got, share)
	}
	// The event names the answer (as the fault's record keys it) and the
	// reporter's reward, for indexers.
	ah := sha256.Sum256(zk.AnswerBytes(testChain, 1, zk.StatementHash(1, lie), lie.Proof))
	if res["answer"] != hex.EncodeToString(ah[:]) || res["reward"] != fmt.Sprint(share) || faultAt(t, j, ah[:]) == nil {
		t.Fatalf("fault event %v: want answer %x, reward %d, and a fault recorded under that answer", res, ah, share)
	}
	j.bad("outsider", answer("p1", lie), types.CodeInvalid, "was already slashed")
	// A malformed proof the provider signed is a bad answer too.
	j.okEvents("p2", answer("p1", junk))
	v, _, _ := j.app.QueryJSON(api.ProviderPath(j.addr("p1")), 0)
	if pv := v.(api.ProviderView); pv.Faults != 2 {
		t.Fatalf("provider after two bad answers: %+v", pv)
	}
}

// faultAt reads the fault record of p1's answer ah from committed state.
func faultAt(t *testing.T, j *jobsH, ah []byte) *types.ZKFaultRecord {
	t.Helper()
	snap, err := j.app.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	return zk.GetFault(snap, j.addr("p1"), ah)
}
