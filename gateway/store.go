package gateway

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/internal/kvlog"
)

// Store is the gateway's durable state: per-provider channel accounting and
// the receipts it holds. Synced on every write, so a voucher is never signed
// lower after a restart and no verified receipt is lost.
type Store struct {
	db   *kvlog.DB
	seq  atomic.Uint64 // last receipt sequence number
	zseq atomic.Uint64 // last proven answer's
}

// ChannelState is the client side of a payment channel.
type ChannelState struct {
	ChannelID uint64 `json:"channel_id"`
	Deposit   uint64 `json:"deposit"`
	Expiry    int64  `json:"expiry"`
	Paid      uint64 `json:"paid"`      // highest cumulative voucher signed (never lowered)
	Billed    uint64 `json:"billed"`    // total of verified receipts
	Delivered uint64 `json:"delivered"` // highest voucher the provider acknowledged
}

// StoredReceipt is a receipt the gateway verified.
type StoredReceipt struct {
	Seq      uint64 `json:"seq"`
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Payer    string `json:"payer"` // the client account that pays it
	Model    string `json:"model"`
	Amount   uint64 `json:"amount"`
	Epoch    uint64 `json:"epoch"`
	Index    uint64 `json:"index"`
	Channel  uint64 `json:"channel_id"`
	Prompt   uint32 `json:"prompt_tokens"`
	Output   uint32 `json:"completion_tokens"`
	Time     int64  `json:"time"`
	Encoded  string `json:"receipt"`
}

// OpenStore opens the store in dir.
func OpenStore(dir string) (*Store, error) { return openStore(dir, nil) }

// openStore is OpenStore reporting a torn write its log drops to log
// (a corrupt log is an error naming the recover command: see kvlog).
func openStore(dir string, log *slog.Logger) (*Store, error) {
	db, err := kvlog.OpenDBLogger(dir, log)
	if err != nil {
		return nil, fmt.Errorf("open gateway store %s: %w", dir, err)
	}
	s := &Store{db: db}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("r/"), UpperBound: []byte("r0")})
	if err != nil {
		db.Close()
		return nil, err
	}
	if it.Last() {
		s.seq.Store(binary.BigEndian.Uint64(it.Key()[2:]))
	}
	it.Close()
	if it, err = db.NewIter(&pebble.IterOptions{LowerBound: []byte("z/"), UpperBound: []byte("z0")}); err != nil {
		db.Close()
		return nil, err
	}
	if it.Last() {
		s.zseq.Store(binary.BigEndian.Uint64(it.Key()[2:]))
	}
	it.Close()
	return s, nil
}

// Close closes it.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) get(k []byte, v any) (bool, error) {
	bz, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer c.Close()
	return true, json.Unmarshal(bz, v)
}

// Channel loads a provider's channel state.
func (s *Store) Channel(provider string) (ChannelState, bool, error) {
	var c ChannelState
	ok, err := s.get([]byte("gc/"+provider), &c)
	return c, ok, err
}

// SaveChannel persists a channel state (synced).
func (s *Store) SaveChannel(provider string, c ChannelState) error {
	bz, _ := json.Marshal(c)
	return s.db.SetSync([]byte("gc/"+provider), bz)
}

// AddReceipt stores a verified receipt (synced through the store's log;
// concurrent calls share one write and fdatasync). Billed totals are derived from the receipts (BilledByProvider),
// so no per-channel total is written that could be reordered.
func (s *Store) AddReceipt(r *StoredReceipt) error {
	r.Seq = s.seq.Add(1)
	rbz, _ := json.Marshal(r)
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(append([]byte("r/"), binary.BigEndian.AppendUint64(nil, r.Seq)...), rbz, nil)
	b.Set([]byte("ri/"+r.ID), binary.BigEndian.AppendUint64(nil, r.Seq), nil)
	return s.db.CommitSync(b)
}

// A store written by an earlier version may hold "tentative" receipts:
// early receipts (removed), stored as a provider sent them ahead of its
// synced write and confirmed by a mark under rk/<seq> once its response
// came. A confirmed one reads as any other receipt. One a crash left
// unconfirmed is ignored — never listed, found, billed or checked for
// omission — rather than settled by asking its provider: its provider may
// have crashed before storing it and given its index to another receipt,
// so it is no evidence against anyone; if the provider did store it, the
// gateway underpays that one request (its provider extends credit for it).
// No new tentative record or mark is written.
func legacyConfirmKey(seq uint64) []byte {
	return append([]byte("rk/"), binary.BigEndian.AppendUint64(nil, seq)...)
}

// decode reads a stored receipt; ok is false for a legacy tentative one
// never confirmed (ignored: see legacyConfirmKey).
func (s *Store) decode(bz []byte) (r StoredReceipt, ok bool, err error) {
	var rec struct {
		StoredReceipt
		Tentative bool `json:"tentative"`
	}
	if err := json.Unmarshal(bz, &rec); err != nil {
		return rec.StoredReceipt, false, err
	}
	if rec.Tentative {
		_, c, err := s.db.Get(legacyConfirmKey(rec.Seq))
		if errors.Is(err, pebble.ErrNotFound) {
			return rec.StoredReceipt, false, nil
		}
		if err != nil {
			return rec.StoredReceipt, false, err
		}
		c.Close()
	}
	return rec.StoredReceipt, true, nil
}

