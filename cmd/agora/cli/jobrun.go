package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
)

// jobRunReport is what `agora job run` prints.
type jobRunReport struct {
	Module      string            `json:"module_hash"`
	Status      string            `json:"status"` // done or failed
	Failure     string            `json:"failure,omitempty"`
	GasUsed     uint64            `json:"gas_used"`
	Steps       uint64            `json:"steps"`
	Checkpoints []wasm.Checkpoint `json:"checkpoints"`
	Results     []jobResultBlob   `json:"results"`
}

type jobResultBlob struct {
	Name   string `json:"name"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	File   string `json:"file,omitempty"`
}

// newJobRunCmd is `agora job run`: a job on this machine, as a provider
// would run it, printing what it would commit.
func newJobRunCmd() *cobra.Command {
	var (
		module, example, stdinFile, seedHex, outDir, output string
		inputs, args                                        []string
		gas, every                                          uint64
		pages                                               uint32
		interp, quiet                                       bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] [-- job args...]",
		Short: "Run a WASM job locally: gas, steps, checkpoints (state hashes) and result hashes",
		Long: `Runs a module on this machine exactly as a provider would: metered, with the
virtual WASI (arguments, --input files under /in, --stdin, the seeded random
stream, the gas clock) and state hashes every --checkpoint-every steps. The
module exports init and step (the job ABI) or is a plain WASI command
(_start, one step). --example builds one of the example jobs (raytrace,
ngram, memtouch, echo) with the local Go toolchain instead of --module.
Results (stdout, stderr, out/NAME for each file written under /out) are
written to --out when given.`,
		Example: `  agora job run --example raytrace --out /tmp/render -- 320 240 16
  agora job run --module ngram.wasm --input corpus.txt=brown.txt --checkpoint-every 10`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, rest []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if (module == "") == (example == "") {
				return errors.New("give exactly one of --module and --example")
			}
			ctx := ctxOr(cmd.Context())
			var bin []byte
			var err error
			if module != "" {
				if bin, err = os.ReadFile(module); err != nil {
					return fmt.Errorf("read module: %w", err)
				}
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "building example %s (GOOS=wasip1 GOARCH=wasm)\n", example)
				if bin, err = examples.Build(ctx, example); err != nil {
					return err
				}
			}
			job := wasm.Job{Args: append(append([]string(nil), args...), rest...), Gas: gas, MemoryPages: pages, CheckpointEvery: every}
			for _, in := range inputs {
				name, file, ok := strings.Cut(in, "=")
				if !ok {
					name, file = filepath.Base(in), in
				}
				data, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("input %s: %w", name, err)
				}
				job.Inputs = append(job.Inputs, wasm.Blob{Name: name, Data: data})
			}
			if stdinFile != "" {
				if job.Stdin, err = os.ReadFile(stdinFile); err != nil {
					return fmt.Errorf("stdin: %w", err)
				}
			}
			if seedHex != "" {
				s, err := hex.DecodeString(seedHex)
				if err != nil || len(s) != 32 {
					return fmt.Errorf("--seed must be 64 hex digits")
				}
				copy(job.Seed[:], s)
			}
			if !quiet {
				job.Progress = func(c wasm.Checkpoint) {
					fmt.Fprintf(cmd.ErrOrStderr(), "checkpoint step %d gas %d state %x\n", c.Step, c.GasUsed, c.State)
				}
			}
			eng, err := wasm.NewEngine(ctx, wasm.Options{Interpreter: interp})
			if err != nil {
				return err
			}
			defer eng.Close(ctx)
			m, err := eng.Compile(ctx, bin)
			if err != nil {
				return err
			}
			res, err := m.Run(ctx, job)
			if err != nil {
				return err
			}
			rep := jobRunReport{Module: hex.EncodeToString(m.Hash[:]), Status: "done", GasUsed: res.GasUsed, Steps: res.Steps, Checkpoints: res.Checkpoints}
			if res.Failure != nil {
				rep.Status, rep.Failure = "failed", res.Failure.Error()
			}
			if outDir != "" {
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return err
				}
			}
			for _, b := range res.Outputs {
				h := sha256.Sum256(b.Data)
				r := jobResultBlob{Name: b.Name, Bytes: len(b.Data), SHA256: hex.EncodeToString(h[:])}
				if outDir != "" {
					r.File = filepath.Join(outDir, filepath.FromSlash(b.Name))
					if err := os.MkdirAll(filepath.Dir(r.File), 0o755); err != nil {
						return err
					}
					if err := os.WriteFile(r.File, b.Data, 0o644); err != nil {
						return err
					}
				}
				rep.Results = append(rep.Results, r)
			}
			err = printer{w: cmd.OutOrStdout(), json: output == "json"}.print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "module   %s\nstatus   %s\n", rep.Module, rep.Status)
				if rep.Failure != "" {
					fmt.Fprintf(w, "failure  %s\n", rep.Failure)
				}
				fmt.Fprintf(w, "gas      %d\nsteps    %d\n", rep.GasUsed, rep.Steps)
				for _, c := range rep.Checkpoints {
					fmt.Fprintf(w, "checkpoint step %d gas %d state %x\n", c.Step, c.GasUsed, c.State)
				}
				for _, r := range rep.Results {
					fmt.Fprintf(w, "result   %s %d bytes sha256 %s", r.Name, r.Bytes, r.SHA256)
					if r.File != "" {
						fmt.Fprintf(w, " → %s", r.File)
					}
					fmt.Fprintln(w)
				}
			})
			if err == nil && res.Failure != nil {
				return fmt.Errorf("the job failed: %s", res.Failure.Reason)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&module, "module", "", "the .wasm module")
	f.StringVar(&example, "example", "", "build and run an example job: "+strings.Join(append(examples.Names, examples.InModule...), ", ")+" (train: from inside an Agora checkout)")
	f.StringArrayVar(&inputs, "input", nil, "an input file: NAME=FILE (or FILE), read-only at /in/NAME (repeatable)")
	f.StringVar(&stdinFile, "stdin", "", "a file given to the job as stdin")
	f.StringSliceVar(&args, "args", nil, "job arguments (comma-separated; or after --)")
	f.Uint64Var(&gas, "gas", 1<<40, "gas limit")
	f.Uint32Var(&pages, "memory-pages", wasm.DefaultMemoryPages, "memory cap in 64 KiB pages")
	f.Uint64Var(&every, "checkpoint-every", 0, "steps between checkpoints (0: only the first and the last)")
	f.StringVar(&seedHex, "seed", "", "the random stream's seed, 64 hex digits (default zero)")
	f.StringVar(&outDir, "out", "", "write the result blobs to this directory")
	f.BoolVar(&interp, "interpreter", false, "run on wazero's interpreter instead of its compiler (same results)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines on stderr")
	addOutputFlag(cmd, &output)
	return cmd
}
