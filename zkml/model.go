// Package zkml proves inference of small int8-quantised models in zero
// knowledge: a Groth16 proof (gnark, BN254) that public outputs are what a
// model whose weights hash to a public commitment computes on public inputs,
// without revealing the weights.
//
// The model is a chain of layers (fully connected or 2-D convolution) with
// int8 weights and int24 biases; every layer but the last is followed by a
// requantisation (multiply by a fixed-point constant M, shift right by S with
// rounding) and a ReLU clamped to [0, 127]; the last layer's int32
// accumulators are the logits, and the class is their argmax (lowest index on
// ties). Model.Infer is the plain Go reference; the circuit (Circuit)
// computes exactly the same integers, and the tests hold the two to each other
// bit for bit.
package zkml

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"os"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// Kind of a layer.
const (
	Dense = "dense"
	Conv  = "conv"
)

// BiasBits is the width of a bias: biases are signed and lie in
// [-2^23, 2^23); the circuit range-checks them, which bounds every
// accumulator and so keeps all arithmetic far from the field's modulus.
const BiasBits = 24

// Layer is one layer with its quantised parameters.
type Layer struct {
	Kind string `json:"kind"`
	// Dense: Out x In weights, row-major.
	In  int `json:"in,omitempty"`
	Out int `json:"out,omitempty"`
	// Conv: input InC x InH x InW, OutC filters of InC x K x K, stride
	// Stride, no padding; weights are OutC x InC x K x K, row-major.
	InC    int `json:"in_c,omitempty"`
	InH    int `json:"in_h,omitempty"`
	InW    int `json:"in_w,omitempty"`
	OutC   int `json:"out_c,omitempty"`
	K      int `json:"k,omitempty"`
	Stride int `json:"stride,omitempty"`
	// Requantisation of a hidden layer: y = clamp((acc*M + 2^(S-1)) >> S, 0, 127).
	// The last layer has none (M = S = 0): its accumulators are the logits.
	M int64 `json:"m,omitempty"`
	S int   `json:"s,omitempty"`

	W []int8  `json:"w"`
	B []int32 `json:"b"`
}

// Model is a chain of layers applied to an int8 input vector.
type Model struct {
	Layers []Layer `json:"layers"`
}

// InLen is the length of a layer's input vector.
func (l *Layer) InLen() int {
	if l.Kind == Conv {
		return l.InC * l.InH * l.InW
	}
	return l.In
}

// outHW is a convolution's output height and width.
func (l *Layer) outHW() (int, int) {
	return (l.InH-l.K)/l.Stride + 1, (l.InW-l.K)/l.Stride + 1
}

// OutLen is the length of a layer's output vector.
func (l *Layer) OutLen() int {
	if l.Kind == Conv {
		h, w := l.outHW()
		return l.OutC * h * w
	}
	return l.Out
}

// fanIn is how many products sum into one accumulator.
func (l *Layer) fanIn() int {
	if l.Kind == Conv {
		return l.InC * l.K * l.K
	}
	return l.In
}

func (l *Layer) nWeights() int {
	if l.Kind == Conv {
		return l.OutC * l.InC * l.K * l.K
	}
	return l.Out * l.In
}

func (l *Layer) nBiases() int {
	if l.Kind == Conv {
		return l.OutC
	}
	return l.Out
}

// terms lists, for output o, the (weight index, input index) pairs whose
// products sum into its accumulator, and the index of its bias. The reference
// and the circuit both walk these, so they cannot disagree on the shape.
func (l *Layer) terms(o int, f func(wi, xi int)) (bi int) {
	if l.Kind == Conv {
		oh, ow := l.outHW()
		oc, rem := o/(oh*ow), o%(oh*ow)
		oy, ox := rem/ow, rem%ow
		for ic := 0; ic < l.InC; ic++ {
			for ky := 0; ky < l.K; ky++ {
				for kx := 0; kx < l.K; kx++ {
					wi := ((oc*l.InC+ic)*l.K+ky)*l.K + kx
					xi := (ic*l.InH+oy*l.Stride+ky)*l.InW + ox*l.Stride + kx
					f(wi, xi)
				}
			}
		}
		return oc
	}
	for i := 0; i < l.In; i++ {
		f(o*l.In+i, i)
	}
	return o
}

// accBound bounds |acc| for any int8 input and any in-range parameters.
func (l *Layer) accBound() int64 {
	return int64(l.fanIn())*128*128 + 1<<(BiasBits-1)
}

// qBits is the signed width that holds the requantised value before the
// clamp, for any accumulator within accBound.
func (l *Layer) qBits() int {
	q := (l.accBound()*l.M+1<<(l.S-1))>>l.S + 1
	return bits.Len64(uint64(q)) + 1
}

// accBits is the signed width that holds any accumulator.
func (l *Layer) accBits() int { return bits.Len64(uint64(l.accBound())) + 1 }

