package zkml

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/permutation/poseidon2"
	"github.com/consensys/gnark/std/rangecheck"
)

// Circuit proves Batch inferences of one model. Public: the weights'
// commitment, the inputs, the logits and the classes. Private: the weights
// and biases, and per inference the requantisation witness of every hidden
// neuron and the argmax's one-hot selector. The model's shape and its
// requantisation constants (M, S) are compiled in, so the verifying key
// fixes them; the weights are free and bound only by the commitment.
type Circuit struct {
	Commitment frontend.Variable     `gnark:",public"`
	Inputs     [][]frontend.Variable `gnark:",public"` // [batch][in]
	Logits     [][]frontend.Variable `gnark:",public"` // [batch][out]
	Classes    []frontend.Variable   `gnark:",public"` // [batch]

	W [][]frontend.Variable // [layer][weight]
	B [][]frontend.Variable // [layer][bias]

	Q, R, Pos, Big [][]frontend.Variable // [batch][hidden neuron]
	Sel            [][]frontend.Variable // [batch][out]: one-hot argmax

	shape *Model // layers' shapes and M, S; its weights are not read
}

// hiddenCount is the number of requantised neurons of one inference.
func (m *Model) hiddenCount() int {
	n := 0
	for i := 0; i < len(m.Layers)-1; i++ {
		n += m.Layers[i].OutLen()
	}
	return n
}

// NewCircuit returns the circuit (shape only, no values) for batch
// inferences of the model's architecture.
func NewCircuit(m *Model, batch int) (*Circuit, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("batch must be at least 1, got %d", batch)
	}
	shape := &Model{Layers: make([]Layer, len(m.Layers))}
	for i, l := range m.Layers {
		l.W, l.B = nil, nil
		shape.Layers[i] = l
	}
	c := &Circuit{shape: shape}
	c.fill(m, batch)
	return c, nil
}

// fill allocates every slice to its length.
func (c *Circuit) fill(m *Model, batch int) {
	mat := func(n, k int) [][]frontend.Variable {
		v := make([][]frontend.Variable, n)
		for i := range v {
			v[i] = make([]frontend.Variable, k)
		}
		return v
	}
	c.Inputs = mat(batch, m.InLen())
	c.Logits = mat(batch, m.OutLen())
	c.Classes = make([]frontend.Variable, batch)
	c.W = make([][]frontend.Variable, len(m.Layers))
	c.B = make([][]frontend.Variable, len(m.Layers))
	for i := range m.Layers {
		c.W[i] = make([]frontend.Variable, m.Layers[i].nWeights())
		c.B[i] = make([]frontend.Variable, m.Layers[i].nBiases())
	}
	h := m.hiddenCount()
	c.Q, c.R, c.Pos, c.Big = mat(batch, h), mat(batch, h), mat(batch, h), mat(batch, h)
	c.Sel = mat(batch, m.OutLen())
}

