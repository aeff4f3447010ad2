package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/agoranet/agora/engine/native"
)

// Data is a token stream cut into fixed windows of T+1 tokens (window i
// starts at token i·T: its first T tokens are inputs, its last T targets),
// visited in a seeded order: each epoch a Fisher–Yates shuffle of the
// window indices drawn from a SplitMix64 stream. The cursor (Epoch, Pos)
// and the stream's state at the epoch's start (RNG) are the whole of the
// data order's state: a checkpoint stores them, and a resumed run redraws
// the epoch's permutation from RNG.
type Data struct {
	T      int
	tokens []int
	root   string // sha256 of the token ids (uint32 LE)
	maxID  int
	Epoch  int
	Pos    int    // windows of this epoch already used
	RNG    uint64 // SplitMix64 state before this epoch's shuffle
	perm   []int
}

// NewData cuts tokens into windows of T+1 (tokens past the last whole
// window are unused) and seeds the order.
func NewData(tokens []int, T int, seed uint64) *Data {
	h := sha256.New()
	var b [4]byte
	maxID := 0
	for _, t := range tokens {
		binary.LittleEndian.PutUint32(b[:], uint32(t))
		h.Write(b[:])
		maxID = max(maxID, t)
	}
	// The order's stream differs from the weights' (same seed) by a constant.
	return &Data{T: T, tokens: tokens, root: hex.EncodeToString(h.Sum(nil)), maxID: maxID, RNG: seed ^ 0xda7a5eed}
}

// Windows is the number of whole windows.
func (d *Data) Windows() int {
	if len(d.tokens) < d.T+1 {
		return 0
	}
	return (len(d.tokens) - 1) / d.T
}

// Root is the sha256 of the token stream: which data a run trained on.
func (d *Data) Root() string { return d.root }

// Tokens is the number of tokens.
func (d *Data) Tokens() int { return len(d.tokens) }

// shuffle draws the epoch's permutation from the RNG state at its start.
func (d *Data) shuffle() {
	r := native.NewRNG(d.RNG)
	n := d.Windows()
	d.perm = make([]int, n)
	for i := range d.perm {
		d.perm[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(r.Uint64() % uint64(i+1))
		d.perm[i], d.perm[j] = d.perm[j], d.perm[i]
	}
}

// Next returns the next batch of B windows (inputs and targets, B·T each),
// starting a new epoch (the stream advanced past the last shuffle) when
// this one is used up. A batch never spans epochs' ends partially: it
// takes the windows left, then continues in the next epoch.
func (d *Data) Next(B int) (inputs, targets []int) {
	for len(inputs) < B*d.T {
		if d.perm == nil {
			d.shuffle()
		}
		if d.Pos == len(d.perm) {
			// the state after this epoch's draws seeds the next one
			// (SplitMix64's state advances by a constant per draw)
			d.RNG += uint64(len(d.perm)-1) * 0x9E3779B97F4A7C15
			d.Epoch++
			d.Pos = 0
			d.shuffle()
		}
		w := d.perm[d.Pos]
		d.Pos++
		in, tg := d.windows(w, w+1)
		inputs = append(inputs, in...)
		targets = append(targets, tg...)
	}
	return inputs, targets
}

// windows returns windows [w0, w1) in order.
func (d *Data) windows(w0, w1 int) (inputs, targets []int) {
	for w := w0; w < w1; w++ {
		s := d.tokens[w*d.T : w*d.T+d.T+1]
		inputs = append(inputs, s[:d.T]...)
		targets = append(targets, s[1:]...)
	}
	return inputs, targets
}
