// Package explorer indexes the chain's history (blocks, transactions,
// per-epoch work, per-provider earnings and verdicts) and serves it, with the
// current state the node already answers, as a JSON API and an embedded web
// UI that works offline.
//
// The index is derived data: it is built from the node's block store and
// block results, block by block, and can be deleted and rebuilt at any time.
// Each block is applied in one Pebble batch together with the height it
// brings the index to, so a crash never leaves a half-indexed block.
package explorer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/services"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/internal/kvlog"
)

// Key layout (heights, epochs and ids big-endian so keys sort numerically):
//
//	m/height                      -> last indexed height (8 bytes)
//	m/totals                      -> Totals
//	m/pruned                      -> highest height whose detail was pruned (8 bytes; see retention.go)
//	b/<height>                    -> Block
//	t/<txhash>                    -> Tx
//	a/<addr>/<height>/<index>     -> txhash (txs that touch an account)
//	e/<epoch>                     -> EpochStats
//	p/<addr>                      -> ProviderStats
//	pc/<addr>/<epoch>             -> Commitment (a provider's commitments)
//	f/<height>/<index>            -> Verdict (fault reports and slashes)
//	ft/<target>/<height>/<index>  -> the same verdict, by the provider or validator concerned
//	fe/<epoch>/<height>/<index>   -> the same verdict, by the epoch of a provider fault
//	c/<channel>                   -> Channel (who opened it, when)
//	s/<epoch>/<validator>         -> ValidatorScores
//	zm/, zp/, zf/                 -> the zk registry's models, proofs, faults (zk.go)
var (
	keyHeight  = []byte("m/height")
	keyTotals  = []byte("m/totals")
	keyVersion = []byte("m/version")
)

