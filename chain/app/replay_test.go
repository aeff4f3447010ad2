package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/epochs"
	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/stake"
	"github.com/agoranet/agora/chain/store"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/receipt"
)

// The replay test is the safety net for refactors of the state machine: a
// block sequence recorded once (testdata/replay/blocks.json) is replayed
// into a fresh app, and what came out of it (balances, nonces, bonds,
// providers' faults and reputations, channels, epochs, commitments, open
// challenges and disputes, the verdicts' payouts, supply) must equal what
// was recorded (testdata/replay/outcomes.json). The outcomes are gathered
// through the query views, never raw store keys: a change may move state
// around, but must not change what a block sequence does. A view that grows
// a field passes (the field is logged); a view that renames one fails until
// gather maps the new name back onto the recorded key.
//
// Re-record (only for a change meant to change outcomes, and say so in the
// commit):
//
//	go test ./chain/app -run TestReplayRecorded -record
var recordReplay = flag.Bool("record", false, "re-record chain/app/testdata/replay (TestReplayRecorded)")

const replayDir = "testdata/replay"

// replayLabels are the scenario's accounts (keys derived from the labels),
// with their genesis balances.
var replayLabels = map[string]uint64{
	"operator": 10_000_000_000, "v2": 10_000_000_000, "v3": 10_000_000_000,
	"p1": 10_000_000_000, "p2": 10_000_000_000, "p3": 10_000_000_000,
	"client": 10_000_000_000, "client2": 10_000_000_000,
	"alice": 5_000_000, "bob": 1_000, "carol": 0,
}

// replayParams are the scenario's params: short epochs so that three
// epochs commit, are audited and settle within 60 blocks.
func replayParams() types.Params {
	p := types.DefaultParams()
	p.EpochLength, p.CommitWindow, p.BeaconWindow, p.OpeningWindow = 10, 3, 4, 5
	p.UnbondingPeriod = 15
	return p
}

// replayGenesis builds the scenario's chain at height 0 (no block yet).
func replayGenesis(t *testing.T) *harness {
	t.Helper()
	tree, err := store.OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(tree, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := replayParams()
	g := types.Genesis{Params: p}
	for label, bal := range replayLabels {
		if bal > 0 {
			g.Accounts = append(g.Accounts, types.GenesisAccount{Address: addrOf(key(label)), Balance: bal})
		}
	}
	sortAccounts(g.Accounts)
	g.Validators = []types.GenesisValidator{{Operator: addrOf(key("operator")), ConsPubKey: types.HexBytes(key("cons").Public().(ed25519.PublicKey)), Bonded: p.MinValidatorStake}}
	bz, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChain, AppStateBytes: bz, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, app: a, params: p, nonces: map[string]uint64{}}
}

// replayBlock is one recorded block: what FinalizeBlock is given, and the
// codes its txs got.
type replayBlock struct {
	Height      int64               `json:"height"`
	Time        int64               `json:"time"` // unix seconds
	Hash        string              `json:"hash"` // hex
	Txs         [][]byte            `json:"txs,omitempty"`
	Misbehavior []replayMisbehavior `json:"misbehavior,omitempty"`
	Codes       []uint32            `json:"codes,omitempty"`
}

type replayMisbehavior struct {
	Type        int32  `json:"type"`
	ConsAddress string `json:"cons_address"` // hex
	Height      int64  `json:"height"`
	Power       int64  `json:"power"`
}

type replayFile struct {
	ChainID string        `json:"chain_id"`
	Blocks  []replayBlock `json:"blocks"`
}

func (b replayBlock) request(t *testing.T) *abci.FinalizeBlockRequest {
	t.Helper()
	hash, err := hex.DecodeString(b.Hash)
	if err != nil {
		t.Fatalf("block %d: hash: %v", b.Height, err)
	}
	req := &abci.FinalizeBlockRequest{Txs: b.Txs, Height: b.Height, Hash: hash, Time: time.Unix(b.Time, 0)}
	for _, m := range b.Misbehavior {
		addr, err := hex.DecodeString(m.ConsAddress)
		if err != nil {
			t.Fatalf("block %d: misbehavior address: %v", b.Height, err)
		}
		req.Misbehavior = append(req.Misbehavior, abci.Misbehavior{Type: abci.MisbehaviorType(m.Type), Validator: abci.Validator{Address: addr, Power: m.Power}, Height: m.Height})
	}
	return req
}

