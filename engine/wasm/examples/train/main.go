//go:build wasip1

// Command train is a compute job that trains a small llama-family model
// (the `train` package, the same code as `agora train`): one optimisation
// step per job step, so the job market's checkpoints hash the whole
// training state (weights, AdamW moments, data cursor, RNG: all in linear
// memory) and a dispute bisects to one training step. The corpus is every
// file under /data (a compute-to-data run on a published dataset) or under
// /in, in path order, each encoded with a BOS token; the last 10 % is held
// out, as `agora train` does, so the job's model is byte-identical to
// `agora train --data DIR --preset P --steps N --seed S --threads 1`'s.
// An input named base.gguf is the model to start from (fine-tuning or
// continuing a run: train.LoadBase) instead of the seed's weights.
// Outputs: /out/model.gguf (F32), /out/model.gguf.sha256 (its sha256 in
// sha256sum's form, which `agora model register` puts on chain),
// /out/loss.json (the loss of every step: train.LossLog, which the
// explorer draws) and a line per 10 % of the steps on stdout. Arguments:
// preset steps seed [key=value ...] (default tiny 100 1; the key=value
// pairs override the preset's hyperparameters: train.RunHyper, as
// `agora train --hyper` does).
//
// It imports Agora's packages, so it is built inside the Agora module
// (examples.Build does: GOOS=wasip1 from the source tree).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/train"
)

// basePath is the input a run starts from instead of seeded weights (an
// F32 model of the preset's shape: train.LoadBase); it is not corpus.
const basePath = "/in/base.gguf"

var (
	losses []float64 // per step: /out/loss.json, the explorer's loss chart
	seed   = uint64(1)
	tr     *train.Trainer
	preset = "tiny"
	steps  = 100
	last   train.StepResult
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func texts() []string {
	root := "/data"
	if _, err := os.Stat(root); err != nil {
		root = "/in"
	}
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && p != basePath {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fail(err)
		}
		out = append(out, string(b))
	}
	return out
}

//go:wasmexport init
func jobInit() {
	if len(os.Args) > 1 {
		preset = os.Args[1]
	}
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 1 {
			fail(fmt.Errorf("steps %q: want a positive number", os.Args[2]))
		}
		steps = n
	}
	if len(os.Args) > 3 {
		s, err := strconv.ParseUint(os.Args[3], 10, 64)
		if err != nil {
			fail(fmt.Errorf("seed %q: %w", os.Args[3], err))
		}
		seed = s
	}
	p, ok := train.Presets[preset]
	if !ok {
		fail(fmt.Errorf("unknown preset %q", preset))
	}
	cfg := p.Config
	var hyper []string
	if len(os.Args) > 4 {
		hyper = os.Args[4:]
	}
	hyp, err := train.RunHyper(p, steps, seed, hyper)
	if err != nil {
		fail(err)
	}
	tok, terr := train.Tokenizer(cfg)
	if terr != nil {
		fail(terr)
	}
	var ids []int
	for _, t := range texts() {
		ids = append(ids, tok.Encode(t, true, false)...)
	}
	cut := int(float64(len(ids)) * (1 - 0.1))
	if cut < cfg.SeqLen+1 {
		fail(fmt.Errorf("%d tokens are too few for preset %s", len(ids), preset))
	}
	if tr, err = train.New(cfg, hyp, train.NewData(ids[:cut], cfg.SeqLen, seed), 1); err != nil {
		fail(err)
	}
	if _, err := os.Stat(basePath); err == nil {
		f, err := gguf.Open(basePath)
		if err != nil {
			fail(fmt.Errorf("base model: %w", err))
		}
		if err := train.LoadBase(tr, f); err != nil {
			fail(err)
		}
		f.Close()
		fmt.Println("starting from the base model in", basePath)
	}
	fmt.Printf("training %s: %d parameters, %d training tokens, %d steps\n", preset, cfg.ParamCount(), cut, steps)
}

//go:wasmexport step
func jobStep() int32 {
	var err error
	if last, err = tr.TrainStep(); err != nil {
		fail(err)
	}
	losses = append(losses, last.Loss)
	if tr.Step%max(steps/10, 1) == 0 || tr.Step == steps {
		fmt.Printf("step %d/%d loss %.4f\n", tr.Step, steps, last.Loss)
	}
	if tr.Step < steps {
		return 1
	}
	f, err := os.Create("/out/model.gguf")
	if err != nil {
		fail(err)
	}
	h := sha256.New()
	if err := tr.WriteGGUFTo(io.MultiWriter(f, h), gguf.F32, "agora-trained-"+preset); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	// The digest output (chain/models): the file's sha256 as this job
	// computed it, so registering the model on chain needs no trust in
	// whoever hashes the file later.
	if err := os.WriteFile("/out/model.gguf.sha256", []byte(hex.EncodeToString(h.Sum(nil))+"  model.gguf\n"), 0o644); err != nil {
		fail(err)
	}
	lj, err := json.Marshal(train.LossLog{Preset: preset, Steps: steps, Seed: seed, Loss: losses})
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile("/out/loss.json", append(lj, '\n'), 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("state %s\n", tr.Hash())
	return 0
}

func main() {}