// indexVersion changes when the key layout does; an index written with
// another layout is wiped and rebuilt from the block store at open.
// Version 3 added Tx.Accounts, which pruning needs to find a tx's a/ keys;
// version 4 the zk registry's records (zm/, zp/, zf/).
const indexVersion = "4"

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func key(prefix string, parts ...[]byte) []byte {
	k := []byte(prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// Block is one indexed block.
type Block struct {
	Height   int64    `json:"height"`
	Hash     string   `json:"hash"`
	Time     string   `json:"time"`
	Proposer string   `json:"proposer"` // consensus address, hex
	Txs      int      `json:"txs"`
	Failed   int      `json:"failed"`
	Fees     uint64   `json:"fees"`
	TxHashes []string `json:"tx_hashes"`
	Events   []Event  `json:"events,omitempty"` // block-level events (epoch_end, slash)
	Epoch    uint64   `json:"epoch"`
}

// Event is an ABCI event flattened for display.
type Event struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs"`
}

// Tx is one indexed transaction.
type Tx struct {
	Hash    string            `json:"hash"`
	Height  int64             `json:"height"`
	Index   int               `json:"index"`
	Time    string            `json:"time"`
	Msg     string            `json:"msg"`
	Signer  string            `json:"signer,omitempty"`
	Nonce   uint64            `json:"nonce"`
	Fee     uint64            `json:"fee"` // charged (0 when refused before the fee)
	Code    uint32            `json:"code"`
	Log     string            `json:"log,omitempty"`
	Fields  map[string]string `json:"fields"` // the message's fields, for display
	Results map[string]string `json:"results,omitempty"`
	// Accounts are the accounts the tx touches (its a/ keys), so pruning
	// can delete them without decoding the tx again.
	Accounts []string `json:"accounts,omitempty"`
}

// OK reports whether the tx succeeded.
func (t *Tx) OK() bool { return t.Code == 0 }

// EpochStats is the work and activity of one epoch. Requests and billed
// amounts come from the commitments for the epoch (made after it ends);
// blocks, txs and fees from the blocks inside it.
type EpochStats struct {
	Epoch       uint64 `json:"epoch"`
	Blocks      int    `json:"blocks"`
	Txs         int    `json:"txs"`
	Fees        uint64 `json:"fees"`
	Commitments int    `json:"commitments"`
	Requests    uint64 `json:"requests"`
	Tokens      uint64 `json:"tokens"` // prompt + completion, as the providers reported them
	Billed      uint64 `json:"billed"`
	Paid        uint64 `json:"paid"` // vouchers redeemed during the epoch
	Faults      int    `json:"faults"`
	Slashed     uint64 `json:"slashed"`
	// Settlement (once the epoch's verdict window closed).
	Settled          bool   `json:"settled"`
	Emission         uint64 `json:"emission"`
	ProviderRewards  uint64 `json:"provider_rewards"`
	ValidatorRewards uint64 `json:"validator_rewards"`
	FirstTime        string `json:"first_time,omitempty"`
	LastTime         string `json:"last_time,omitempty"`
}

// ProviderStats is a provider's history summed over the chain.
type ProviderStats struct {
	Address     string `json:"address"`
	Commitments int    `json:"commitments"`
	Requests    uint64 `json:"requests"`
	Tokens      uint64 `json:"tokens"`
	Billed      uint64 `json:"billed"`
	Earned      uint64 `json:"earned"`  // vouchers redeemed
	Rewards     uint64 `json:"rewards"` // emission and fee rewards for verified work
	LastEpoch   uint64 `json:"last_epoch"`
	Committed   bool   `json:"committed"` // has committed at least once
	Faults      int    `json:"faults"`
	Slashed     uint64 `json:"slashed"`
	Refunded    uint64 `json:"refunded"` // paid back to clients from its bond
}

// Commitment is a provider's epoch commitment as indexed.
type Commitment struct {
	Epoch    uint64 `json:"epoch"`
	Provider string `json:"provider"`
	Root     string `json:"root"`
	Requests uint64 `json:"requests"`
	Tokens   uint64 `json:"tokens"`
	Billed   uint64 `json:"billed"`
	Height   int64  `json:"height"`
	Tx       string `json:"tx"`
}

// Verdict is a fault report (accepted on chain) or a consensus slash.
type Verdict struct {
	Height   int64  `json:"height"`
	Time     string `json:"time"`
	Kind     string `json:"kind"` // fabricated_output, missing_opening, double_sign, ...
	Epoch    uint64 `json:"epoch,omitempty"`
	Provider string `json:"provider,omitempty"`
	Target   string `json:"target"` // the provider or validator concerned
	Reporter string `json:"reporter,omitempty"`
	Index    uint64 `json:"index,omitempty"`
	ZKModel  uint64 `json:"zk_model,omitempty"` // a zk_bad_proof's model
	Applied  bool   `json:"applied"`            // the confirming vote: the slash happened
	Votes    uint64 `json:"votes,omitempty"`
	Slashed  uint64 `json:"slashed"`
	Refund   uint64 `json:"refund"`
	Reward   uint64 `json:"reward"`
	Tx       string `json:"tx,omitempty"`
}

// ValidatorScores is a validator's audit-based quality scores for an epoch.
type ValidatorScores struct {
	Epoch     uint64  `json:"epoch"`
	Validator string  `json:"validator"`
	Height    int64   `json:"height"`
	Tx        string  `json:"tx"`
	Scores    []Score `json:"scores"`
}

// Score is one provider's score in basis points.
type Score struct {
	Provider string `json:"provider"`
	ScoreBps uint32 `json:"score_bps"`
}

// Channel is a payment channel as opened on chain.
type Channel struct {
	ID       uint64 `json:"id"`
	Client   string `json:"client"`
	Provider string `json:"provider"`
	Deposit  uint64 `json:"deposit"`
	Height   int64  `json:"height"`
	Tx       string `json:"tx"`
}

// Totals are chain-wide sums.
type Totals struct {
	Blocks   int64  `json:"blocks"`
	Txs      uint64 `json:"txs"`
	Failed   uint64 `json:"failed"`
	Fees     uint64 `json:"fees"`
	Requests uint64 `json:"requests"`
	Tokens   uint64 `json:"tokens"`
	Billed   uint64 `json:"billed"`
	Paid     uint64 `json:"paid"`
	Faults   uint64 `json:"faults"`
	Slashed  uint64 `json:"slashed"`
	Channels uint64 `json:"channels"`
	Emitted  uint64 `json:"emitted"`
	Rewards  uint64 `json:"rewards"` // to providers and validators
}

// Index is the explorer's store.
type Index struct {
	db          *pebble.DB
	epochLength int64
	keep        atomic.Int64 // blocks whose detail is kept (0: all); see SetKeepBlocks
	// msgs decodes, names and describes txs: the chain's own messages
	// unless SetMsgs gives the registry of a chain with more modules.
	msgs *types.MsgRegistry
}

// SetMsgs makes the index decode and describe txs with r (the registry of
// a chain whose modules declare messages beyond types.Msgs). Call it
// before the first Apply.
func (x *Index) SetMsgs(r *types.MsgRegistry) { x.msgs = r }

// OpenIndex opens (or creates) the index in dir. epochLength is the chain's
// blocks per epoch (from its params).
func OpenIndex(dir string, epochLength int64) (*Index, error) {
	if epochLength <= 0 {
		return nil, fmt.Errorf("explorer index: epoch length must be positive, got %d", epochLength)
	}
	db, err := kvlog.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open explorer index %s: %w", dir, err)
	}
	v, closer, err := db.Get(keyVersion)
	if err == nil {
		same := string(v) == indexVersion
		closer.Close()
		if same {
			return &Index{db: db, epochLength: epochLength, msgs: types.Msgs()}, nil
		}
	}
	// New, or written with another layout: start from block 1.
	if err := db.DeleteRange([]byte{0}, []byte{0xff}, pebble.Sync); err != nil {
		db.Close()
		return nil, fmt.Errorf("reset explorer index %s: %w", dir, err)
	}
	if err := db.Set(keyVersion, []byte(indexVersion), pebble.Sync); err != nil {
		db.Close()
		return nil, err
	}
	return &Index{db: db, epochLength: epochLength, msgs: types.Msgs()}, nil
}