// Validate checks the model's shape and that every parameter is in range.
func (m *Model) Validate() error {
	if len(m.Layers) == 0 {
		return errors.New("model has no layers")
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case Dense:
			if l.In <= 0 || l.Out <= 0 {
				return fmt.Errorf("layer %d: dense needs in > 0 and out > 0, got %d x %d", i, l.In, l.Out)
			}
		case Conv:
			if l.InC <= 0 || l.InH <= 0 || l.InW <= 0 || l.OutC <= 0 || l.K <= 0 || l.Stride <= 0 || l.K > l.InH || l.K > l.InW {
				return fmt.Errorf("layer %d: bad conv shape in %dx%dx%d, %d filters %dx%d stride %d", i, l.InC, l.InH, l.InW, l.OutC, l.K, l.K, l.Stride)
			}
		default:
			return fmt.Errorf("layer %d: unknown kind %q (want %q or %q)", i, l.Kind, Dense, Conv)
		}
		if i > 0 && l.InLen() != m.Layers[i-1].OutLen() {
			return fmt.Errorf("layer %d takes %d inputs but layer %d gives %d", i, l.InLen(), i-1, m.Layers[i-1].OutLen())
		}
		if len(l.W) != l.nWeights() {
			return fmt.Errorf("layer %d: %d weights, want %d", i, len(l.W), l.nWeights())
		}
		if len(l.B) != l.nBiases() {
			return fmt.Errorf("layer %d: %d biases, want %d", i, len(l.B), l.nBiases())
		}
		for j, w := range l.W {
			if w == -128 {
				// -128 is excluded so that negation stays in int8 and
				// the weights are symmetric, as the quantiser makes them.
				return fmt.Errorf("layer %d: weight %d is -128 (weights are in [-127, 127])", i, j)
			}
		}
		for j, b := range l.B {
			if b < -(1<<(BiasBits-1)) || b >= 1<<(BiasBits-1) {
				return fmt.Errorf("layer %d: bias %d = %d is outside the %d-bit range", i, j, b, BiasBits)
			}
		}
		last := i == len(m.Layers)-1
		if last && (l.M != 0 || l.S != 0) {
			return fmt.Errorf("layer %d is the last: it has no requantisation (m and s must be 0)", i)
		}
		if !last && (l.M <= 0 || l.M >= 1<<24 || l.S <= 0 || l.S > 40) {
			return fmt.Errorf("layer %d: requantisation needs 0 < m < 2^24 and 0 < s <= 40, got m=%d s=%d", i, l.M, l.S)
		}
	}
	return nil
}

// InLen is the length of the model's input.
func (m *Model) InLen() int { return m.Layers[0].InLen() }

// OutLen is the number of logits.
func (m *Model) OutLen() int { return m.Layers[len(m.Layers)-1].OutLen() }

// ParamCount is the number of weights and biases.
func (m *Model) ParamCount() int {
	n := 0
	for i := range m.Layers {
		n += m.Layers[i].nWeights() + m.Layers[i].nBiases()
	}
	return n
}

// Requant is one hidden neuron's requantisation as the circuit sees it:
// Acc*M + 2^(S-1) = Q*2^S + R with 0 <= R < 2^S, Pos = [Q > 0] and
// Big = [ReLU(Q) > 127] (0 or 1), Y = min(max(Q, 0), 127).
type Requant struct {
	Q, R, Pos, Big, Y int64
}

// Trace is one inference with every intermediate value the circuit's
// witness needs.
type Trace struct {
	Requants []Requant // the hidden neurons of all hidden layers, in order
	Logits   []int64
	Class    int
}

// Infer runs the int8 reference model on one input vector.
func (m *Model) Infer(x []int8) (*Trace, error) {
	if len(x) != m.InLen() {
		return nil, fmt.Errorf("input has %d values, the model takes %d", len(x), m.InLen())
	}
	w, b := m.params()
	return m.run(widen(x), w, b, nil), nil
}

// params returns the weights and biases widened to int64.
func (m *Model) params() (w, b [][]int64) {
	for i := range m.Layers {
		w = append(w, widen(m.Layers[i].W))
		bs := make([]int64, len(m.Layers[i].B))
		for j, v := range m.Layers[i].B {
			bs[j] = int64(v)
		}
		b = append(b, bs)
	}
	return w, b
}