// Define writes the constraints.
func (c *Circuit) Define(api frontend.API) error {
	m := c.shape
	rc := rangecheck.New(api)

	// The weights are int8 and the biases int24 (range checks), packed
	// into field elements exactly as Model.Commitment packs them, and
	// hashed: the result must be the public commitment. The range checks
	// also make the packing injective, so no other weights hash the same.
	us := m.packLayout()
	elem, shift, n := packGroups(us)
	packed := make([]frontend.Variable, n)
	for i := range packed {
		packed[i] = 0
	}
	k := 0
	add := func(v frontend.Variable, off int64, bits int) {
		o := api.Add(v, off)
		rc.Check(o, bits)
		packed[elem[k]] = api.Add(packed[elem[k]], api.Mul(o, pow2(shift[k])))
		k++
	}
	for li := range m.Layers {
		for _, w := range c.W[li] {
			add(w, 128, 8)
		}
		for _, b := range c.B[li] {
			add(b, 1<<(BiasBits-1), BiasBits)
		}
	}
	// The sponge of Model.Commitment, with the same permutation.
	perm, err := poseidon2.NewPoseidon2FromParameters(api, spongeWidth, spongeFull, spongePartial)
	if err != nil {
		return fmt.Errorf("poseidon2: %w", err)
	}
	state := []frontend.Variable{len(packed), 0, 0}
	for i := 0; i < len(packed); i += spongeRateSize {
		for j := 0; j < spongeRateSize && i+j < len(packed); j++ {
			state[1+j] = api.Add(state[1+j], packed[i+j])
		}
		if err := perm.Permutation(state); err != nil {
			return fmt.Errorf("poseidon2: %w", err)
		}
	}
	api.AssertIsEqual(state[1], c.Commitment)

	for b := range c.Inputs {
		cur := make([]frontend.Variable, len(c.Inputs[b]))
		for i, x := range c.Inputs[b] {
			rc.Check(api.Add(x, 128), 8) // the inputs are int8
			cur[i] = x
		}
		hn := 0
		for li := range m.Layers {
			l := &m.Layers[li]
			acc := make([]frontend.Variable, l.OutLen())
			for o := range acc {
				var terms []frontend.Variable
				bi := l.terms(o, func(wi, xi int) { terms = append(terms, api.Mul(c.W[li][wi], cur[xi])) })
				terms = append(terms, c.B[li][bi])
				acc[o] = sum(api, terms)
			}
			if li == len(m.Layers)-1 {
				for o := range acc {
					api.AssertIsEqual(acc[o], c.Logits[b][o])
				}
				break
			}
			qb := l.qBits()
			for o := range acc {
				q, r, pos, isBig := c.Q[b][hn], c.R[b][hn], c.Pos[b][hn], c.Big[b][hn]
				hn++
				// acc*M + 2^(S-1) = q*2^S + r with 0 <= r < 2^S: with
				// q small (the ReLU check below makes q-1 or -q a qb-bit
				// value), q is the rounded shift and nothing else is.
				api.AssertIsEqual(api.Add(api.Mul(acc[o], l.M), pow2(l.S-1)), api.Add(api.Mul(q, pow2(l.S)), r))
				rc.Check(r, l.S)
				// ReLU: pos = [q > 0], relu = pos*q. If pos=1 then
				// q-1 >= 0, if pos=0 then -q >= 0; both in one check of
				// 2*relu - q - pos (a wrong pos makes it negative,
				// i.e. a huge field element).
				api.AssertIsBoolean(pos)
				relu := api.Mul(pos, q)
				rc.Check(api.Sub(api.Mul(relu, 2), q, pos), qb)
				// Clamp: big = [relu > 127]. If big=1 then relu-128 >= 0,
				// else 127-relu >= 0: 2*big*relu - 255*big + 127 - relu.
				api.AssertIsBoolean(isBig)
				bigRelu := api.Mul(isBig, relu)
				rc.Check(api.Add(api.Sub(api.Mul(bigRelu, 2), api.Mul(isBig, 255), relu), 127), qb)
				// y = big ? 127 : relu
				acc[o] = api.Sub(api.Add(api.Mul(isBig, 127), relu), bigRelu)
			}
			cur = acc
		}

		// Argmax: a one-hot selector picks logit v = logits[class]; every
		// logit is <= v, and those before the class are < v (the lowest
		// index wins a tie).
		logits := c.Logits[b]
		var ones, idx, picked []frontend.Variable
		for j, s := range c.Sel[b] {
			api.AssertIsBoolean(s)
			ones = append(ones, s)
			idx = append(idx, api.Mul(s, j))
			picked = append(picked, api.Mul(s, logits[j]))
		}
		api.AssertIsEqual(sum(api, ones), 1)
		api.AssertIsEqual(sum(api, idx), c.Classes[b])
		v := sum(api, picked)
		ab := m.Layers[len(m.Layers)-1].accBits() + 1
		var after frontend.Variable = 0 // Σ sel[k] for k > j: 1 iff j < class
		for j := len(logits) - 1; j >= 0; j-- {
			rc.Check(api.Sub(v, logits[j], after), ab)
			after = api.Add(after, c.Sel[b][j])
		}
	}
	return nil
}

// sum adds the terms (Add needs at least two operands).
func sum(api frontend.API, t []frontend.Variable) frontend.Variable {
	switch len(t) {
	case 0:
		return 0
	case 1:
		return api.Add(t[0], 0)
	}
	return api.Add(t[0], t[1], t[2:]...)
}

func pow2(n int) frontend.Variable {
	return new(big.Int).Lsh(big.NewInt(1), uint(n))
}

// Assign fills a circuit with the model's weights, the inputs and the
// reference model's traces for them: the full witness of a true statement.
func Assign(m *Model, inputs [][]int8) (*Circuit, []*Trace, error) {
	com, err := m.Commitment()
	if err != nil {
		return nil, nil, err
	}
	xs := make([][]int64, len(inputs))
	for b, x := range inputs {
		if len(x) != m.InLen() {
			return nil, nil, fmt.Errorf("input %d has %d values, the model takes %d", b, len(x), m.InLen())
		}
		xs[b] = widen(x)
	}
	w, bs := m.params()
	return assign(m, xs, w, bs, com, nil)
}

// assign builds the witness for any integers (tests pass out-of-range or
// other values, and a hook that changes hidden neurons' witnesses).
func assign(m *Model, xs [][]int64, w, bs [][]int64, com *big.Int, hook func(item, n int, rq *Requant)) (*Circuit, []*Trace, error) {
	c, err := NewCircuit(m, len(xs))
	if err != nil {
		return nil, nil, err
	}
	c.Commitment = com
	for li := range m.Layers {
		for i, v := range w[li] {
			c.W[li][i] = v
		}
		for i, v := range bs[li] {
			c.B[li][i] = v
		}
	}
	traces := make([]*Trace, len(xs))
	for b, x := range xs {
		var h func(int, *Requant)
		if hook != nil {
			h = func(n int, rq *Requant) { hook(b, n, rq) }
		}
		tr := m.run(x, w, bs, h)
		traces[b] = tr
		for i, v := range x {
			c.Inputs[b][i] = v
		}
		for i, v := range tr.Logits {
			c.Logits[b][i] = v
			c.Sel[b][i] = boolInt(i == tr.Class)
		}
		c.Classes[b] = tr.Class
		for i, rq := range tr.Requants {
			c.Q[b][i], c.R[b][i], c.Pos[b][i], c.Big[b][i] = rq.Q, rq.R, rq.Pos, rq.Big
		}
	}
	return c, traces, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
