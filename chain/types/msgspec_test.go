package types

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// The default table names every message exactly as the switches it
// replaced did, and each oneof member maps back to its own name.
func TestMsgTableNames(t *testing.T) {
	msgs := map[string]proto.Message{
		"send": &MsgSend{}, "bond_validator": &MsgBondValidator{}, "unbond_validator": &MsgUnbondValidator{},
		"unjail_validator": &MsgUnjailValidator{}, "bond_provider": &MsgBondProvider{}, "unbond_provider": &MsgUnbondProvider{},
		"register_provider": &MsgRegisterProvider{}, "update_provider": &MsgUpdateProvider{}, "deregister_provider": &MsgDeregisterProvider{},
		"open_channel": &MsgOpenChannel{}, "top_up_channel": &MsgTopUpChannel{}, "redeem_voucher": &MsgRedeemVoucher{},
		"close_channel": &MsgCloseChannel{}, "commit_epoch": &MsgCommitEpoch{}, "report_fault": &MsgReportFault{},
		"report_omission": &MsgReportOmission{}, "answer_omission": &MsgAnswerOmission{}, "submit_scores": &MsgSubmitScores{},
		"dispute_receipt": &MsgDisputeReceipt{},
	}
	if len(MsgNames) != len(msgs) {
		t.Fatalf("MsgNames has %d names, want %d: %v", len(MsgNames), len(msgs), MsgNames)
	}
	for _, name := range MsgNames {
		m, ok := msgs[name]
		if !ok {
			t.Fatalf("unexpected message name %q", name)
		}
		body := &TxBody{ChainId: "c"}
		_ = SetMsg(body, m) // empty messages mostly fail validation; the oneof is set regardless
		if body.Msg == nil || MsgName(body) != name {
			t.Fatalf("%T: set %v, named %q, want %q", m, body.Msg, MsgName(body), name)
		}
	}
	if got := MsgName(&TxBody{}); got != "unknown" {
		t.Fatalf("empty body named %q", got)
	}
}

func TestMsgRegistryRefuses(t *testing.T) {
	tip := DeclareModuleMsg("tip", func() *Voucher { return &Voucher{} },
		func(v *Voucher) error {
			if v.ChannelId == 0 {
				return errNoChannel
			}
			return nil
		}, nil)
	if _, err := Msgs().With(Msgs().specs[0]); err == nil || !strings.Contains(err.Error(), `"send" declared twice`) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := NewMsgRegistry(MsgSpec{Name: "x"}); err == nil || !strings.Contains(err.Error(), "not declared with DeclareMsg") {
		t.Fatalf("hand-made spec: %v", err)
	}
	reg, err := Msgs().With(tip)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		msg  isTxBody_Msg
		want string
	}{
		// A module_msg may not name a message that has its own oneof member:
		// one message has one encoding.
		{"core name as type_url", &TxBody_ModuleMsg{ModuleMsg: &ModuleMsg{TypeUrl: "send", Value: nil}}, `unknown module message "send"`},
		{"unknown type_url", &TxBody_ModuleMsg{ModuleMsg: &ModuleMsg{TypeUrl: "nope"}}, `unknown module message "nope"`},
		{"empty module_msg", &TxBody_ModuleMsg{}, `unknown module message ""`},
		{"malformed value", &TxBody_ModuleMsg{ModuleMsg: &ModuleMsg{TypeUrl: "tip", Value: []byte{0xff}}}, "tip: malformed message"},
		{"module validator", &TxBody_ModuleMsg{ModuleMsg: &ModuleMsg{TypeUrl: "tip"}}, errNoChannel.Error()},
		{"no message", nil, "tx body has no message"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := reg.Validate(&TxBody{ChainId: "c", Msg: c.msg})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// The default registry does not know the module's message at all.
	body := &TxBody{ChainId: "c"}
	if err := reg.Set(body, &Voucher{ChannelId: 7}); err != nil || reg.Name(body) != "tip" || MsgName(body) != "unknown" {
		t.Fatalf("set tip: %v, named %q / %q", err, reg.Name(body), MsgName(body))
	}
	if err := ValidateMsg(body); err == nil || !strings.Contains(err.Error(), `unknown module message "tip"`) {
		t.Fatalf("default registry on a tip: %v", err)
	}
	if err := SetMsg(body, "not a message"); err == nil || !strings.Contains(err.Error(), "unsupported message type string") {
		t.Fatalf("SetMsg(string): %v", err)
	}
}

var errNoChannel = errorString("tip: channel id must be set")

type errorString string

func (e errorString) Error() string { return string(e) }

// The gas of DefaultParams comes from the declarations: every chain message
// declares a positive default, and the values are the chain's (pinned: a
// change of gas changes fees, hence outcomes).
func TestDeclaredGas(t *testing.T) {
	g := DefaultParams().Gas
	// The chain's own messages, and the job, data and storage markets' and
	// the model registry's (chain/jobs, chain/data, chain/storage and
	// chain/models declare those; a chain/app test checks their
	// declarations against the *DefaultGas tables).
	if len(g) != len(MsgNames)+len(JobsDefaultGas)+len(DataDefaultGas)+len(StorageDefaultGas)+len(ModelsDefaultGas)+len(ZKDefaultGas) {
		t.Fatalf("default gas for %d messages, %d declared + %d jobs + %d data + %d storage + %d models + %d zk", len(g), len(MsgNames),
			len(JobsDefaultGas), len(DataDefaultGas), len(StorageDefaultGas), len(ModelsDefaultGas), len(ZKDefaultGas))
	}
	for _, name := range MsgNames {
		if g[name] == 0 {
			t.Errorf("%s declares no gas", name)
		}
	}
	for name, want := range map[string]uint64{"send": 100, "register_provider": 1000, "commit_epoch": 300, "report_fault": 500, "top_up_channel": 200} {
		if g[name] != want {
			t.Errorf("gas of %s = %d, want %d", name, g[name], want)
		}
	}
}