// Close closes the store.
func (x *Index) Close() error { return x.db.Close() }

// Height is the last indexed height (0 before the first block).
func (x *Index) Height() int64 {
	v, closer, err := x.db.Get(keyHeight)
	if err != nil {
		return 0
	}
	defer closer.Close()
	return int64(binary.BigEndian.Uint64(v))
}

func (x *Index) get(k []byte, out any) (bool, error) {
	v, closer, err := x.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, json.Unmarshal(v, out)
}

// BlockData is what the index needs from one committed block.
type BlockData struct {
	Height   int64
	Hash     []byte
	Time     time.Time
	Proposer []byte
	Txs      [][]byte
	Results  []TxResult
	Events   []Event // FinalizeBlock's block-level events
}

// TxResult is a tx's execution result.
type TxResult struct {
	Code   uint32
	Log    string
	Events []Event
}

// batch accumulates one block's writes, with read-your-writes for the
// aggregates it updates.
type batch struct {
	x       *Index
	b       *pebble.Batch
	pending map[string]any
}

func (bt *batch) load(k []byte, out any) error {
	if v, ok := bt.pending[string(k)]; ok {
		bz, _ := json.Marshal(v)
		return json.Unmarshal(bz, out)
	}
	_, err := bt.x.get(k, out)
	return err
}

func (bt *batch) put(k []byte, v any) {
	bt.pending[string(k)] = v
}

func (bt *batch) putRaw(k, v []byte) error { return bt.b.Set(k, v, nil) }

