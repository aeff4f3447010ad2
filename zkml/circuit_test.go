package zkml

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
)

// tinyModel is a conv 1x6x6 -> 2x4x4 (3x3, stride 1), a dense 32 -> 6 and
// a dense 6 -> 4: both layer shapes and both hidden requantisations, small
// enough to prove in milliseconds.
func tinyModel(seed uint64) *Model {
	r := rand.New(rand.NewPCG(seed, 1))
	w := func(n int) []int8 {
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(r.IntN(255) - 127)
		}
		return v
	}
	b := func(n int, scale int) []int32 {
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(r.IntN(2*scale+1) - scale)
		}
		return v
	}
	return &Model{Layers: []Layer{
		{Kind: Conv, InC: 1, InH: 6, InW: 6, OutC: 2, K: 3, Stride: 1, M: 3, S: 9, W: w(18), B: b(2, 5000)},
		{Kind: Dense, In: 32, Out: 6, M: 5, S: 11, W: w(192), B: b(6, 20000)},
		{Kind: Dense, In: 6, Out: 4, W: w(24), B: b(4, 3000)},
	}}
}

func tinyInputs(seed uint64, n, size int) [][]int8 {
	r := rand.New(rand.NewPCG(seed, 2))
	in := make([][]int8, n)
	for i := range in {
		in[i] = make([]int8, size)
		for j := range in[i] {
			in[i][j] = int8(r.IntN(256) - 128)
		}
	}
	return in
}

type tinySetup struct {
	m      *Model
	inputs [][]int8
	cs     constraint.ConstraintSystem
	pk     groth16.ProvingKey
	vk     groth16.VerifyingKey
}

var (
	tinyOnce sync.Once
	tiny     tinySetup
	tinyErr  error
)

