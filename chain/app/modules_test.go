package app

import (
	"github.com/agoranet/agora/chain/data"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/models"
	"github.com/agoranet/agora/chain/services"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/storage"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/chain/zk"
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
		{"a query answered twice", append(DefaultModules(), Module{Name: "x", Queries: map[string]QueryHandler{"account": func(store.KV, QueryReq) (any, error) { return nil, nil }}}), `query "account" answered by "bank" and "x"`},
		{"a query named like the app's own", append(DefaultModules(), Module{Name: "x", Queries: map[string]QueryHandler{"params": func(store.KV, QueryReq) (any, error) { return nil, nil }}}), `query "params" answered by "app" and "x"`},
		{"a service declared twice", append(DefaultModules(), Module{Name: "x", Services: []*services.Service{services.InferenceService()}}), `service "inference" declared twice (module "x")`},
		{"a nil query", append(DefaultModules(), Module{Name: "x", Queries: map[string]QueryHandler{"q": nil}}), `module "x": nil query "q"`},
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
	// The chain's own messages, then the job, data and storage markets' and
	// the model registry's module messages.
	var jobNames []string
	for _, s := range append(append(append(append(jobs.Msgs(), data.Msgs()...), storage.Msgs()...), models.Msgs()...), zk.Msgs()...) {
		jobNames = append(jobNames, s.Name)
	}
	all := append(append([]string(nil), types.MsgNames...), jobNames...)
	if got, want := strings.Join(tbl.msgs.Names(), ","), strings.Join(all, ","); got != want || len(tbl.handlers) != len(all) {
		t.Fatalf("default table: %s with %d handlers, want %s", got, len(tbl.handlers), want)
	}
}

// DefaultParams (chain/types, which cannot see the modules) give every
// module message of the default table its declared gas, and every service
// fault its declared slash fraction, so `agora init`'s genesis starts.
func TestDefaultParamsCoverModules(t *testing.T) {
	p := types.DefaultParams()
	for _, m := range DefaultModules() {
		for _, s := range m.Msgs {
			if p.Gas[s.Name] != s.DefaultGas || s.DefaultGas == 0 {
				t.Errorf("%s: params gas %d, declared %d", s.Name, p.Gas[s.Name], s.DefaultGas)
			}
		}
	}
	tbl, err := buildMsgTable(DefaultModules())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tbl.services.DefaultSlashBps() {
		if p.SlashBps[k] != v {
			t.Errorf("%s: params %d, declared %d", k, p.SlashBps[k], v)
		}
	}
	if err := tbl.services.ValidateParams(p); err != nil {
		t.Fatal(err)
	}
}

// A module's queries are answered through the table: a module added to a
// test app answers its own path, with its arguments; shapes it does not
// answer are unknown paths.
func TestModuleQuery(t *testing.T) {
	echo := Module{Name: "echo", Queries: map[string]QueryHandler{
		"echo": func(kv store.KV, q QueryReq) (any, error) {
			if len(q.Args) != 1 {
				return nil, ErrUnknownPath
			}
			n, err := q.Num(0)
			if err != nil {
				return nil, err
			}
			return map[string]any{"n": n, "chain": q.ChainID}, nil
		},
	}}
	h := newHarnessWithModules(t, map[string]uint64{"a": 1_000_000}, append(DefaultModules(), echo))
	v, _, err := h.app.QueryJSON("/echo/42", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m := v.(map[string]any); m["n"] != uint64(42) || m["chain"] != testChain {
		t.Fatalf("echo answered %v", v)
	}
	if _, _, err := h.app.QueryJSON("/echo/x", 0); err == nil || !strings.Contains(err.Error(), `"x" is not a number`) {
		t.Fatalf("bad argument: %v", err)
	}
	if _, _, err := h.app.QueryJSON("/echo/1/2", 0); err == nil || !strings.Contains(err.Error(), `unknown query path "/echo/1/2"`) {
		t.Fatalf("unknown shape: %v", err)
	}
	plain := newHarness(t, map[string]uint64{"a": 1_000_000})
	if _, _, err := plain.app.QueryJSON("/echo/42", 0); err == nil || !strings.Contains(err.Error(), "unknown query path") {
		t.Fatalf("an app without the module answered: %v", err)
	}
}