// Apply indexes block d, which must be the block after the last indexed one.
func (x *Index) Apply(d *BlockData) error {
	if want := x.Height() + 1; d.Height != want {
		return fmt.Errorf("explorer index: got block %d, want %d", d.Height, want)
	}
	if len(d.Results) != len(d.Txs) {
		return fmt.Errorf("explorer index: block %d has %d txs but %d results", d.Height, len(d.Txs), len(d.Results))
	}
	bt := &batch{x: x, b: x.db.NewBatch(), pending: map[string]any{}}
	defer bt.b.Close()

	ts := d.Time.UTC().Format(time.RFC3339Nano)
	epoch := uint64(0)
	if d.Height >= 1 {
		epoch = uint64((d.Height - 1) / x.epochLength)
	}
	blk := Block{Height: d.Height, Hash: hex.EncodeToString(d.Hash), Time: ts, Proposer: hex.EncodeToString(d.Proposer),
		Txs: len(d.Txs), TxHashes: []string{}, Events: d.Events, Epoch: epoch}
	var tot Totals
	if err := bt.load(keyTotals, &tot); err != nil {
		return err
	}
	var es EpochStats
	ek := key("e/", be64(epoch))
	if err := bt.load(ek, &es); err != nil {
		return err
	}
	es.Epoch = epoch
	es.Blocks++
	es.Txs += len(d.Txs)
	if es.FirstTime == "" {
		es.FirstTime = ts
	}
	es.LastTime = ts
	bt.put(ek, es) // re-put below after txs changed it

	for i, raw := range d.Txs {
		t, err := x.applyTx(bt, d, i, raw, ts, &tot)
		if err != nil {
			return fmt.Errorf("block %d tx %d: %w", d.Height, i, err)
		}
		blk.TxHashes = append(blk.TxHashes, t.Hash)
		blk.Fees += t.Fee
		if !t.OK() {
			blk.Failed++
		}
	}
	// Block-level events: settlements, rewards, slashes (double signing).
	for j, ev := range d.Events {
		num := func(k string) uint64 { n, _ := strconv.ParseUint(ev.Attrs[k], 10, 64); return n }
		switch ev.Type {
		case "epoch_settled":
			n := num("epoch")
			if err := bt.updateEpoch(key("e/", be64(n)), func(e *EpochStats) {
				e.Settled = true
				e.Emission = num("emission")
				e.ProviderRewards = num("provider_rewards")
				e.ValidatorRewards = num("validator_rewards")
			}); err != nil {
				return err
			}
			tot.Emitted += num("emission")
			tot.Rewards += num("provider_rewards") + num("validator_rewards")
			continue
		case "reward":
			if a, err := types.ParseAddress(ev.Attrs["provider"]); err == nil {
				if err := bt.updateProvider(a, func(p *ProviderStats) { p.Rewards += num("amount") }); err != nil {
					return err
				}
			}
			continue
		case "omission_fault":
			if ev.Attrs["applied"] != "true" {
				continue
			}
			v := Verdict{Height: d.Height, Time: ts, Kind: "omitted_receipt", Epoch: num("epoch"), Provider: ev.Attrs["provider"], Target: ev.Attrs["provider"],
				Index: num("index"), Applied: true, Slashed: num("slashed"), Refund: num("refund"), Reward: num("reward")}
			bt.putVerdict(d.Height, blockEventSuffix(j), v)
			if err := x.countFault(bt, v, &tot); err != nil {
				return err
			}
			continue
		case "slash":
		default:
			continue
		}
		amt, _ := strconv.ParseUint(ev.Attrs["amount"], 10, 64)
		v := Verdict{Height: d.Height, Time: ts, Kind: "double_sign", Target: ev.Attrs["validator"], Applied: true, Slashed: amt}
		if r := ev.Attrs["reason"]; r != "" {
			v.Kind = r
		}
		bt.putVerdict(d.Height, blockEventSuffix(j), v)
		tot.Faults++
		tot.Slashed += amt
	}
	// Re-read the epoch stats: txs may have updated them (fees, paid).
	if err := bt.load(ek, &es); err != nil {
		return err
	}
	es.Fees += blk.Fees
	bt.put(ek, es)

	tot.Blocks = d.Height
	tot.Txs += uint64(len(d.Txs))
	tot.Failed += uint64(blk.Failed)
	tot.Fees += blk.Fees
	bt.put(keyTotals, tot)
	bt.put(key("b/", be64(uint64(d.Height))), blk)

	for k, v := range bt.pending {
		bz, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := bt.b.Set([]byte(k), bz, nil); err != nil {
			return err
		}
	}
	if err := bt.b.Set(keyHeight, be64(uint64(d.Height)), nil); err != nil {
		return err
	}
	// Not synced: the index is derived and a lost tail is re-indexed.
	return bt.b.Commit(pebble.NoSync)
}