// runBlock finalizes and commits b on h's app, checks the invariants, and
// returns the response.
func runBlock(t *testing.T, h *harness, b replayBlock) *abci.FinalizeBlockResponse {
	t.Helper()
	res, err := h.app.FinalizeBlock(context.Background(), b.request(t))
	if err != nil {
		t.Fatalf("block %d: %v", b.Height, err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		t.Fatalf("commit %d: %v", b.Height, err)
	}
	snap, err := h.app.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckInvariants(snap); err != nil {
		t.Fatalf("after block %d: %v", b.Height, err)
	}
	h.height = b.Height
	return res
}

// verdictEvents are the events whose attributes are outcomes: what a
// verdict slashed, refunded and paid, what an epoch emitted and paid.
var verdictTxMsgs = map[string]bool{"report_fault": true, "report_omission": true, "answer_omission": true, "dispute_receipt": true}

// verdictBlockEvents name, per event type, the attributes that identify
// one event among its block's, so that the outcomes do not depend on the
// order a block emits them in. A reward is identified by its one
// attribute that is neither epoch nor amount (role = recipient).
var verdictBlockEvents = map[string][]string{
	"slash":            {"validator"},
	"omission_fault":   {"epoch", "provider", "index"},
	"dispute_rejected": {"epoch", "provider", "index"},
	"epoch_settled":    {"epoch"},
	"reward":           nil,
}

// collectEvents adds the verdict events of a block's response to out, keyed
// by height, position and attribute.
func collectEvents(height int64, res *abci.FinalizeBlockResponse, out map[string]string) {
	for i, r := range res.TxResults {
		if r.Code != 0 {
			continue
		}
		for _, ev := range r.Events {
			if v, _ := eventAttr([]abci.Event{ev}, ev.Type, "msg"); !verdictTxMsgs[v] {
				continue
			}
			for _, a := range ev.Attributes {
				out[fmt.Sprintf("event/h%03d/tx%d.%s", height, i, a.Key)] = a.Value
			}
		}
	}
	for _, ev := range res.Events {
		ids, ok := verdictBlockEvents[ev.Type]
		if !ok {
			continue
		}
		id := []string{fmt.Sprintf("event/h%03d/%s", height, ev.Type)}
		for _, a := range ev.Attributes {
			if slices.Contains(ids, a.Key) || ev.Type == "reward" && a.Key != "epoch" && a.Key != "amount" {
				id = append(id, a.Key+"="+a.Value)
			}
		}
		for _, a := range ev.Attributes {
			out[strings.Join(id, "/")+"."+a.Key] = a.Value
		}
	}
}

// gather reads the outcomes of the chain through the JSON query views,
// flattened into "what/which.field" → value, with accounts named by label.
func gather(t *testing.T, a *App, events map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range events {
		out[k] = v
	}
	labels := make([]string, 0, len(replayLabels))
	for l := range replayLabels {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	name := map[string]string{}
	for _, l := range labels {
		name[addrOf(key(l)).String()] = l
	}
	q := func(path string) any {
		v, _, err := a.QueryJSON(path, 0)
		if err != nil {
			t.Fatalf("query %s: %v", path, err)
		}
		bz, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(bz))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	list := func(path string) []map[string]any {
		var ms []map[string]any
		for _, x := range q(path).([]any) {
			ms = append(ms, x.(map[string]any))
		}
		return ms
	}
	who := func(v any) string {
		s := fmt.Sprint(v)
		if l, ok := name[s]; ok {
			return l
		}
		return s
	}

	sup := q(api.SupplyPath).(map[string]any)
	out["supply.total"] = fmt.Sprint(sup["total"])
	for _, m := range sup["modules"].([]any) { // module balances: under account/module:<name>
		mod := m.(map[string]any)
		name[fmt.Sprint(mod["address"])] = "module:" + fmt.Sprint(mod["name"])
	}
	for _, l := range labels {
		ad := addrOf(key(l))
		flattenInto(out, "account/"+l, q(api.AccountPath(ad)))
		for _, u := range list(api.UnbondingsPath(ad)) {
			flattenInto(out, fmt.Sprintf("unbonding/%s/%v", l, u["id"]), u)
		}
		for _, c := range list(api.ClientChannelsPath(ad)) {
			flattenInto(out, fmt.Sprintf("channel/%v", c["id"]), c)
		}
	}
	for _, m := range sup["modules"].([]any) {
		ad, err := types.ParseAddress(fmt.Sprint(m.(map[string]any)["address"]))
		if err != nil {
			t.Fatal(err)
		}
		flattenInto(out, "account/"+who(ad.String()), q(api.AccountPath(ad)))
	}
	for _, v := range list(api.ValidatorsPath) {
		flattenInto(out, "validator/"+who(v["operator"]), v)
	}
	for _, p := range list(api.ProvidersPath) {
		flattenInto(out, "provider/"+who(p["address"]), p)
	}
	for n := uint64(0); ; n++ {
		if _, _, err := a.QueryJSON(api.EpochPath(n), 0); err != nil {
			break
		}
		flattenInto(out, fmt.Sprintf("epoch/%d", n), q(api.EpochPath(n)))
		for _, c := range list(api.CommitmentsPath(n)) {
			flattenInto(out, fmt.Sprintf("commitment/%d/%s", n, who(c["provider"])), c)
		}
	}
	for _, c := range list(api.ChallengesPath) {
		flattenInto(out, fmt.Sprintf("challenge/%v/%s/%v", c["epoch"], who(c["provider"]), c["index"]), c)
	}
	for _, d := range list(api.DisputesPath) {
		flattenInto(out, fmt.Sprintf("dispute/%v/%s/%v", d["epoch"], who(d["provider"]), d["index"]), d)
	}
	// Name addresses in values and in event keys, so a diff reads
	// "client", not hex.
	named := make(map[string]string, len(out))
	for k, v := range out {
		if l, ok := name[v]; ok {
			v = l
		}
		if strings.HasPrefix(k, "event/") {
			for ad, l := range name {
				k = strings.ReplaceAll(k, "="+ad+"/", "="+l+"/")
				k = strings.ReplaceAll(k, "="+ad+".", "="+l+".")
			}
		}
		named[k] = v
	}
	return named
}

// flattenInto writes v's leaves under prefix: objects by field, lists by
// position.
func flattenInto(out map[string]string, prefix string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flattenInto(out, prefix+"."+k, e)
		}
	case []any:
		out[prefix+".len"] = fmt.Sprint(len(x))
		for i, e := range x {
			flattenInto(out, fmt.Sprintf("%s[%d]", prefix, i), e)
		}
	case nil:
		out[prefix] = "null"
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

// entity is the part of an outcome key before its field: "provider/p1"
// of "provider/p1.bonded".
func entity(k string) string {
	e, _, _ := strings.Cut(k, ".")
	return e
}

// diffOutcomes lists the differing keys, sorted, at most max of them. A
// recorded outcome must be there with its value; a new field of a recorded
// entity (a view that grew a field) is tolerated and returned in added; a
// new entity (another commitment, account, event...) is a difference.
func diffOutcomes(want, got map[string]string, max int) (lines []string, total int, added []string) {
	keys := map[string]bool{}
	entities := map[string]bool{}
	for k := range want {
		keys[k] = true
		entities[entity(k)] = true
	}
	for k := range got {
		if _, ok := want[k]; !ok && entities[entity(k)] {
			added = append(added, k)
			continue
		}
		keys[k] = true
	}
	sort.Strings(added)
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		w, wok := want[k]
		g, gok := got[k]
		if wok && gok && w == g {
			continue
		}
		total++
		if len(lines) >= max {
			continue
		}
		switch {
		case !gok:
			lines = append(lines, fmt.Sprintf("  %s: recorded %s, now missing", k, w))
		case !wok:
			lines = append(lines, fmt.Sprintf("  %s: not recorded, now %s", k, g))
		default:
			lines = append(lines, fmt.Sprintf("  %s: recorded %s, now %s", k, w, g))
		}
	}
	return lines, total, added
}

// TestReplayRecorded replays the recorded blocks into a fresh chain and
// checks every tx's code and every outcome against the recording.
func TestReplayRecorded(t *testing.T) {
	if *recordReplay {
		recordScenario(t)
	}
	var rf replayFile
	readJSON(t, filepath.Join(replayDir, "blocks.json"), &rf)
	var want map[string]string
	readJSON(t, filepath.Join(replayDir, "outcomes.json"), &want)
	if rf.ChainID != testChain || len(rf.Blocks) == 0 || len(want) == 0 {
		t.Fatalf("recording is empty or for chain %q", rf.ChainID)
	}

	h := replayGenesis(t)
	events := map[string]string{}
	var codeDiffs []string
	for _, b := range rf.Blocks {
		res := runBlock(t, h, b)
		for i, r := range res.TxResults {
			if i >= len(b.Codes) || r.Code != b.Codes[i] {
				codeDiffs = append(codeDiffs, fmt.Sprintf("  block %d tx %d: recorded code %s, now %s (%s)", b.Height, i, codeAt(b.Codes, i), types.Code(r.Code), r.Log))
			}
		}
		if len(res.TxResults) != len(b.Codes) {
			codeDiffs = append(codeDiffs, fmt.Sprintf("  block %d: %d results, %d recorded", b.Height, len(res.TxResults), len(b.Codes)))
		}
		collectEvents(b.Height, res, events)
	}
	if len(codeDiffs) > 0 {
		t.Errorf("%d tx results differ from the recording:\n%s", len(codeDiffs), strings.Join(codeDiffs[:min(len(codeDiffs), 20)], "\n"))
	}
	got := gather(t, h.app, events)
	lines, total, added := diffOutcomes(want, got, 25)
	if len(added) > 0 {
		t.Logf("%d new fields of recorded entities (not compared): %s", len(added), strings.Join(added, ", "))
	}
	if total > 0 {
		t.Errorf("%d of %d outcomes differ from the recording (first %d, sorted by key):\n%s\n"+
			"Re-record (go test ./chain/app -run TestReplayRecorded -record) only if the change is meant to change outcomes, and say so in the commit.",
			total, len(want), len(lines), strings.Join(lines, "\n"))
	}
}

func codeAt(codes []uint32, i int) string {
	if i < len(codes) {
		return types.Code(codes[i]).String()
	}
	return "none"
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	bz, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the recording: %v (record it with -record)", err)
	}
	if err := json.Unmarshal(bz, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	bz, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(bz, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recorder drives the scenario block by block and keeps what it fed the app.
type recorder struct {
	t      *testing.T
	h      *harness
	blocks []replayBlock
	events map[string]string
}

func (r *recorder) snap() store.KV {
	s, err := r.h.app.Snapshot(0)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// next runs the next block with txs and misbehaviour, and returns its response.
func (r *recorder) next(mb []replayMisbehavior, txs ...[]byte) *abci.FinalizeBlockResponse {
	r.t.Helper()
	height := r.h.height + 1
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], uint64(height))
	hash := sha256.Sum256(append([]byte("agora replay block "), hb[:]...))
	b := replayBlock{Height: height, Time: 1_700_000_000 + 5*height, Hash: hex.EncodeToString(hash[:]), Txs: txs, Misbehavior: mb}
	res := runBlock(r.t, r.h, b)
	for _, tr := range res.TxResults {
		b.Codes = append(b.Codes, tr.Code)
	}
	r.blocks = append(r.blocks, b)
	collectEvents(height, res, r.events)
	return res
}

// ok runs a block whose txs must all succeed.
func (r *recorder) ok(txs ...[]byte) *abci.FinalizeBlockResponse {
	r.t.Helper()
	res := r.next(nil, txs...)
	for i, tr := range res.TxResults {
		if tr.Code != 0 {
			r.t.Fatalf("scenario block %d tx %d: code %s %s", r.h.height, i, types.Code(tr.Code), tr.Log)
		}
	}
	return res
}

// fails runs a block of one tx that must fail with code.
func (r *recorder) fails(code types.Code, tx []byte) {
	r.t.Helper()
	res := r.next(nil, tx)
	if got := types.Code(res.TxResults[0].Code); got != code {
		r.t.Fatalf("scenario block %d: code %s (%s), want %s", r.h.height, got, res.TxResults[0].Log, code)
	}
}

// until runs empty blocks until the chain is at height.
func (r *recorder) until(height int64) {
	r.t.Helper()
	for r.h.height < height {
		r.ok()
	}
}

// signedReceipts signs n receipts of epoch e by provider who for client on
// channel, amounts base+i, in batches of at most 16.
func signedReceipts(t *testing.T, who, client string, channel, e uint64, n int, base uint64) []*receipt.Signed {
	t.Helper()
	var out []*receipt.Signed
	for start := 0; start < n; start += 16 {
		var rs []*types.Receipt
		for i := start; i < min(n, start+16); i++ {
			rs = append(rs, &types.Receipt{ChainId: testChain, Provider: addrOf(key(who)), ChannelId: channel, Client: addrOf(key(client)), Epoch: e, Index: uint64(i), Amount: base + uint64(i)})
		}
		srs, err := receipt.SignBatch(key(who), rs)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, srs...)
	}
	return out
}

func idsOf(rs []*receipt.Signed) [][32]byte {
	var ids [][32]byte
	for _, r := range rs {
		ids = append(ids, r.ID())
	}
	return ids
}

func proofMsg(ids [][32]byte, i int) (left []bool, sibs [][]byte) {
	pr, err := merkle.Prove(ids, i)
	if err != nil {
		panic(err)
	}
	for _, s := range pr.Siblings {
		sibs = append(sibs, append([]byte(nil), s[:]...))
	}
	return pr.Left, sibs
}

// recordScenario runs the one rich scenario and writes the recording.
func recordScenario(t *testing.T) {
	h := replayGenesis(t)
	r := &recorder{t: t, h: h, events: map[string]string{}}
	p := h.params
	a := func(l string) types.Address { return addrOf(key(l)) }
	p1, p2, p3 := a("p1"), a("p2"), a("p3")
	bigFee := func(name string) uint64 { return p.MinFee(name, 2000) }
	report := func(label string, m *types.MsgReportFault) []byte {
		return h.txAny(label, &types.TxBody{Fee: bigFee("report_fault"), Msg: &types.TxBody_ReportFault{ReportFault: m}})
	}
	fabricated := func(prov types.Address, e uint64, rs []*receipt.Signed, i uint64) *types.MsgReportFault {
		left, sibs := proofMsg(idsOf(rs), int(i))
		return &types.MsgReportFault{Epoch: e, Provider: prov, Index: i, Fault: types.FaultFabricated, Receipt: rs[i].Bytes, ReceiptSignature: rs[i].Signature, ProofLeft: left, Proof: sibs}
	}
	omission := func(sr *receipt.Signed) []byte {
		return h.tx("client", &types.MsgReportOmission{Receipt: sr.Bytes, ReceiptSignature: sr.Signature})
	}
	answer := func(label string, e uint64, ids [][32]byte, i int) []byte {
		left, sibs := proofMsg(ids, i)
		return h.txAny(label, &types.TxBody{Fee: bigFee("answer_omission"), Msg: &types.TxBody_AnswerOmission{AnswerOmission: &types.MsgAnswerOmission{Epoch: e, Index: uint64(i), ProofLeft: left, Proof: sibs}}})
	}
	// scores are given for the providers in order p1, p2, p3; 0 leaves one out.
	scores := func(e uint64, bps ...uint32) *types.MsgSubmitScores {
		var ps []*types.ProviderScore
		for i, s := range bps {
			if s > 0 {
				ps = append(ps, &types.ProviderScore{Provider: []types.Address{p1, p2, p3}[i], ScoreBps: s})
			}
		}
		sort.Slice(ps, func(i, j int) bool { return string(ps[i].Provider) < string(ps[j].Provider) })
		return &types.MsgSubmitScores{Epoch: e, Scores: ps}
	}
	sampledOf := func(e uint64, prov types.Address) map[uint64]bool {
		s := r.snap()
		ep, cm := epochs.Get(s, e), epochs.GetCommitment(s, e, "inference", prov)
		out := map[uint64]bool{}
		for _, i := range sampling.Sample(ep.Seed, prov, cm.RecordCount, p.AuditFloorBps, p.AuditCeilingBps, cm.ReputationBps) {
			out[i] = true
		}
		return out
	}

	// Epoch 0 (heights 1-10): transfers, bonds, registrations, channels, vouchers.
	r.ok(
		h.tx("alice", &types.MsgSend{To: a("bob"), Amount: 1_234_567}),
		h.tx("alice", &types.MsgSend{To: a("carol"), Amount: 500_000}),
		h.tx("v2", &types.MsgBondValidator{ConsPubKey: key("v2-cons").Public().(ed25519.PublicKey), Amount: 3 * p.MinValidatorStake}),
		h.tx("v3", &types.MsgBondValidator{ConsPubKey: key("v3-cons").Public().(ed25519.PublicKey), Amount: 2 * p.MinValidatorStake}),
	)
	r.fails(types.CodeInsufficientFunds, h.tx("bob", &types.MsgSend{To: a("alice"), Amount: 2_000_000}))
	r.ok(
		h.tx("p1", &types.MsgBondProvider{Amount: 3 * p.MinProviderStake}),
		h.tx("p1", &types.MsgRegisterProvider{Info: info()}),
		h.tx("p2", &types.MsgBondProvider{Amount: 2 * p.MinProviderStake}),
		h.tx("p2", &types.MsgRegisterProvider{Info: info()}),
		h.tx("p3", &types.MsgBondProvider{Amount: p.MinProviderStake}),
		h.tx("p3", &types.MsgRegisterProvider{Info: info()}),
	)
	r.ok(
		h.tx("client", &types.MsgOpenChannel{Provider: p1, Deposit: 2_000_000, ExpiryHeight: 500}),
		h.tx("client", &types.MsgOpenChannel{Provider: p2, Deposit: 1_000_000, ExpiryHeight: 500}),
		h.tx("client2", &types.MsgOpenChannel{Provider: p1, Deposit: 500_000, ExpiryHeight: 12}),
	)
	r.ok(
		h.tx("client", &types.MsgTopUpChannel{ChannelId: 1, Amount: 750_000}),
		h.tx("p1", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 1, 40_000)}),
		h.tx("p2", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 2, 10_000)}),
	)
	r.ok(
		h.tx("p1", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client2"), testChain, 3, 7_000)}),
		h.tx("p1", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 1, 95_000)}),
		h.tx("bob", &types.MsgSend{To: a("alice"), Amount: 34_567}),
	)
	r.until(10)

	// The receipts behind epoch 0's commitments: p1 signs 20 honestly; p2
	// signs 6, commits 5, and puts another receipt in place of index 2.
	p1e0 := signedReceipts(t, "p1", "client", 1, 0, 20, 300)
	p2e0 := signedReceipts(t, "p2", "client", 2, 0, 6, 100)
	p2e0ids := idsOf(p2e0[:5])
	p2e0ids[2] = signedReceipts(t, "p2", "client", 2, 0, 3, 1)[2].ID() // bills 3 where the client was sent 102
	root1, root2 := merkle.Root(idsOf(p1e0)), merkle.Root(p2e0ids)
	r.ok(
		h.tx("p1", &types.MsgCommitEpoch{Epoch: 0, Root: root1[:], RecordCount: 20, TotalBilled: 20*300 + 190}),
		h.tx("p2", &types.MsgCommitEpoch{Epoch: 0, Root: root2[:], RecordCount: 5, TotalBilled: 100 + 101 + 3 + 103 + 104}),
		h.tx("p3", &types.MsgCommitEpoch{Epoch: 0, Root: make([]byte, 32), RecordCount: 8, TotalBilled: 2_400}),
	)
	r.until(13)                                             // epoch 0's commit deadline
	r.ok(omission(p2e0[1]), omission(p2e0[2]))              // two challenges on committed indices
	r.fails(types.CodeInvalid, answer("p2", 0, p2e0ids, 2)) // another receipt there: no proof
	r.ok(answer("p2", 0, p2e0ids, 1))                       // the honest index is answered
	r.ok(h.tx("client2", &types.MsgCloseChannel{ChannelId: 3}))
	r.until(18) // epoch 0's seed
	s0 := sampledOf(0, p1)
	var sampled, unsampled []uint64
	for i := uint64(0); i < 20; i++ {
		if s0[i] {
			sampled = append(sampled, i)
		} else {
			unsampled = append(unsampled, i)
		}
	}
	if len(sampled) == 0 || len(unsampled) < 2 {
		t.Fatalf("epoch 0 sampled %v of p1's 20", sampled)
	}
	u, w := unsampled[0], unsampled[1]
	dispute := func(i uint64) []byte {
		return h.tx("client", &types.MsgDisputeReceipt{Receipt: p1e0[i].Bytes, ReceiptSignature: p1e0[i].Signature})
	}
	// Two validators must agree on a fault: the first vote is recorded, the
	// second applies it (slash, refund, reporters' share, burn).
	r.ok(report("operator", fabricated(p1, 0, p1e0, sampled[0])), dispute(u), dispute(w))
	r.ok(report("v2", fabricated(p1, 0, p1e0, sampled[0])), report("operator", fabricated(p1, 0, p1e0, u)))
	r.ok(report("v3", fabricated(p1, 0, p1e0, u))) // confirms the dispute on u; w is never confirmed
	r.ok(
		h.tx("operator", scores(0, 10000, 10000, 10000)),
		h.tx("v2", scores(0, 9000, 4000, 7000)),
		h.tx("v3", scores(0, 8000, 2000, 9000)),
	)
	r.until(20)

	// Epoch 1: p2 commits 3 receipts and leaves a 4th out (an omission
	// proven at once); p1 and p3 are clean and share the providers' reward.
	p2e1 := signedReceipts(t, "p2", "client", 2, 1, 4, 500)
	root2 = merkle.Root(idsOf(p2e1[:3]))
	r.ok(
		h.tx("p1", &types.MsgCommitEpoch{Epoch: 1, Root: make([]byte, 32), RecordCount: 30, TotalBilled: 9_000}),
		h.tx("p2", &types.MsgCommitEpoch{Epoch: 1, Root: root2[:], RecordCount: 3, TotalBilled: 1503}),
		h.tx("p3", &types.MsgCommitEpoch{Epoch: 1, Root: make([]byte, 32), RecordCount: 9, TotalBilled: 2_700}),
		h.tx("v3", &types.MsgUnbondValidator{Amount: p.MinValidatorStake / 2}),
	)
	r.until(24)
	r.ok(omission(p2e1[3]))
	r.ok(h.tx("p1", &types.MsgUnbondProvider{Amount: p.MinProviderStake / 2}))
	r.until(28) // epoch 1's seed; epoch 0 settles
	r.ok(h.tx("v2", scores(1, 9500, 9500, 9000)), h.tx("operator", scores(1, 9000, 7000, 8000)))
	r.until(30)

	// Epoch 2: p2 and p3 commit cleanly; p1 refuses to open a sampled
	// receipt (its third fault: jailed); v3 double-signs and is slashed
	// and jailed.
	r.ok(
		h.tx("p1", &types.MsgCommitEpoch{Epoch: 2, Root: make([]byte, 32), RecordCount: 40, TotalBilled: 12_000}),
		h.tx("p2", &types.MsgCommitEpoch{Epoch: 2, Root: make([]byte, 32), RecordCount: 12, TotalBilled: 4_800}),
		h.tx("p3", &types.MsgCommitEpoch{Epoch: 2, Root: make([]byte, 32), RecordCount: 10, TotalBilled: 3_000}),
	)
	v3cons := stake.ConsAddress(key("v3-cons").Public().(ed25519.PublicKey))
	r.next([]replayMisbehavior{{Type: int32(abci.MISBEHAVIOR_TYPE_DUPLICATE_VOTE), ConsAddress: hex.EncodeToString(v3cons), Height: r.h.height, Power: 1}})
	r.ok(h.tx("client", &types.MsgTopUpChannel{ChannelId: 2, Amount: 250_000}), h.tx("p2", &types.MsgRedeemVoucher{Voucher: types.SignVoucher(key("client"), testChain, 2, 60_000)}))
	r.until(38) // epoch 2's seed; epoch 1 settles
	var refusedAt uint64
	for i := range sampledOf(2, p1) {
		refusedAt = max(refusedAt, i)
	}
	refused := &types.MsgReportFault{Epoch: 2, Provider: p1, Index: refusedAt, Fault: types.FaultRefused}
	r.ok(report("v2", refused), h.tx("operator", scores(2, 5000, 9000, 9000)))
	r.ok(report("operator", refused), h.tx("v2", scores(2, 6000, 8000, 10000)))
	r.until(52) // epoch 2 settles at 48; the unbondings complete

	// What the scenario is meant to show, so a recording that missed it is refused.
	got := gather(t, h.app, r.events)
	for k, want := range map[string]string{
		"provider/p1.faults": "3", "provider/p1.jailed": "true",
		"provider/p2.faults":  "2",
		"validator/v3.jailed": "true",
		"epoch/0.settled":     "true", "epoch/1.settled": "true", "epoch/2.settled": "true",
		"channel/3.closed":      "true",
		"account/carol.balance": "500000",
		"provider/p3.faults":    "0", "provider/p3.reputation_bps": "3000",
	} {
		if got[k] != want {
			t.Fatalf("scenario: %s = %q, want %q", k, got[k], want)
		}
	}
	for _, k := range []string{"commitment/1/p1.reward", "commitment/1/p3.reward", "commitment/2/p2.reward", "commitment/2/p3.reward"} {
		if got[k] == "" || got[k] == "0" {
			t.Fatalf("scenario: %s = %q, want a reward", k, got[k])
		}
	}
	for _, kind := range []string{"omission_fault", "dispute_rejected", "slash", "epoch_settled", "reward"} {
		found := false
		for k := range got {
			found = found || strings.Contains(k, "/"+kind+"/")
		}
		if !found {
			t.Fatalf("scenario: no %s event", kind)
		}
	}
	if n := len(unbondingsOf(got)); n != 0 {
		t.Fatalf("scenario: %d unbondings still pending at the end", n)
	}
	writeJSON(t, filepath.Join(replayDir, "blocks.json"), replayFile{ChainID: testChain, Blocks: r.blocks})
	writeJSON(t, filepath.Join(replayDir, "outcomes.json"), got)
	t.Logf("recorded %d blocks, %d outcomes", len(r.blocks), len(got))
}

