package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/train"
)

// trainCorpus is a few KB of text: enough windows for the tiny preset.
var trainCorpus = strings.Repeat("the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "+
	"every good boy deserves fruit, and the early bird catches the worm. ", 30)

// TestTrainingJob: the train example — Agora's trainer as a compute job,
// one optimisation step per job step — writes exactly the model the native
// trainer writes for the same corpus, preset, steps and seed (the WASM
// build runs the trainer's pure-Go kernels, which give the SIMD kernels'
// bits), its checkpoints hash the whole training state step by step, and
// a replay of one step from a checkpoint reaches the next one's hash.
func TestTrainingJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the trainer as a WASM job")
	}
	ctx := context.Background()
	const steps = 3
	m := compile(t, false, example(t, "train"))
	job := Job{Args: []string{"tiny", "3", "7"}, Inputs: []Blob{{Name: "corpus.txt", Data: []byte(trainCorpus)}}, Gas: 1 << 44, CheckpointEvery: 1}
	r, err := m.Run(ctx, job)
	if err != nil || r.Failure != nil {
		t.Fatalf("%v %+v", err, r.Failure)
	}
	outs := outputs(r)
	if r.Steps != steps || len(r.Checkpoints) != steps+1 {
		t.Fatalf("%d steps, %d checkpoints; stdout %s", r.Steps, len(r.Checkpoints), outs["stdout"])
	}

	// The native trainer on the same data, the way `agora train` and the
	// job read it.
	p := train.Presets["tiny"]
	cfg, hyp := p.Config, p.Hyper
	hyp.Steps, hyp.Seed = steps, 7
	hyp.Warmup = min(hyp.Warmup, max(steps/10, 1))
	tok, err := train.Tokenizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(trainCorpus, true, false)
	cut := int(float64(len(ids)) * (1 - 0.1))
	tr, err := train.New(cfg, hyp, train.NewData(ids[:cut], cfg.SeqLen, 7), 2)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for range steps {
		sr, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, sr.Loss)
	}
	lj, _ := json.Marshal(train.LossLog{Preset: "tiny", Steps: steps, Seed: 7, Loss: losses})
	if got := outs["out/loss.json"]; string(got) != string(lj)+"\n" {
		t.Fatalf("the job's loss log %s, the native trainer's %s", got, lj)
	}
	var want bytes.Buffer
	if err := tr.WriteGGUFTo(&want, gguf.F32, "agora-trained-tiny"); err != nil {
		t.Fatal(err)
	}
	got := outs["out/model.gguf"]
	if len(got) == 0 || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the job's model (%d bytes) is not the native trainer's (%d bytes); stdout:\n%s", len(got), want.Len(), outs["stdout"])
	}
	if sum := sha256.Sum256(want.Bytes()); string(outs["out/model.gguf.sha256"]) != hex.EncodeToString(sum[:])+"  model.gguf\n" {
		t.Fatalf("the job's digest %q is not the model's sha256 %x", outs["out/model.gguf.sha256"], sum)
	}
	if !strings.Contains(string(outs["stdout"]), "state "+tr.Hash()) {
		t.Fatalf("stdout lacks the native state hash %s:\n%s", tr.Hash(), outs["stdout"])
	}
	// Every step changes the state; a replay of step 2 from the state
	// after step 1 reaches checkpoint 2 (what a referee does in a dispute).
	for i := 1; i < len(r.Checkpoints); i++ {
		if r.Checkpoints[i].State == r.Checkpoints[i-1].State {
			t.Fatalf("checkpoints %d and %d have the same hash", i-1, i)
		}
	}
	in, err := m.Start(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Step(ctx); err != nil {
		t.Fatal(err)
	}
	pre := in.Snapshot()
	in.Close(ctx)
	sr, err := m.ReplayStep(ctx, job, pre)
	if err != nil || sr.Failure != nil {
		t.Fatalf("replay: %v %v", err, sr.Failure)
	}
	if sr.Post != r.Checkpoints[2].State || sr.GasUsed != r.Checkpoints[2].GasUsed {
		t.Fatalf("replayed step 2: %x (%d gas), the run's checkpoint %x (%d gas)", sr.Post, sr.GasUsed, r.Checkpoints[2].State, r.Checkpoints[2].GasUsed)
	}
	t.Logf("%d steps, %d gas (%.1f G per step); model %d bytes", r.Steps, r.GasUsed, float64(r.GasUsed)/steps/1e9, len(got))

	// Continued from a base, with a hyperparameter of its own: the job's
	// model as input base.gguf (not corpus) and lr=0.002 give the native
	// trainer's model from the same base and hyperparameters.
	job2 := Job{Args: []string{"tiny", "2", "8", "lr=0.002"}, Inputs: []Blob{{Name: "base.gguf", Data: got}, {Name: "corpus.txt", Data: []byte(trainCorpus)}}, Gas: 1 << 44, CheckpointEvery: 1}
	r2, err := m.Run(ctx, job2)
	if err != nil || r2.Failure != nil {
		t.Fatalf("%v %+v", err, r2.Failure)
	}
	hyp2, err := train.RunHyper(p, 2, 8, []string{"lr=0.002"})
	if err != nil {
		t.Fatal(err)
	}
	tr2, err := train.New(cfg, hyp2, train.NewData(ids[:cut], cfg.SeqLen, 8), 2)
	if err != nil {
		t.Fatal(err)
	}
	base, err := gguf.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := train.LoadBase(tr2, base); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := tr2.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	var want2 bytes.Buffer
	if err := tr2.WriteGGUFTo(&want2, gguf.F32, "agora-trained-tiny"); err != nil {
		t.Fatal(err)
	}
	if got2 := outputs(r2)["out/model.gguf"]; !bytes.Equal(got2, want2.Bytes()) || bytes.Equal(got2, got) {
		t.Fatalf("the job continued from base.gguf (%d bytes) is not the native trainer's from the same base (%d bytes); stdout:\n%s", len(got2), want2.Len(), outputs(r2)["stdout"])
	}
	if !strings.Contains(string(outputs(r2)["stdout"]), "starting from the base model") {
		t.Fatalf("stdout: %s", outputs(r2)["stdout"])
	}
}
