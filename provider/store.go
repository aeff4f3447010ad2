package provider

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/internal/kvlog"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
)

// Store is the provider's durable state: per-channel billing and best
// voucher, receipts and transcripts by epoch, epoch commitment status. Every
// write that accompanies a response is synced before the response completes.
type Store struct{ db *kvlog.DB }

// ChannelState is what the provider knows about a payment channel.
type ChannelState struct {
	Billed   uint64 `json:"billed"`   // total of its receipts' amounts
	BestCum  uint64 `json:"best_cum"` // highest valid voucher received
	BestSig  []byte `json:"best_sig"` // its signature
	Redeemed uint64 `json:"redeemed"` // last amount redeemed on chain (as far as we know)
}

// EpochState tracks one epoch's receipt log. Count and Total are derived
// from the receipts; Committed and Root are stored.
type EpochState struct {
	Count     uint64 `json:"-"`
	Total     uint64 `json:"-"`
	Committed bool   `json:"committed"`
	Root      []byte `json:"root,omitempty"`
}

// OpenStore opens (or creates) the store in dir.
func OpenStore(dir string) (*Store, error) { return openStore(dir, nil) }

// openStore is OpenStore reporting a torn write its log drops to log
// (a corrupt log is an error naming the recover command: see kvlog).
func openStore(dir string, log *slog.Logger) (*Store, error) {
	db, err := kvlog.OpenDBLogger(dir, log)
	if err != nil {
		return nil, fmt.Errorf("open provider store %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func key(prefix string, parts ...[]byte) []byte {
	k := []byte(prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (s *Store) getJSON(k []byte, v any) (bool, error) {
	bz, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, json.Unmarshal(bz, v)
}

// Channel returns a channel's state (zero if unknown).
func (s *Store) Channel(id uint64) (ChannelState, error) {
	var c ChannelState
	_, err := s.getJSON(key("ch/", u64(id)), &c)
	return c, err
}

// SaveVoucher records a better voucher for a channel (synced).
func (s *Store) SaveVoucher(id uint64, c ChannelState) error {
	bz, _ := json.Marshal(c)
	return s.db.SetSync(key("ch/", u64(id)), bz)
}

// Epoch returns an epoch's state.
func (s *Store) Epoch(n uint64) (EpochState, error) {
	var e EpochState
	_, err := s.getJSON(key("ep/", u64(n)), &e)
	return e, err
}

// SaveEpoch writes an epoch's state (synced).
func (s *Store) SaveEpoch(n uint64, e EpochState) error {
	bz, _ := json.Marshal(e)
	return s.db.SetSync(key("ep/", u64(n)), bz)
}

// EncodeTranscript is a transcript as Record stores it. It fails on what
// JSON cannot carry (a NaN or infinite log-prob).
func EncodeTranscript(t *inference.Transcript) ([]byte, error) {
	bz, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encoding a transcript: %w", err)
	}
	return bz, nil
}

// Record stores served requests atomically: their receipts and encoded
// transcripts (srs[i] with trs[i], from EncodeTranscript). Synced through the store's log
// (kvlog.DB); concurrent calls share one write and fdatasync (group
// commit). Billing totals and epoch counts are derived from the receipts
// (Scan), so they need no separate write that could be reordered.
func (s *Store) Record(srs []*receipt.Signed, trs [][]byte) error {
	if len(srs) != len(trs) {
		return fmt.Errorf("recording %d receipts with %d transcripts", len(srs), len(trs))
	}
	b := s.db.NewBatch()
	defer b.Close()
	for i, sr := range srs {
		r := sr.Receipt
		sbz, _ := proto.Marshal(&types.SignedReceipt{Receipt: sr.Bytes, Signature: sr.Signature})
		id := sr.ID()
		loc := append(u64(r.Epoch), u64(r.Index)...)
		b.Set(key("rc/", loc), sbz, nil)
		b.Set(key("tr/", loc), trs[i], nil)
		b.Set(key("rid/", id[:]), loc, nil)
	}
	return s.db.CommitSync(b)
}

// Receipts returns an epoch's receipts in index order.
func (s *Store) Receipts(epoch uint64) ([]*receipt.Signed, error) {
	lo := key("rc/", u64(epoch))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: key("rc/", u64(epoch+1))})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*receipt.Signed
	for it.First(); it.Valid(); it.Next() {
		sr, err := decodeStored(it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, sr)
	}
	return out, it.Error()
}

func decodeStored(bz []byte) (*receipt.Signed, error) {
	var ss types.SignedReceipt
	if err := proto.Unmarshal(bz, &ss); err != nil {
		return nil, err
	}
	var r types.Receipt
	if err := proto.Unmarshal(ss.Receipt, &r); err != nil {
		return nil, err
	}
	return &receipt.Signed{Receipt: &r, Bytes: ss.Receipt, Signature: ss.Signature}, nil
}

// ReceiptByID finds a receipt by id.
func (s *Store) ReceiptByID(id [32]byte) (*receipt.Signed, error) {
	loc, closer, err := s.db.Get(key("rid/", id[:]))
	if err != nil {
		return nil, err
	}
	l := append([]byte(nil), loc...)
	closer.Close()
	bz, closer, err := s.db.Get(key("rc/", l))
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeStored(bz)
}

// inference.Transcript returns a stored transcript.
func (s *Store) Transcript(epoch, index uint64) (*inference.Transcript, error) {
	var t inference.Transcript
	ok, err := s.getJSON(key("tr/", u64(epoch), u64(index)), &t)
	if !ok && err == nil {
		err = pebble.ErrNotFound
	}
	return &t, err
}

// Channels lists all channel states.
func (s *Store) Channels() (map[uint64]ChannelState, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("ch/"), UpperBound: []byte("ch0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[uint64]ChannelState{}
	for it.First(); it.Valid(); it.Next() {
		var c ChannelState
		if err := json.Unmarshal(it.Value(), &c); err != nil {
			return nil, err
		}
		out[binary.BigEndian.Uint64(it.Key()[3:])] = c
	}
	return out, it.Error()
}

// Scan calls fn for every stored receipt, in (epoch, index) order.
func (s *Store) Scan(fn func(r *types.Receipt)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("rc/"), UpperBound: []byte("rc0")})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		sr, err := decodeStored(it.Value())
		if err != nil {
			return err
		}
		fn(sr.Receipt)
	}
	return it.Error()
}