func widen(v []int8) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// run is the reference computation on any integers. hook, if set, may
// change each hidden neuron's witness (tests use it to build wrong
// witnesses); the neuron's output is then what the circuit derives from
// the witness, y = Big*127 + (1-Big)*Pos*Q, and everything after it is
// computed honestly from that.
func (m *Model) run(x []int64, w, b [][]int64, hook func(n int, rq *Requant)) *Trace {
	cur := x
	tr := &Trace{}
	for li := range m.Layers {
		l := &m.Layers[li]
		next := make([]int64, l.OutLen())
		for o := range next {
			var acc int64
			bi := l.terms(o, func(wi, xi int) { acc += w[li][wi] * cur[xi] })
			next[o] = acc + b[li][bi]
		}
		if li == len(m.Layers)-1 {
			tr.Logits = next
			break
		}
		for o, acc := range next {
			t := acc*l.M + 1<<(l.S-1)
			q := t >> l.S // arithmetic shift: floor, as the circuit's Q
			rq := Requant{Q: q, R: t - q<<l.S}
			if q > 0 {
				rq.Pos = 1
			}
			if max(q, 0) > 127 {
				rq.Big = 1
			}
			if hook != nil {
				hook(len(tr.Requants), &rq)
			}
			relu := rq.Pos * rq.Q
			rq.Y = rq.Big*127 + (1-rq.Big)*relu
			tr.Requants = append(tr.Requants, rq)
			next[o] = rq.Y
		}
		cur = next
	}
	for j, v := range tr.Logits {
		if v > tr.Logits[tr.Class] {
			tr.Class = j
		}
	}
	return tr
}

// unit is one parameter as packed for the commitment: value+offset, which
// is in [0, 2^bits).
type unit struct {
	bits int
}

// packBits is how many bits of parameters one field element carries: 31
// whole bytes, below BN254's 254-bit modulus.
const packBits = 248

// packLayout returns the bit width of each packed parameter, in commitment
// order: per layer its weights (8 bits each, w+128) then its biases
// (BiasBits each, b+2^23).
func (m *Model) packLayout() []unit {
	var us []unit
	for i := range m.Layers {
		for range m.Layers[i].nWeights() {
			us = append(us, unit{8})
		}
		for range m.Layers[i].nBiases() {
			us = append(us, unit{BiasBits})
		}
	}
	return us
}

// packGroups splits the units into field elements: consecutive units fill
// one element until the next would pass packBits. It returns, per unit, its
// element and its shift within the element.
func packGroups(us []unit) (elem, shift []int, n int) {
	elem, shift = make([]int, len(us)), make([]int, len(us))
	s := 0
	for i, u := range us {
		if s+u.bits > packBits {
			n++
			s = 0
		}
		elem[i], shift[i] = n, s
		s += u.bits
	}
	return elem, shift, n + 1
}

// offsetValues lists the parameters in commitment order, offset to be
// non-negative.
func (m *Model) offsetValues() []int64 {
	var vs []int64
	for i := range m.Layers {
		for _, w := range m.Layers[i].W {
			vs = append(vs, int64(w)+128)
		}
		for _, b := range m.Layers[i].B {
			vs = append(vs, int64(b)+1<<(BiasBits-1))
		}
	}
	return vs
}

// The commitment's sponge: Poseidon2 over BN254 of width 3 (capacity 1,
// rate 2), with 8 full and 56 partial rounds (the Poseidon2 paper's
// 128-bit parameters for t = 3 over BN254). Absorbing two elements per
// permutation costs about 108 constraints per element in the circuit,
// against 174 for gnark's width-2 Merkle-Damgård hasher (measured on the
// MNIST MLP: 177,920 against 232,304 constraints).
const (
	spongeWidth    = 3
	spongeFull     = 8
	spongePartial  = 56
	spongeRateSize = 2
)

// Commitment is the Poseidon2 sponge hash of the packed parameters: the
// model's public identity, which the circuit recomputes from its private
// weights. The capacity element starts as the number of packed elements
// (domain separation by length); each permutation absorbs two elements
// (the last pair padded with zero) by addition into the rate; the digest
// is the first rate element.
func (m *Model) Commitment() (*big.Int, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	vs := m.offsetValues()
	elem, shift, n := packGroups(m.packLayout())
	packed := make([]*big.Int, n)
	for i := range packed {
		packed[i] = new(big.Int)
	}
	for i, v := range vs {
		packed[elem[i]].Add(packed[elem[i]], new(big.Int).Lsh(big.NewInt(v), uint(shift[i])))
	}
	perm := poseidon2.NewPermutation(spongeWidth, spongeFull, spongePartial)
	state := make([]fr.Element, spongeWidth)
	state[0].SetUint64(uint64(n))
	for i := 0; i < n; i += spongeRateSize {
		for j := 0; j < spongeRateSize && i+j < n; j++ {
			var e fr.Element
			e.SetBigInt(packed[i+j])
			state[1+j].Add(&state[1+j], &e)
		}
		if err := perm.Permutation(state); err != nil {
			return nil, fmt.Errorf("hash the weights: %w", err)
		}
	}
	return state[1].BigInt(new(big.Int)), nil
}

// Save writes the model as JSON.
func (m *Model) Save(path string) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode model: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	return nil
}

// LoadModel reads and validates a model written by Save.
func LoadModel(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	var m Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode model %s: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return &m, nil
}
