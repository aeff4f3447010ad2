package app

import (
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
)

// A module table must give every declared message exactly one handler.
func TestModuleTableRefuses(t *testing.T) {
	noop := func(store.KV, Ctx, *types.DecodedTx) ([][2]string, error) { return nil, nil }
	extra := types.DeclareModuleMsg("extra", func() *types.Voucher { return &types.Voucher{} },
		func(*types.Voucher) error { return nil }, nil)
	without := func(drop string) []Module {
		var out []Module
		for _, m := range DefaultModules() {
			if m.Name != drop {
				out = append(out, m)
			}
		}
		return out
	}
	cases := []struct {
		name string
		mods []Module
		want string
	}{
		{"a message without a handler", without("bank"), `message "send" has no handler`},
		{"two handlers for one message", append(DefaultModules(), Module{Name: "bank2", Handlers: map[string]Handler{"send": noop}}), `message "send" handled by modules "bank" and "bank2"`},
		{"a handler without a message", append(DefaultModules(), Module{Name: "x", Handlers: map[string]Handler{"ghost": noop}}), "handlers for undeclared messages [ghost]"},
		{"a declared message without a handler", append(DefaultModules(), Module{Name: "x", Msgs: []types.MsgSpec{extra}}), `message "extra" has no handler`},
		{"a nil handler", append(DefaultModules(), Module{Name: "x", Msgs: []types.MsgSpec{extra}, Handlers: map[string]Handler{"extra": nil}}), `module "x": nil handler for "extra"`},
		{"a name declared twice", append(DefaultModules(), Module{Name: "x", Msgs: []types.MsgSpec{extra, extra}, Handlers: map[string]Handler{"extra": noop}}), `"extra" declared twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree, err := store.OpenMemTree()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewWithModules(tree, nil, nil, c.mods); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	tbl, err := buildMsgTable(DefaultModules())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tbl.msgs.Names(), ","), strings.Join(types.MsgNames, ","); got != want || len(tbl.handlers) != len(types.MsgNames) {
		t.Fatalf("default table: %s with %d handlers, want %s", got, len(tbl.handlers), want)
	}
}