func unbondingsOf(out map[string]string) []string {
	var ks []string
	for k := range out {
		if strings.HasPrefix(k, "unbonding/") {
			ks = append(ks, k)
		}
	}
	return ks
}

// TestReplayDiff: how recorded and replayed outcomes are compared.
func TestReplayDiff(t *testing.T) {
	want := map[string]string{"provider/p1.bonded": "10", "provider/p1.faults": "1", "supply.total": "99"}
	cases := []struct {
		name  string
		got   map[string]string
		total int
		added int
		line  string
	}{
		{"equal", map[string]string{"provider/p1.bonded": "10", "provider/p1.faults": "1", "supply.total": "99"}, 0, 0, ""},
		{"a value changed", map[string]string{"provider/p1.bonded": "9", "provider/p1.faults": "1", "supply.total": "99"}, 1, 0, "provider/p1.bonded: recorded 10, now 9"},
		{"a field gone", map[string]string{"provider/p1.faults": "1", "supply.total": "99"}, 1, 0, "provider/p1.bonded: recorded 10, now missing"},
		{"a view grew a field", map[string]string{"provider/p1.bonded": "10", "provider/p1.faults": "1", "provider/p1.service": "inference", "supply.total": "99"}, 0, 1, ""},
		{"a new entity", map[string]string{"provider/p1.bonded": "10", "provider/p1.faults": "1", "provider/p2.bonded": "5", "supply.total": "99"}, 1, 0, "provider/p2.bonded: not recorded, now 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, total, added := diffOutcomes(want, c.got, 10)
			if total != c.total || len(added) != c.added {
				t.Fatalf("total %d, added %v; want %d and %d", total, added, c.total, c.added)
			}
			if c.line != "" && (len(lines) != 1 || strings.TrimSpace(lines[0]) != c.line) {
				t.Fatalf("lines %q, want %q", lines, c.line)
			}
		})
	}
}