// PutTranscript overwrites a stored transcript (for tools and fault-injection tests).
func (s *Store) PutTranscript(epoch, index uint64, t *inference.Transcript) error {
	bz, err := EncodeTranscript(t)
	if err != nil {
		return err
	}
	return s.db.SetSync(key("tr/", u64(epoch), u64(index)), bz)
}

// ZKAnswer is a proven answer the provider billed (zk.go): kept so that a
// restart bills its channel the same (Start adds it back like a receipt).
type ZKAnswer struct {
	Channel   uint64         `json:"channel_id"`
	Model     uint64         `json:"model"`
	Count     int            `json:"count"`
	Amount    uint64         `json:"amount"`
	Statement types.HexBytes `json:"statement"`
	Signature types.HexBytes `json:"signature"`
	Time      int64          `json:"time"`
}

// AddZKAnswer stores a billed proven answer, synced before it is sent.
func (s *Store) AddZKAnswer(a ZKAnswer) error {
	bz, err := json.Marshal(a)
	if err != nil {
		return err
	}
	id := sha256Sum(a.Signature)
	return s.db.SetSync(key("zk/", u64(a.Channel), id), bz)
}

// ScanZK calls fn for every stored proven answer, by channel.
func (s *Store) ScanZK(fn func(a ZKAnswer)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("zk/"), UpperBound: []byte("zk0")})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		var a ZKAnswer
		if err := json.Unmarshal(it.Value(), &a); err != nil {
			return fmt.Errorf("stored zk answer %x: %w", it.Key(), err)
		}
		fn(a)
	}
	return it.Error()
}