func (x *Index) applyTx(bt *batch, d *BlockData, i int, raw []byte, ts string, tot *Totals) (*Tx, error) {
	h := sha256.Sum256(raw)
	res := d.Results[i]
	t := &Tx{Hash: hex.EncodeToString(h[:]), Height: d.Height, Index: i, Time: ts, Code: res.Code, Log: res.Log, Fields: map[string]string{}}
	var agora map[string]string
	for _, ev := range res.Events {
		if ev.Type == "agora" {
			agora = ev.Attrs
		}
	}
	if agora != nil {
		t.Fee, _ = strconv.ParseUint(agora["fee"], 10, 64)
		t.Results = map[string]string{}
		for k, v := range agora {
			if k != "fee" && k != "signer" && k != "msg" {
				t.Results[k] = v
			}
		}
	}
	if b, err := types.DecodeBeaconTx(raw); err == nil {
		// The proposer's carrier of validators' epoch-beacon proofs.
		t.Msg = "beacon"
		t.Fields["epoch"] = u64(b.Epoch)
		t.Fields["validators"] = strconv.Itoa(len(b.Entries))
		bt.put(key("t/", h[:]), t)
		return t, nil
	}
	dec, err := x.msgs.DecodeTx(raw)
	if err != nil {
		t.Msg = "undecodable"
		bt.put(key("t/", h[:]), t)
		return t, nil
	}
	// Every message is shown through its declaration's describe function.
	desc := dec.Describe()
	t.Msg = dec.Name
	t.Signer = dec.Signer.String()
	t.Nonce = dec.Body.Nonce
	for _, f := range desc.Fields {
		t.Fields[f[0]] = f[1]
	}
	touched := append([]types.Address{dec.Signer}, desc.Touches...)
	epochKey := key("e/", be64(uint64((d.Height-1)/x.epochLength)))

	// The special cases below update the explorer's own aggregates
	// (channels, earnings, commitments, verdicts, scores) from a message and
	// its result; they are the explorer's business, not the message's
	// declaration. report_omission also touches its provider, which the
	// chain reads from the receipt and reports in the result.
	switch m := dec.Msg.(type) {
	case *types.MsgOpenChannel:
		if t.OK() {
			id, err := strconv.ParseUint(t.Results["channel_id"], 10, 64)
			if err == nil {
				bt.put(key("c/", be64(id)), Channel{ID: id, Client: t.Signer, Provider: t.Fields["provider"], Deposit: m.Deposit, Height: d.Height, Tx: t.Hash})
				tot.Channels++
			}
		}
	case *types.MsgRedeemVoucher:
		if t.OK() {
			paid, _ := strconv.ParseUint(t.Results["paid"], 10, 64)
			if err := bt.updateProvider(dec.Signer, func(p *ProviderStats) { p.Earned += paid }); err != nil {
				return nil, err
			}
			if err := bt.updateEpoch(epochKey, func(e *EpochStats) { e.Paid += paid }); err != nil {
				return nil, err
			}
			tot.Paid += paid
		}
	case *types.MsgCommitEpoch:
		c := m
		if t.OK() && c.Service != "" && c.Service != services.Inference {
			// Another kind of work: its records are not requests and carry
			// no tokens; only what it billed joins the sums (and its
			// commitment is not listed with the inference ones).
			if err := bt.updateProvider(dec.Signer, func(p *ProviderStats) { p.Billed += c.TotalBilled }); err != nil {
				return nil, err
			}
			if err := bt.updateEpoch(key("e/", be64(c.Epoch)), func(e *EpochStats) { e.Epoch = c.Epoch; e.Billed += c.TotalBilled }); err != nil {
				return nil, err
			}
			tot.Billed += c.TotalBilled
		} else if t.OK() {
			cm := Commitment{Epoch: c.Epoch, Provider: t.Signer, Root: t.Fields["root"], Requests: c.RecordCount, Tokens: c.TotalTokens, Billed: c.TotalBilled, Height: d.Height, Tx: t.Hash}
			bt.put(key("pc/", dec.Signer, be64(c.Epoch)), cm)
			if err := bt.updateProvider(dec.Signer, func(p *ProviderStats) {
				p.Commitments++
				p.Committed = true
				p.Requests += c.RecordCount
				p.Tokens += c.TotalTokens
				p.Billed += c.TotalBilled
				if c.Epoch > p.LastEpoch {
					p.LastEpoch = c.Epoch
				}
			}); err != nil {
				return nil, err
			}
			if err := bt.updateEpoch(key("e/", be64(c.Epoch)), func(e *EpochStats) {
				e.Epoch = c.Epoch
				e.Commitments++
				e.Requests += c.RecordCount
				e.Tokens += c.TotalTokens
				e.Billed += c.TotalBilled
			}); err != nil {
				return nil, err
			}
			tot.Requests += c.RecordCount
			tot.Tokens += c.TotalTokens
			tot.Billed += c.TotalBilled
		}
	case *types.MsgReportOmission:
		prov := t.Results["provider"]
		if a, err := types.ParseAddress(prov); err == nil {
			touched = append(touched, a)
		}
		if t.OK() && t.Results["applied"] == "true" {
			num := func(k string) uint64 { n, _ := strconv.ParseUint(t.Results[k], 10, 64); return n }
			v := Verdict{Height: d.Height, Time: ts, Kind: "omitted_receipt", Epoch: num("epoch"), Provider: prov, Target: prov, Reporter: t.Signer,
				Index: num("index"), Applied: true, Votes: 1, Slashed: num("slashed"), Refund: num("refund"), Reward: num("reward"), Tx: t.Hash}
			bt.putVerdict(d.Height, be64(uint64(i))[4:], v)
			if err := x.countFault(bt, v, tot); err != nil {
				return nil, err
			}
		}
	case *types.MsgSubmitScores:
		ss := m
		if t.OK() {
			vs := ValidatorScores{Epoch: ss.Epoch, Validator: t.Signer, Height: d.Height, Tx: t.Hash, Scores: []Score{}}
			for _, sc := range ss.Scores {
				vs.Scores = append(vs.Scores, Score{Provider: types.Address(sc.Provider).String(), ScoreBps: sc.ScoreBps})
			}
			bt.put(key("s/", be64(ss.Epoch), dec.Signer), vs)
		}
	case *types.MsgRegisterZKModel, *types.MsgVerifyZKProof, *types.MsgReportZKFault:
		if t.OK() {
			if err := x.applyZK(bt, t, dec.Signer, m, uint64((d.Height-1)/x.epochLength), be64(uint64(i))[4:], tot); err != nil {
				return nil, err
			}
		}
	case *types.MsgReportFault:
		r := m
		prov := types.Address(r.Provider).String()
		if t.OK() {
			num := func(k string) uint64 { n, _ := strconv.ParseUint(t.Results[k], 10, 64); return n }
			v := Verdict{Height: d.Height, Time: ts, Kind: FaultName(r.Fault), Epoch: r.Epoch, Provider: prov, Target: prov, Reporter: t.Signer,
				Index: r.Index, Applied: t.Results["applied"] == "true", Votes: num("votes"), Slashed: num("slashed"), Refund: num("refund"), Reward: num("reward"), Tx: t.Hash}
			bt.putVerdict(d.Height, be64(uint64(i))[4:], v)
			if v.Applied {
				if err := x.countFault(bt, v, tot); err != nil {
					return nil, err
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, a := range touched {
		if len(a) == 0 || seen[string(a)] {
			continue
		}
		seen[string(a)] = true
		t.Accounts = append(t.Accounts, types.Address(a).String())
		if err := bt.putRaw(key("a/", a, be64(uint64(d.Height)), be64(uint64(i))[4:]), h[:]); err != nil {
			return nil, err
		}
	}
	bt.put(key("t/", h[:]), t)
	return t, nil
}

// countFault adds an applied provider fault to the provider's, the epoch's
// and the chain's sums.
func (x *Index) countFault(bt *batch, v Verdict, tot *Totals) error {
	a, err := types.ParseAddress(v.Provider)
	if err != nil {
		return err
	}
	if err := bt.updateProvider(a, func(p *ProviderStats) {
		p.Faults++
		p.Slashed += v.Slashed
		p.Refunded += v.Refund
	}); err != nil {
		return err
	}
	if err := bt.updateEpoch(key("e/", be64(v.Epoch)), func(e *EpochStats) {
		e.Faults++
		e.Slashed += v.Slashed
	}); err != nil {
		return err
	}
	tot.Faults++
	tot.Slashed += v.Slashed
	return nil
}

// putVerdict stores a verdict under its height and position, and in the
// indexes by the party concerned and by epoch the explorer's pages read.
func (bt *batch) putVerdict(height int64, pos []byte, v Verdict) {
	at := append(be64(uint64(height)), pos...)
	bt.put(key("f/", at), v)
	if a, err := types.ParseAddress(v.Target); err == nil {
		bt.put(key("ft/", a, at), v)
	}
	if v.Provider != "" {
		bt.put(key("fe/", be64(v.Epoch), at), v)
	}
}

func (bt *batch) updateProvider(addr []byte, f func(*ProviderStats)) error {
	k := key("p/", addr)
	var p ProviderStats
	if err := bt.load(k, &p); err != nil {
		return err
	}
	p.Address = types.Address(addr).String()
	f(&p)
	bt.put(k, p)
	return nil
}

func (bt *batch) updateEpoch(k []byte, f func(*EpochStats)) error {
	var e EpochStats
	if err := bt.load(k, &e); err != nil {
		return err
	}
	e.Epoch = binary.BigEndian.Uint64(k[len("e/"):])
	f(&e)
	bt.put(k, e)
	return nil
}

// FaultName names a MsgReportFault fault code.
func FaultName(code uint32) string { return types.FaultName(code) }

// blockEventSuffix orders a block-level verdict after the block's txs
// (tx positions stay below 2^31).
func blockEventSuffix(j int) []byte { return be64(uint64(1<<31 + j))[4:] }

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