// MarkVerified records that a receipt's signature checked out. Not synced:
// if the mark is lost, the receipt is verified again at the next start.
func (s *Store) MarkVerified(seq uint64) error {
	return s.db.Set(append([]byte("rv/"), binary.BigEndian.AppendUint64(nil, seq)...), []byte{1})
}

// MarkVerifiedAll is MarkVerified for many receipts in one write.
func (s *Store) MarkVerifiedAll(seqs []uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, seq := range seqs {
		b.Set(append([]byte("rv/"), binary.BigEndian.AppendUint64(nil, seq)...), []byte{1}, nil)
	}
	return s.db.Commit(b)
}

func (s *Store) verified(seq uint64) bool {
	_, c, err := s.db.Get(append([]byte("rv/"), binary.BigEndian.AppendUint64(nil, seq)...))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// BilledByProvider sums the stored receipts per payer/provider and channel;
// check decides receipts not yet marked verified (and marks them verified).
func (s *Store) BilledByProvider(check func(StoredReceipt) bool) (map[string]map[uint64]uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("r/"), UpperBound: []byte("r0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[string]map[uint64]uint64{}
	for it.First(); it.Valid(); it.Next() {
		r, ok, err := s.decode(it.Value())
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if !s.verified(r.Seq) {
			if !check(r) {
				continue
			}
			if err := s.MarkVerified(r.Seq); err != nil {
				return nil, err
			}
		}
		k := r.Payer + "/" + r.Provider
		if out[k] == nil {
			out[k] = map[uint64]uint64{}
		}
		out[k][r.Channel] += r.Amount
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	// proven answers, each verified before it was stored
	err = s.ScanZK(func(a StoredZKAnswer) {
		k := a.Payer + "/" + a.Provider
		if out[k] == nil {
			out[k] = map[uint64]uint64{}
		}
		out[k][a.Channel] += a.Amount
	})
	return out, err
}

// StoredZKAnswer is a proven answer whose proof the gateway verified (and
// so owes its provider for).
type StoredZKAnswer struct {
	Seq       uint64         `json:"seq"`
	Provider  string         `json:"provider"`
	Payer     string         `json:"payer"`
	Model     uint64         `json:"model"`
	Channel   uint64         `json:"channel_id"`
	Count     int            `json:"count"`
	Amount    uint64         `json:"amount"`
	Statement types.HexBytes `json:"statement"`
	Classes   []uint32       `json:"classes"`
	Time      int64          `json:"time"`
}

// AddZKAnswer stores a verified proven answer (synced): from then on it is
// billed to its channel, across restarts.
func (s *Store) AddZKAnswer(a *StoredZKAnswer) error {
	a.Seq = s.zseq.Add(1)
	bz, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.db.SetSync(append([]byte("z/"), binary.BigEndian.AppendUint64(nil, a.Seq)...), bz)
}

// ScanZK calls fn for every stored proven answer, oldest first.
func (s *Store) ScanZK(fn func(a StoredZKAnswer)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("z/"), UpperBound: []byte("z0")})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		var a StoredZKAnswer
		if err := json.Unmarshal(it.Value(), &a); err != nil {
			return fmt.Errorf("stored zk answer %x: %w", it.Key(), err)
		}
		fn(a)
	}
	return it.Error()
}

// Receipt finds a receipt by id.
func (s *Store) Receipt(id string) (*StoredReceipt, error) {
	bz, c, err := s.db.Get([]byte("ri/" + id))
	if err != nil {
		return nil, err
	}
	seq := append([]byte(nil), bz...)
	c.Close()
	bz, c, err = s.db.Get(append([]byte("r/"), seq...))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, ok, err := s.decode(bz)
	if err == nil && !ok {
		err = pebble.ErrNotFound
	}
	return &r, err
}

// Receipts lists receipts in order (after seq, up to limit), only payer's
// when payer is not empty.
func (s *Store) Receipts(after uint64, limit int, payer string) ([]StoredReceipt, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: append([]byte("r/"), binary.BigEndian.AppendUint64(nil, after+1)...), UpperBound: []byte("r0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := []StoredReceipt{}
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		r, ok, err := s.decode(it.Value())
		if err != nil {
			return nil, err
		}
		if ok && (payer == "" || r.Payer == payer) {
			out = append(out, r)
		}
	}
	return out, it.Error()
}

// Channels lists the channel states by provider.
func (s *Store) Channels() (map[string]ChannelState, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("gc/"), UpperBound: []byte("gc0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[string]ChannelState{}
	for it.First(); it.Valid(); it.Next() {
		var c ChannelState
		if err := json.Unmarshal(it.Value(), &c); err != nil {
			return nil, err
		}
		out[string(it.Key()[3:])] = c
	}
	return out, it.Error()
}
