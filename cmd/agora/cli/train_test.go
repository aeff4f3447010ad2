package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/native"
)

// trainCorpus is a small English corpus: two files (a directory is read in
// path order).
func trainCorpus(t *testing.T) string {
	dir := t.TempDir()
	var a, b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&a, "the quick brown fox %d jumps over the lazy dog. a network of computers shares work and pays for it.\n", i)
		fmt.Fprintf(&b, "once upon a time there was a small robot number %d. it lived in a quiet town and it wanted to sing.\n", i)
	}
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte(b.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte(a.String()), 0o644)
	return dir
}

func readTrainLog(t *testing.T, path string) trainLog {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lg trainLog
	if err := json.Unmarshal(raw, &lg); err != nil {
		t.Fatal(err)
	}
	return lg
}

// TestTrainCommand: `agora train` on a tiny corpus prints progress and
// both perplexities, writes a model the engine loads, a checkpoint whose
// hash the log records, and a JSON loss curve; a run stopped at step 3 and
// resumed ends in the same state and the same model file, at another
// thread count.
func TestTrainCommand(t *testing.T) {
	data := trainCorpus(t)
	dir := t.TempDir()
	full := filepath.Join(dir, "full.gguf")
	code, out, errOut := runCLI("train", "--data", data, "--preset", "tiny", "--steps", "6", "--checkpoint-every", "3", "--out", full, "--threads", "2")
	if code != 0 {
		t.Fatalf("agora train: code %d, %s %s", code, out, errOut)
	}
	t.Log(out)
	for _, re := range []string{
		`training tiny: 0\.\d+M parameters, \d+ training tokens`,
		`step 3/6 loss \d+\.\d+ lr \S+ \d+ tok/s eta \S+ state [0-9a-f]{16}`,
		`step 6/6 loss \d+\.\d+`,
		`held-out perplexity \d+\.\d+ \(bigram model \d+\.\d+\) over \d+ tokens never trained on \(F32 weights\)`,
		`wrote .*full\.gguf \(F32.*chart .*full\.gguf\.svg`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %q", re)
		}
	}
	lg := readTrainLog(t, full+".json")
	if len(lg.Curve) != 6 || lg.Curve[5].Step != 6 || len(lg.Checkpoints) != 2 || lg.Checkpoints[1].Step != 6 {
		t.Fatalf("log: %d curve points, checkpoints %+v", len(lg.Curve), lg.Checkpoints)
	}
	if lg.Checkpoints[1].Hash != lg.FinalStateHash || !(lg.HeldOutPPL > 1) || !(lg.BigramPPL > 1) || lg.Curve[5].Loss >= lg.Curve[0].Loss {
		t.Errorf("log: final hash %s vs checkpoint %s, ppl %v, bigram %v, loss %v -> %v", lg.FinalStateHash, lg.Checkpoints[1].Hash, lg.HeldOutPPL, lg.BigramPPL, lg.Curve[0].Loss, lg.Curve[5].Loss)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "full.gguf.svg"))
	if err != nil || !strings.HasPrefix(string(svg), "<svg ") || !strings.Contains(string(svg), "<polyline") || !strings.Contains(string(svg), "held-out") {
		t.Errorf("loss chart: %v %.200s", err, svg)
	}
	m, err := native.Load(full, native.Options{})
	if err != nil {
		t.Fatalf("the engine cannot load the trained model: %v", err)
	}
	if m.Config.Dim != 64 || m.Config.Layers != 2 {
		t.Errorf("loaded shape %+v", m.Config)
	}
	m.Close()

	// stopped and resumed at another thread count: the same state and model
	part := filepath.Join(dir, "part.gguf")
	if code, out, errOut := runCLI("train", "--data", data, "--steps", "6", "--checkpoint-every", "3", "--out", part, "--threads", "1", "--stop-after", "3"); code != 0 || !strings.Contains(out, "stopped at step 3 of 6") {
		t.Fatalf("stop-after: code %d, %s %s", code, out, errOut)
	}
	if _, err := os.Stat(part); err == nil {
		t.Fatalf("a stopped run wrote the model")
	}
	// A checkpoint whose state is not what the run's log recorded is refused.
	logRaw, err := os.ReadFile(part + ".json")
	if err != nil {
		t.Fatal(err)
	}
	stopped := readTrainLog(t, part+".json")
	forged := strings.Replace(string(logRaw), stopped.Checkpoints[0].Hash, strings.Repeat("0", 64), 1)
	if err := os.WriteFile(part+".json", []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("train", "--data", data, "--steps", "6", "--checkpoint-every", "3", "--out", part, "--threads", "2", "--resume", part+".ckpt"); code == 0 ||
		!strings.Contains(errOut, "the checkpoint was altered or is another run's") {
		t.Fatalf("resume against a log recording another state: code %d, %s %s", code, out, errOut)
	}
	if err := os.WriteFile(part+".json", logRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("train", "--data", data, "--steps", "6", "--checkpoint-every", "3", "--out", part, "--threads", "2", "--resume", part+".ckpt"); code != 0 || !strings.Contains(out, "resumed at step 3") {
		t.Fatalf("resume: code %d, %s %s", code, out, errOut)
	}
	lg2 := readTrainLog(t, part+".json")
	if len(lg2.Curve) != 6 || lg2.Curve[2] != lg.Curve[2] || lg2.Curve[5] != lg.Curve[5] || len(lg2.Checkpoints) != 2 || lg2.Checkpoints[0] != lg.Checkpoints[0] {
		t.Errorf("resumed run's log: curve %+v, checkpoints %+v; want the uninterrupted run's %+v, %+v", lg2.Curve, lg2.Checkpoints, lg.Curve, lg.Checkpoints)
	}
	if lg2.FinalStateHash != lg.FinalStateHash || lg2.ModelSHA256 != lg.ModelSHA256 || lg2.ResumedFrom != 3 {
		t.Errorf("resumed run: state %s model %s (from %d); uninterrupted: state %s model %s", lg2.FinalStateHash, lg2.ModelSHA256, lg2.ResumedFrom, lg.FinalStateHash, lg.ModelSHA256)
	}
}

// TestTrainCommandErrors: bad flags and data are refused with a clear
// error and write nothing.
func TestTrainCommandErrors(t *testing.T) {
	data := trainCorpus(t)
	dir := t.TempDir()
	small := filepath.Join(dir, "small.txt")
	os.WriteFile(small, []byte("too short"), 0o644)
	out := filepath.Join(dir, "m.gguf")
	ckptOther := filepath.Join(dir, "other.ckpt")
	// a checkpoint of another seed
	if code, o, e := runCLI("train", "--data", data, "--steps", "2", "--out", filepath.Join(dir, "o.gguf"), "--checkpoint", ckptOther, "--seed", "9", "--stop-after", "1"); code != 0 {
		t.Fatalf("%s %s", o, e)
	}
	baseModel := filepath.Join(dir, "base.gguf")
	if code, o, e := runCLI("train", "--data", data, "--steps", "2", "--out", baseModel); code != 0 {
		t.Fatalf("%s %s", o, e)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "--data and --out are required"},
		{[]string{"--data", data, "--out", out, "--preset", "huge"}, `--preset "huge": want one of tiny, small`},
		{[]string{"--data", data, "--out", out, "--steps", "0"}, "--steps 0: want at least 1"},
		{[]string{"--data", filepath.Join(dir, "none"), "--out", out}, "--data: stat"},
		{[]string{"--data", small, "--out", out}, "too few for preset tiny"},
		{[]string{"--data", data, "--out", out, "--type", "q9"}, "q9"},
		{[]string{"--data", data, "--out", out, "--steps", "2", "--resume", ckptOther}, "is not this one"},
		{[]string{"--data", data, "--out", out, "--steps", "2", "--base", baseModel, "--resume", ckptOther}, "give --base or --resume, not both"},
		{[]string{"--data", data, "--out", out, "--steps", "2", "--base", small}, "--base " + small},
		{[]string{"--data", data, "--out", out, "--steps", "2", "--preset", "small", "--base", baseModel}, "is not this run's"},
	} {
		code, o, e := runCLI(append([]string{"train"}, tc.args...)...)
		if code != 1 || !strings.Contains(e, tc.want) {
			t.Errorf("agora train %v: code %d, stdout %q, stderr %q; want %q", tc.args, code, o, e, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused run wrote %s", out)
	}
	// A run from a base records its sha256 and starts from its weights.
	if code, o, e := runCLI("train", "--data", data, "--steps", "2", "--out", out, "--base", baseModel, "--seed", "9"); code != 0 {
		t.Fatalf("--base: %s %s", o, e)
	}
	raw, _ := os.ReadFile(baseModel)
	sum := sha256.Sum256(raw)
	if lg := readTrainLog(t, out+".json"); lg.Base != hex.EncodeToString(sum[:]) {
		t.Errorf("the log's base %q, want the base's sha256 %x", lg.Base, sum)
	}
}
