package services

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/types"
)

// The slash fractions DefaultParams write are the ones the services declare,
// and they are today's numbers (10 % fabricated, 5 % refused, 10 % omitted;
// jobs: 10 % wrong step, 5 % abandoned; zk: 10 % for a bad proof).
func TestDefaultSlashBps(t *testing.T) {
	want := map[string]uint64{"inference/fabricated": 1000, "inference/refused": 500, "inference/omitted": 1000,
		"jobs/wrong_step": 1000, "jobs/abandoned": 500, "zk/bad_proof": 1000}
	got := Default().DefaultSlashBps()
	p := types.DefaultParams()
	for k, v := range want {
		if got[k] != v || p.SlashBps[k] != v {
			t.Errorf("%s: declared %d, params %d, want %d", k, got[k], p.SlashBps[k], v)
		}
	}
	if len(got) != len(want) || len(p.SlashBps) != len(want) {
		t.Fatalf("declared %v, params %v", got, p.SlashBps)
	}
	if err := Default().ValidateParams(p); err != nil {
		t.Fatal(err)
	}
}

func TestValidateParams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adjust func(map[string]uint64)
		want   string
	}{
		{"missing fault kind", func(m map[string]uint64) { delete(m, "inference/refused") }, `missing fraction for "inference/refused"`},
		{"unknown fault kind", func(m map[string]uint64) { m["inference/lazy"] = 1 }, `"inference/lazy" is not a fault kind`},
		{"unknown service", func(m map[string]uint64) { m["jobs/fabricated"] = 1 }, `"jobs/fabricated" is not a fault kind`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := types.DefaultParams()
			p.SlashBps = Default().DefaultSlashBps()
			tc.adjust(p.SlashBps)
			err := Default().ValidateParams(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	p := types.DefaultParams()
	p.SlashBps["inference/refused"] = 10001
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `"inference/refused" must be at most 10000`) {
		t.Fatalf("over 100 %%: %v", err)
	}
}

// A genesis written before services existed (flat slash_provider_*_bps)
// keeps its numbers; slash_bps, when present, wins.
func TestLegacySlashParams(t *testing.T) {
	legacy := `{"epoch_length":20,"slash_double_sign_bps":500,"slash_provider_fraud_bps":1200,"slash_provider_refusal_bps":600,"slash_provider_omit_bps":700}`
	var p types.Params
	if err := json.Unmarshal([]byte(legacy), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"inference/fabricated": 1200, "inference/refused": 600, "inference/omitted": 700}
	if len(p.SlashBps) != 3 {
		t.Fatalf("slash_bps %v", p.SlashBps)
	}
	for k, v := range want {
		if p.SlashBps[k] != v {
			t.Fatalf("%s = %d, want %d", k, p.SlashBps[k], v)
		}
	}
	if p.SlashDoubleSignBps != 500 || p.EpochLength != 20 {
		t.Fatalf("other params lost: %+v", p)
	}
	var q types.Params
	if err := json.Unmarshal([]byte(`{"slash_provider_fraud_bps":1200,"slash_bps":{"inference/fabricated":3}}`), &q); err != nil {
		t.Fatal(err)
	}
	if len(q.SlashBps) != 1 || q.SlashBps["inference/fabricated"] != 3 {
		t.Fatalf("slash_bps %v", q.SlashBps)
	}
	// Round trip: what the app stores decodes to the same params.
	bz, _ := json.Marshal(types.DefaultParams())
	var r types.Params
	if err := json.Unmarshal(bz, &r); err != nil || r.SlashBps["inference/refused"] != 500 || len(r.SlashBps) != 6 {
		t.Fatalf("round trip %v %v", r.SlashBps, err)
	}
}

func TestRegistryGet(t *testing.T) {
	for _, name := range []string{"", "inference"} {
		s, err := Default().Get(name)
		if err != nil || s.Name != Inference {
			t.Fatalf("Get(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := Default().Get("storage"); err == nil || !strings.Contains(err.Error(), `unknown service "storage"`) {
		t.Fatalf("unknown service: %v", err)
	}
	// Jobs keep their records on chain: their faults are applied by the
	// jobs module, never reported, and a record cannot be checked here.
	j := Default().MustGet(Jobs)
	if f, ok := j.Fault(types.FaultWrongStep); !ok || f.Name != "wrong_step" || f.Reported != ByModule || !j.OnChain {
		t.Fatalf("jobs wrong_step: %+v %v", f, ok)
	}
	if _, _, err := j.Record(RecordRef{}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "challenge_checkpoint") {
		t.Fatalf("jobs record: %v", err)
	}
	inf := Default().MustGet("")
	if f, ok := inf.Fault(types.FaultRefused); !ok || f.Name != "refused" || f.CarriesRecord {
		t.Fatalf("refused: %+v %v", f, ok)
	}
	if _, ok := inf.Fault(9); ok {
		t.Fatal("fault 9 exists")
	}
	if string(Key("")) != string(Key(Inference)) || string(Key("inference")) != "\x09inference" {
		t.Fatalf("key %q", Key(""))
	}
}

// The inference record rule: a signed receipt at its place refunds its
// client its amount; a receipt elsewhere or badly signed is refused.
func TestInferenceRecord(t *testing.T) {
	seed := sha256.Sum256([]byte("prov"))
	k := ed25519.NewKeyFromSeed(seed[:])
	pub := k.Public().(ed25519.PublicKey)
	prov := types.AddressFromPubKey(pub)
	client := types.AddressFromPubKey(ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey))
	bz, err := proto.Marshal(&types.Receipt{ChainId: "c", Provider: prov, Client: client, Epoch: 3, Index: 7, Amount: 4242})
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(k, append([]byte(types.ReceiptSignDomain), bz...))
	svc := InferenceService()
	ref := RecordRef{ChainID: "c", Provider: prov, Epoch: 3, Index: 7}
	leaf, refund, err := svc.Record(ref, pub, bz, sig)
	if err != nil {
		t.Fatal(err)
	}
	if leaf != types.ReceiptID(bz) || string(refund.Client) != string(client) || refund.Amount != 4242 {
		t.Fatalf("leaf %x refund %+v", leaf, refund)
	}
	for _, tc := range []struct {
		name string
		ref  RecordRef
		sig  []byte
		code types.Code
	}{
		{"other index", RecordRef{ChainID: "c", Provider: prov, Epoch: 3, Index: 8}, sig, types.CodeInvalid},
		{"other chain", RecordRef{ChainID: "d", Provider: prov, Epoch: 3, Index: 7}, sig, types.CodeInvalid},
		{"bad signature", ref, append([]byte{sig[0] ^ 1}, sig[1:]...), types.CodeBadSignature},
	} {
		_, _, err := svc.Record(tc.ref, pub, bz, tc.sig)
		if types.CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want code %s", tc.name, err, tc.code)
		}
	}
	if _, _, err := svc.Record(ref, pub, []byte{0xff}, sig); types.CodeOf(err) != types.CodeMalformed {
		t.Errorf("garbage: %v", err)
	}
}