// tinyCircuit compiles and sets up the tiny model for a batch of 3, once
// per test binary.
func tinyCircuit(t *testing.T) *tinySetup {
	t.Helper()
	tinyOnce.Do(func() {
		tiny.m = tinyModel(7)
		tiny.inputs = tinyInputs(7, 3, tiny.m.InLen())
		tiny.cs, tinyErr = Compile(tiny.m, 3)
		if tinyErr != nil {
			return
		}
		tiny.pk, tiny.vk, tinyErr = SetupSingleParty(tiny.cs)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return &tiny
}

// solve reports whether an assignment satisfies the compiled circuit, by
// running the Groth16 prover (which runs the solver first).
func (s *tinySetup) prove(c *Circuit) error {
	w, err := frontend.NewWitness(c, Curve.ScalarField())
	if err != nil {
		return err
	}
	_, err = groth16.Prove(s.cs, s.pk, w)
	return err
}

func TestReferenceBehaviour(t *testing.T) {
	s := tinyCircuit(t)
	_, traces, err := Assign(s.m, s.inputs)
	if err != nil {
		t.Fatal(err)
	}
	// The tiny model must exercise every branch the circuit constrains,
	// or the under-constraint suite below would test nothing.
	var neg, zero, mid, clamped int
	for _, tr := range traces {
		for _, rq := range tr.Requants {
			switch {
			case rq.Q < 0:
				neg++
			case rq.Q == 0:
				zero++
			case rq.Q > 127:
				clamped++
			default:
				mid++
			}
			if want := min(max(rq.Q, 0), 127); rq.Y != want {
				t.Fatalf("requant %+v: y = %d, want %d", rq, rq.Y, want)
			}
		}
	}
	if neg == 0 || mid == 0 || clamped == 0 {
		t.Fatalf("tiny model does not cover the ReLU branches: %d negative, %d zero, %d in range, %d clamped", neg, zero, mid, clamped)
	}
	classes := map[int]bool{}
	for _, tr := range traces {
		classes[tr.Class] = true
	}
	if len(classes) < 2 {
		t.Fatalf("tiny inputs all give class %v: the argmax is not exercised", classes)
	}
	// A hand check of the requantisation's rounding: (acc*M + 2^(S-1)) >> S
	// rounds half up, and floors negatives.
	for _, tc := range []struct {
		acc, m int64
		s      int
		q      int64
	}{{acc: 5, m: 1, s: 1, q: 3}, {acc: -5, m: 1, s: 1, q: -2}, {acc: 100, m: 3, s: 4, q: 19}, {acc: -100, m: 3, s: 4, q: -19}} {
		m := &Model{Layers: []Layer{
			{Kind: Dense, In: 1, Out: 1, M: tc.m, S: tc.s, W: []int8{1}, B: []int32{int32(tc.acc)}},
			{Kind: Dense, In: 1, Out: 1, W: []int8{1}, B: []int32{0}},
		}}
		tr, err := m.Infer([]int8{0})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Requants[0].Q != tc.q {
			t.Errorf("acc %d m %d s %d: q = %d, want %d", tc.acc, tc.m, tc.s, tr.Requants[0].Q, tc.q)
		}
	}
}

func TestProveVerifyTiny(t *testing.T) {
	s := tinyCircuit(t)
	p, err := Prove(s.cs, s.pk, s.m, s.inputs)
	if err != nil {
		t.Fatal(err)
	}
	for b, x := range s.inputs {
		tr, _ := s.m.Infer(x)
		if p.Statement.Classes[b] != tr.Class || !equal(p.Statement.Logits[b], tr.Logits) {
			t.Fatalf("item %d: proved %v class %d, reference %v class %d", b, p.Statement.Logits[b], p.Statement.Classes[b], tr.Logits, tr.Class)
		}
	}
	in, out := s.m.InLen(), s.m.OutLen()
	if err := Verify(s.vk, p.Proof, &p.Statement, in, out); err != nil {
		t.Fatalf("a true proof: %v", err)
	}
	raw, err := p.ProofBytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 300 {
		t.Errorf("proof is %d bytes, want <= 300", len(raw))
	}
	back, err := ReadProof(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(s.vk, back, &p.Statement, in, out); err != nil {
		t.Fatalf("the decoded proof: %v", err)
	}

	// Another verifying key: the same circuit, another setup.
	_, vk2, err := SetupSingleParty(s.cs)
	if err != nil {
		t.Fatal(err)
	}
	other := func(f func(st *Statement)) *Statement {
		st := p.Statement
		st.Inputs = clone2(st.Inputs)
		st.Logits = clone2(st.Logits)
		st.Classes = append([]int(nil), st.Classes...)
		st.Commitment = new(big.Int).Set(st.Commitment)
		f(&st)
		return &st
	}
	for _, tc := range []struct {
		name  string
		vk    groth16.VerifyingKey
		proof []byte
		st    *Statement
		want  string
	}{
		{"another verifying key", vk2, raw, &p.Statement, "proof does not verify"},
		{"another input", s.vk, raw, other(func(st *Statement) { st.Inputs[1][4]++ }), "proof does not verify"},
		{"another logit", s.vk, raw, other(func(st *Statement) { st.Logits[2][0]-- }), "proof does not verify"},
		{"another class", s.vk, raw, other(func(st *Statement) { st.Classes[0] = (st.Classes[0] + 1) % out }), "proof does not verify"},
		{"another commitment", s.vk, raw, other(func(st *Statement) { st.Commitment.Add(st.Commitment, big.NewInt(1)) }), "proof does not verify"},
		{"fewer items than the key", s.vk, raw, other(func(st *Statement) {
			st.Inputs, st.Logits, st.Classes = st.Inputs[:2], st.Logits[:2], st.Classes[:2]
		}), "another circuit or batch size"},
		{"truncated proof", s.vk, raw[:len(raw)-5], &p.Statement, "malformed proof"},
		{"trailing bytes", s.vk, append(append([]byte(nil), raw...), 0), &p.Statement, "malformed proof: 1 trailing bytes"},
		{"flipped byte", s.vk, flip(raw, 40), &p.Statement, ""},
		{"short input vector", s.vk, raw, other(func(st *Statement) { st.Inputs[0] = st.Inputs[0][1:] }), "statement item 0 has 35 inputs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := ReadProof(tc.proof)
			if err == nil {
				err = Verify(tc.vk, pr, tc.st, in, out)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestUnderConstrained builds wrong witnesses the way a cheating prover
// would: one value is wrong and everything after it is computed honestly
// from it (later layers, logits, class), so the public outputs agree with
// the wrong value and only the constraint under test can refuse it. Each
// must fail to prove.
func TestUnderConstrained(t *testing.T) {
	s := tinyCircuit(t)
	good, traces, err := Assign(s.m, s.inputs)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.prove(good); err != nil {
		t.Fatalf("the true witness: %v", err)
	}
	com := good.Commitment.(*big.Int)
	xs := make([][]int64, len(s.inputs))
	for i, x := range s.inputs {
		xs[i] = widen(x)
	}
	// find returns (batch item, hidden neuron) of the first neuron whose
	// requantisation satisfies f.
	find := func(f func(Requant) bool) (int, int) {
		for b, tr := range traces {
			for i, rq := range tr.Requants {
				if f(rq) {
					return b, i
				}
			}
		}
		t.Fatal("no neuron of that kind")
		return 0, 0
	}
	// at changes the witness of the first neuron satisfying f.
	at := func(f func(Requant) bool, change func(rq *Requant)) func(item, n int, rq *Requant) {
		b0, n0 := find(f)
		return func(item, n int, rq *Requant) {
			if item == b0 && n == n0 {
				change(rq)
			}
		}
	}
	pos := func(rq Requant) bool { return rq.Q > 0 && rq.Q < 127 }
	neg := func(rq Requant) bool { return rq.Q < 0 }
	large := func(rq Requant) bool { return rq.Q > 128 }
	shift := int64(1) << s.m.Layers[0].S // the first hidden neurons are the conv's

	type wrong struct {
		name string
		hook func(item, n int, rq *Requant)
		w    func(w, b [][]int64)              // other parameters (the commitment stays)
		x    func(xs [][]int64)                // other inputs
		out  func(c *Circuit, traces []*Trace) // other public outputs or selector
	}
	for _, tc := range []wrong{
		{name: "relu zeroes a positive value", hook: at(pos, func(rq *Requant) { rq.Pos = 0 })},
		{name: "relu passes a negative value", hook: at(neg, func(rq *Requant) { rq.Pos = 1 })},
		{name: "relu selector not boolean", hook: at(pos, func(rq *Requant) { rq.Pos = 2 })},
		{name: "clamp skipped on a large value", hook: at(large, func(rq *Requant) { rq.Big = 0 })},
		{name: "clamp applied to a small value", hook: at(pos, func(rq *Requant) { rq.Big = 1 })},
		// big = 2 turns y into 254-relu and passes the clamp's range
		// check for relu >= 128: only the boolean constraint refuses it.
		{name: "clamp selector not boolean", hook: at(large, func(rq *Requant) { rq.Big = 2 })},
		{name: "requant quotient off by one", hook: at(pos, func(rq *Requant) { rq.Q++ })},
		{name: "requant quotient+1, remainder-2^S", hook: at(pos, func(rq *Requant) { rq.Q++; rq.R -= shift })},
		{name: "requant quotient-1, remainder+2^S", hook: at(pos, func(rq *Requant) { rq.Q--; rq.R += shift })},
		{name: "requant remainder off by one", hook: at(pos, func(rq *Requant) { rq.R++ })},
		{name: "argmax picks another class", out: func(c *Circuit, tr []*Trace) {
			cl := tr[0].Class
			o := (cl + 1) % s.m.OutLen()
			c.Sel[0][cl], c.Sel[0][o], c.Classes[0] = 0, 1, o
		}},
		{name: "argmax class without its selector", out: func(c *Circuit, tr []*Trace) { c.Classes[0] = (tr[0].Class + 1) % s.m.OutLen() }},
		{name: "argmax two selectors", out: func(c *Circuit, tr []*Trace) { c.Sel[1][(tr[1].Class+1)%s.m.OutLen()] = 1 }},
		{name: "argmax two selectors, index sum kept", out: func(c *Circuit, tr []*Trace) {
			for b, t := range tr {
				if t.Class != 0 { // selectors 0 and class sum to the class
					c.Sel[b][0] = 1
					return
				}
			}
			panic("every tiny item has class 0")
		}},
		{name: "a wrong logit", out: func(c *Circuit, tr []*Trace) { c.Logits[2][1] = tr[2].Logits[1] + 1 }},
		{name: "other weights, the committed ones claimed", w: func(w, b [][]int64) { w[1][5] ^= 1 }},
		{name: "other bias, the committed ones claimed", w: func(w, b [][]int64) { b[0][1]++ }},
		{name: "weights that pack to the committed ones", w: func(w, b [][]int64) {
			// w0+256 and w1-1 give the same packed field element:
			// only the int8 range checks refuse them.
			w[0][0] += 256
			w[0][1]--
		}},
		{name: "input out of int8", x: func(xs [][]int64) { xs[0][0] = 200 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, b := s.m.params()
			in := clone2(xs)
			if tc.w != nil {
				tc.w(w, b)
			}
			if tc.x != nil {
				tc.x(in)
			}
			c, tr, err := assign(s.m, in, w, b, com, tc.hook)
			if err != nil {
				t.Fatal(err)
			}
			if tc.out != nil {
				tc.out(c, tr)
			}
			if err := s.prove(c); err == nil {
				t.Fatal("a wrong witness was proved")
			}
		})
	}

	// Other weights with their own commitment prove: the refusal above
	// is the commitment's doing, not a broken witness.
	t.Run("other weights, their own commitment", func(t *testing.T) {
		m2 := tinyModel(7)
		m2.Layers[1].W[5] ^= 1
		c, _, err := Assign(m2, s.inputs)
		if err != nil {
			t.Fatal(err)
		}
		if c.Commitment.(*big.Int).Cmp(com) == 0 {
			t.Fatal("other weights, same commitment")
		}
		if err := s.prove(c); err != nil {
			t.Fatalf("other weights with their own commitment: %v", err)
		}
	})
	// The hook with no change gives the true witness back, so the cases
	// above fail by their change alone.
	t.Run("hook without change", func(t *testing.T) {
		w, b := s.m.params()
		c, _, err := assign(s.m, clone2(xs), w, b, com, func(int, int, *Requant) {})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.prove(c); err != nil {
			t.Fatal(err)
		}
	})
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clone2[T any](v [][]T) [][]T {
	out := make([][]T, len(v))
	for i := range v {
		out[i] = append([]T(nil), v[i]...)
	}
	return out
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

// TestArgmaxTie: on equal logits the class is the lowest index; a witness
// claiming the later one is refused, and so are a non-boolean and an
// empty selector.
func TestArgmaxTie(t *testing.T) {
	m := &Model{Layers: []Layer{
		{Kind: Dense, In: 2, Out: 2, M: 1, S: 1, W: []int8{3, -1, 2, 5}, B: []int32{1, -4}},
		{Kind: Dense, In: 2, Out: 3, W: []int8{1, 1, 4, -2, 4, -2}, B: []int32{-100, -40, -40}},
	}}
	in := [][]int8{{20, 9}}
	cs, err := Compile(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, tr, err := Assign(m, in)
	if err != nil {
		t.Fatal(err)
	}
	if tr[0].Logits[1] != tr[0].Logits[2] || tr[0].Class != 1 {
		t.Fatalf("logits %v class %d: want a tie of 1 and 2, class 1", tr[0].Logits, tr[0].Class)
	}
	w, _ := frontend.NewWitness(c, Curve.ScalarField())
	if err := cs.IsSolved(w); err != nil {
		t.Fatalf("the true witness: %v", err)
	}
	c.Sel[0][1], c.Sel[0][2], c.Classes[0] = 0, 1, 2
	w, _ = frontend.NewWitness(c, Curve.ScalarField())
	if cs.IsSolved(w) == nil {
		t.Fatal("the later of two equal logits was accepted as the class")
	}
	// A non-boolean selector (-1, 2, 0) keeps Σs = 1 and Σj·s = 2 and
	// passes every argmax range check (v = -3): only the boolean
	// constraints refuse class 2.
	c.Sel[0][0], c.Sel[0][1], c.Sel[0][2], c.Classes[0] = -1, 2, 0, 2
	w, _ = frontend.NewWitness(c, Curve.ScalarField())
	if cs.IsSolved(w) == nil {
		t.Fatal("a non-boolean selector was accepted")
	}
	c.Sel[0][0], c.Sel[0][1] = 0, 0
	// No selector at all and class 0: every logit is negative, so only
	// the one-hot sum refuses it.
	c.Sel[0][2], c.Classes[0] = 0, 0
	w, _ = frontend.NewWitness(c, Curve.ScalarField())
	if cs.IsSolved(w) == nil {
		t.Fatalf("logits %v: an empty selector was accepted for class 0", tr[0].Logits)
	}
}
