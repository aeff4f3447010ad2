package explorer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/types"
)

// scan visits the values under prefix, newest (highest key) first when
// reverse, stopping after limit values (0: no limit) or when f returns false.
func (x *Index) scan(prefix []byte, from []byte, reverse bool, limit int, f func(k, v []byte) bool) error {
	upper := append(append([]byte{}, prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	opts := &pebble.IterOptions{LowerBound: prefix, UpperBound: upper}
	if from != nil {
		if reverse {
			opts.UpperBound = from
		} else {
			opts.LowerBound = from
		}
	}
	it, err := x.db.NewIter(opts)
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	valid := it.First
	next := it.Next
	if reverse {
		valid, next = it.Last, it.Prev
	}
	for ok := valid(); ok; ok = next() {
		if !f(it.Key(), it.Value()) {
			break
		}
		n++
		if limit > 0 && n >= limit {
			break
		}
	}
	return it.Error()
}

func scanJSON[T any](x *Index, prefix, from []byte, reverse bool, limit int) ([]T, error) {
	out := []T{}
	var derr error
	err := x.scan(prefix, from, reverse, limit, func(_, v []byte) bool {
		var t T
		if derr = json.Unmarshal(v, &t); derr != nil {
			return false
		}
		out = append(out, t)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// Totals returns the chain-wide sums.
func (x *Index) Totals() (Totals, error) {
	var t Totals
	_, err := x.get(keyTotals, &t)
	return t, err
}

// Block returns block h, or nil when it is not indexed.
func (x *Index) Block(h int64) (*Block, error) {
	var b Block
	ok, err := x.get(key("b/", be64(uint64(h))), &b)
	if !ok || err != nil {
		return nil, err
	}
	return &b, nil
}

// Blocks returns up to limit blocks below height before (0: the latest), newest first.
func (x *Index) Blocks(before int64, limit int) ([]Block, error) {
	var from []byte
	if before > 0 {
		from = key("b/", be64(uint64(before)))
	}
	return scanJSON[Block](x, []byte("b/"), from, true, limit)
}

// Tx returns the tx with the given hex hash, or nil.
func (x *Index) Tx(hash string) (*Tx, error) {
	h, err := hex.DecodeString(hash)
	if err != nil || len(h) != 32 {
		return nil, fmt.Errorf("a tx hash is 64 hex characters")
	}
	var t Tx
	ok, err := x.get(key("t/", h), &t)
	if !ok || err != nil {
		return nil, err
	}
	return &t, nil
}

// Txs returns the txs with the given hashes, in order (missing ones skipped).
func (x *Index) Txs(hashes []string) ([]Tx, error) {
	out := []Tx{}
	for _, h := range hashes {
		t, err := x.Tx(h)
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, *t)
		}
	}
	return out, nil
}

// AccountTxs returns up to limit txs that touch addr, newest first.
func (x *Index) AccountTxs(addr types.Address, limit int) ([]Tx, error) {
	var hashes []string
	err := x.scan(key("a/", addr), nil, true, limit, func(_, v []byte) bool {
		hashes = append(hashes, hex.EncodeToString(v))
		return true
	})
	if err != nil {
		return nil, err
	}
	return x.Txs(hashes)
}

// Epoch returns epoch n's stats (zero when nothing happened in it).
func (x *Index) Epoch(n uint64) (EpochStats, error) {
	e := EpochStats{Epoch: n}
	_, err := x.get(key("e/", be64(n)), &e)
	return e, err
}

// Epochs returns up to limit epochs, newest first.
func (x *Index) Epochs(limit int) ([]EpochStats, error) {
	return scanJSON[EpochStats](x, []byte("e/"), nil, true, limit)
}

// Provider returns a provider's stats (zero when it never did anything indexed).
func (x *Index) Provider(addr types.Address) (ProviderStats, error) {
	p := ProviderStats{Address: addr.String()}
	_, err := x.get(key("p/", addr), &p)
	return p, err
}

// ProviderCommitments returns up to limit of a provider's commitments, newest first.
func (x *Index) ProviderCommitments(addr types.Address, limit int) ([]Commitment, error) {
	return scanJSON[Commitment](x, key("pc/", addr), nil, true, limit)
}

// EpochCommitments returns every commitment made for epoch n.
func (x *Index) EpochCommitments(n uint64, providers []types.Address) ([]Commitment, error) {
	out := []Commitment{}
	for _, p := range providers {
		var c Commitment
		ok, err := x.get(key("pc/", p, be64(n)), &c)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// Verdicts returns up to limit verdicts, newest first.
func (x *Index) Verdicts(limit int) ([]Verdict, error) {
	return scanJSON[Verdict](x, []byte("f/"), nil, true, limit)
}

// VerdictsAgainst returns the verdicts concerning addr, newest first.
func (x *Index) VerdictsAgainst(addr types.Address, limit int) ([]Verdict, error) {
	return scanJSON[Verdict](x, key("ft/", addr), nil, true, limit)
}

// EpochVerdicts returns the provider verdicts for epoch n, newest first.
func (x *Index) EpochVerdicts(n uint64, limit int) ([]Verdict, error) {
	return scanJSON[Verdict](x, key("fe/", be64(n)), nil, true, limit)
}

// Channels returns up to limit channels, newest first.
func (x *Index) Channels(limit int) ([]Channel, error) {
	return scanJSON[Channel](x, []byte("c/"), nil, true, limit)
}

// ProviderAddrs lists every provider the index has stats for.
func (x *Index) ProviderAddrs() ([]types.Address, error) {
	var out []types.Address
	err := x.scan([]byte("p/"), nil, false, 0, func(k, _ []byte) bool {
		out = append(out, types.Address(append([]byte{}, k[2:]...)))
		return true
	})
	return out, err
}

// EpochScores returns the validators' scores for epoch n, in validator order.
func (x *Index) EpochScores(n uint64) ([]ValidatorScores, error) {
	return scanJSON[ValidatorScores](x, key("s/", be64(n)), nil, false, 0)
}
