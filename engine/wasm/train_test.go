package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	for range steps {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
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
}
