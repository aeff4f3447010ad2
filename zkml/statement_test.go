package zkml

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/zk"
)

// TestStatementJSON: the commitment travels as 0x-hex (exact for any
// field element), round-trips, and a number or garbage is refused.
func TestStatementJSON(t *testing.T) {
	c, _ := new(big.Int).SetString("21888242871839275222246405745257275088548364400416034343698204186575808495616", 10)
	st := Statement{Commitment: c, Inputs: [][]int8{{-128, 127}}, Logits: [][]int64{{5, -7}}, Classes: []int{0}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"commitment":"0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000"`) {
		t.Fatalf("json: %s", b)
	}
	var back Statement
	if err := json.Unmarshal(b, &back); err != nil || back.Commitment.Cmp(c) != 0 || back.Inputs[0][0] != -128 || back.Logits[0][1] != -7 || back.Classes[0] != 0 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for _, bad := range []string{`{"commitment":12}`, `{"commitment":"12"}`, `{"commitment":"0xzz"}`, `{"commitment":"0x-1"}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil || !strings.Contains(err.Error(), "statement") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestChainWitness: the public witness the chain builds without the
// circuit (chain/zk.PublicWitness) is the one the circuit derives, value
// for value, negative inputs and logits included.
func TestChainWitness(t *testing.T) {
	s := tinyCircuit(t)
	_, traces, err := Assign(s.m, s.inputs)
	if err != nil {
		t.Fatal(err)
	}
	com, err := s.m.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	st := Statement{Commitment: com, Inputs: s.inputs}
	for _, tr := range traces {
		st.Logits = append(st.Logits, tr.Logits)
		st.Classes = append(st.Classes, tr.Class)
	}
	want, err := st.PublicWitness(s.m.InLen(), s.m.OutLen())
	if err != nil {
		t.Fatal(err)
	}
	got, err := zk.PublicWitness(st.Commitment, st.Inputs, st.Logits, st.Classes, s.m.InLen(), s.m.OutLen())
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := want.MarshalBinary()
	gb, _ := got.MarshalBinary()
	if !bytes.Equal(wb, gb) {
		t.Fatalf("the chain's public witness (%d bytes) differs from the circuit's (%d bytes)", len(gb), len(wb))
	}
	neg := false
	for _, l := range st.Logits {
		for _, v := range l {
			neg = neg || v < 0
		}
	}
	if !neg {
		t.Fatal("no negative logit: the test would not check the field's wrap-around")
	}
}
