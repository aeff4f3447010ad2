package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/atomicfile"
	"github.com/agoranet/agora/train"
)

// trainLog is the JSON record of a run (--log): the loss curve, the
// checkpoint chain and the held-out evaluation.
type trainLog struct {
	Preset         string       `json:"preset,omitempty"`
	Config         train.Config `json:"config"`
	Hyper          train.Hyper  `json:"hyper"`
	Params         int          `json:"params"`
	DataRoot       string       `json:"data_root"`
	TrainTokens    int          `json:"train_tokens"`
	HeldOutTokens  int          `json:"heldout_tokens"`
	ResumedFrom    int          `json:"resumed_from,omitempty"`
	Base           string       `json:"base,omitempty"` // sha256 of the base model the run started from
	Threads        int          `json:"threads"`
	Curve          []curvePoint `json:"curve"`
	Checkpoints    []ckptRecord `json:"checkpoints"`
	TokensPerSec   float64      `json:"tokens_per_sec"`
	HashSeconds    float64      `json:"hash_seconds"`
	TrainSeconds   float64      `json:"train_seconds"`
	HeldOutLoss    float64      `json:"heldout_loss,omitempty"`
	HeldOutPPL     float64      `json:"heldout_ppl,omitempty"`
	BigramPPL      float64      `json:"bigram_ppl,omitempty"`
	EvalTokens     int          `json:"eval_tokens,omitempty"`
	Model          string       `json:"model,omitempty"`
	ModelSHA256    string       `json:"model_sha256,omitempty"`
	FinalStateHash string       `json:"final_state_hash"`
	StoppedEarly   bool         `json:"stopped_early,omitempty"`
	CheckpointFile string       `json:"checkpoint_file"`
}

type curvePoint struct {
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"`
}

type ckptRecord struct {
	Step int    `json:"step"`
	Hash string `json:"hash"`
}

func trainCmd(g *globals) *cobra.Command {
	var (
		data, preset, out, resume, ckpt, logPath, typ, base string
		hyper                                               []string
		steps, threads, every, stopAfter, evalWin           int
		seed                                                uint64
		holdout                                             float64
	)
	cmd := &cobra.Command{
		Use:   "train --data FILE|DIR --preset tiny|small --steps N --out model.gguf",
		Short: "Train a small llama model on text, deterministically, and write it as GGUF",
		Long: `Train a llama-family model from scratch on a text file or a directory of text files
(read in path order). The run is a pure function of the data, the preset, the seed and the
step count: every K steps the state (weights, AdamW moments, step, data cursor, RNG) is
hashed and saved to a checkpoint (--resume continues it bit for bit, whatever --threads).
The last tenth of the tokens is held out: the model's perplexity on it is printed next to a
bigram model's. The tokenizer is the engine's generated vocabulary for the preset.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" || out == "" {
				return fmt.Errorf("--data and --out are required")
			}
			p, ok := train.Presets[preset]
			if !ok {
				return fmt.Errorf("--preset %q: want one of %s", preset, train.PresetNames)
			}
			if steps <= 0 {
				return fmt.Errorf("--steps %d: want at least 1", steps)
			}
			if every <= 0 {
				return fmt.Errorf("--checkpoint-every %d: want at least 1", every)
			}
			if holdout <= 0 || holdout >= 1 {
				return fmt.Errorf("--holdout %g: want a fraction between 0 and 1", holdout)
			}
			wtype, err := parseTensorType(typ)
			if err != nil {
				return err
			}
			if threads <= 0 {
				threads = runtime.NumCPU()
			}
			if ckpt == "" {
				ckpt = out + ".ckpt"
			}
			if logPath == "" {
				logPath = out + ".json"
			}
			cfg := p.Config
			hyp, err := train.RunHyper(p, steps, seed, hyper)
			if err != nil {
				return err
			}

			texts, err := trainReadTexts(data)
			if err != nil {
				return err
			}
			tok, err := train.Tokenizer(cfg)
			if err != nil {
				return err
			}
			ids := trainTokenize(tok, texts)
			cut := int(float64(len(ids)) * (1 - holdout))
			if len(ids)-cut < cfg.SeqLen+1 || cut < cfg.SeqLen+1 {
				return fmt.Errorf("%s: %d tokens are too few for preset %s (windows of %d tokens, %.0f%% held out)", data, len(ids), preset, cfg.SeqLen+1, holdout*100)
			}
			trainData := train.NewData(ids[:cut], cfg.SeqLen, seed)
			held := train.NewData(ids[cut:], cfg.SeqLen, seed)

			if base != "" && resume != "" {
				return fmt.Errorf("give --base or --resume, not both: a resumed run's weights are its checkpoint's")
			}
			var tr *train.Trainer
			if resume != "" {
				tr, err = train.Load(resume, trainData, threads)
				if err != nil {
					return err
				}
				if tr.Hyp != hyp || tr.Cfg != cfg {
					return fmt.Errorf("--resume %s: the checkpoint's run (%+v, %d steps, seed %d) is not this one (preset %s, %d steps, seed %d)", resume, tr.Cfg, tr.Hyp.Steps, tr.Hyp.Seed, preset, steps, seed)
				}
			} else if tr, err = train.New(cfg, hyp, trainData, threads); err != nil {
				return err
			}
			var baseSum string
			if base != "" {
				raw, err := os.ReadFile(base)
				if err != nil {
					return fmt.Errorf("--base: %w", err)
				}
				f, err := gguf.Parse(raw)
				if err != nil {
					return fmt.Errorf("--base %s: %w", base, err)
				}
				if err := train.LoadBase(tr, f); err != nil {
					return fmt.Errorf("--base %s: %w", base, err)
				}
				sum := sha256.Sum256(raw)
				baseSum = hex.EncodeToString(sum[:])
			}
			lg := trainLog{Preset: preset, Config: cfg, Hyper: hyp, Params: cfg.ParamCount(), DataRoot: trainData.Root(),
				TrainTokens: trainData.Tokens(), HeldOutTokens: held.Tokens(), ResumedFrom: tr.Step, Threads: threads, CheckpointFile: ckpt, Base: baseSum}
			if tr.Step > 0 {
				// a resumed run's log continues the stopped run's (its points up
				// to the checkpoint), when that log is of the same run
				if raw, err := os.ReadFile(logPath); err == nil {
					var prev trainLog
					if json.Unmarshal(raw, &prev) == nil && prev.DataRoot == lg.DataRoot && prev.Hyper == hyp && prev.Config == cfg {
						for _, c := range prev.Curve {
							if c.Step <= tr.Step {
								lg.Curve = append(lg.Curve, c)
							}
						}
						for _, c := range prev.Checkpoints {
							if c.Step == tr.Step && c.Hash != tr.Hash() {
								return fmt.Errorf("--resume %s: its state hash at step %d is %s, but the run's log (%s) recorded %s: the checkpoint was altered or is another run's",
									resume, tr.Step, tr.Hash(), logPath, c.Hash)
							}
							if c.Step <= tr.Step {
								lg.Checkpoints = append(lg.Checkpoints, c)
							}
						}
					}
				}
			}
			fmt.Fprintf(g.out, "training %s: %.2fM parameters, %d training tokens (%d windows), %d held out, data %s, %d threads\n",
				preset, float64(lg.Params)/1e6, trainData.Tokens(), trainData.Windows(), held.Tokens(), trainData.Root()[:16], threads)
			if tr.Step > 0 {
				fmt.Fprintf(g.out, "resumed at step %d (state %s)\n", tr.Step, tr.Hash()[:16])
			}

			last := steps
			if stopAfter > 0 {
				last = min(steps, stopAfter)
			}
			start := time.Now()
			var hashTime time.Duration
			tokens := 0
			report := max(1, steps/50)
			for tr.Step < last {
				res, err := tr.TrainStep()
				if err != nil {
					return err
				}
				tokens += res.Tokens
				lg.Curve = append(lg.Curve, curvePoint{Step: tr.Step, Loss: res.Loss, LR: res.LR, GradNorm: res.GradNorm})
				saved := ""
				if tr.Step%every == 0 || tr.Step == last {
					t0 := time.Now()
					h, err := tr.Save(ckpt)
					if err != nil {
						return err
					}
					hashTime += time.Since(t0)
					lg.Checkpoints = append(lg.Checkpoints, ckptRecord{Step: tr.Step, Hash: h})
					saved = " state " + h[:16]
				}
				if tr.Step%report == 0 || tr.Step == last || saved != "" {
					el := time.Since(start)
					tps := float64(tokens) / el.Seconds()
					eta := time.Duration(float64(last-tr.Step) * float64(el) / float64(tr.Step-lg.ResumedFrom))
					fmt.Fprintf(g.out, "step %d/%d loss %.4f lr %.2e %.0f tok/s eta %s%s\n", tr.Step, steps, res.Loss, res.LR, tps, eta.Round(time.Second), saved)
				}
			}
			el := time.Since(start)
			lg.TrainSeconds, lg.HashSeconds = el.Seconds(), hashTime.Seconds()
			if tokens > 0 {
				lg.TokensPerSec = float64(tokens) / (el - hashTime).Seconds()
			}
			lg.FinalStateHash = tr.Hash()
			if tr.Step < steps {
				lg.StoppedEarly = true
				fmt.Fprintf(g.out, "stopped at step %d of %d: resume with --resume %s\n", tr.Step, steps, ckpt)
				return trainWriteJSON(logPath, lg)
			}

			if err := tr.WriteGGUF(out, wtype, "agora-trained-"+preset); err != nil {
				return err
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(raw)
			lg.Model, lg.ModelSHA256 = out, hex.EncodeToString(sum[:])
			lg.HeldOutLoss = tr.Eval(held, evalWin, hyp.Batch)
			lg.HeldOutPPL = math.Exp(lg.HeldOutLoss)
			lg.BigramPPL = math.Exp(train.NewBigram(ids[:cut], cfg.Vocab).Loss(held, evalWin))
			lg.EvalTokens = min(evalWin, held.Windows()) * cfg.SeqLen
			fmt.Fprintf(g.out, "held-out perplexity %.2f (bigram model %.2f) over %d tokens never trained on (F32 weights)\n", lg.HeldOutPPL, lg.BigramPPL, lg.EvalTokens)
			chart := strings.TrimSuffix(logPath, ".json") + ".svg"
			pts := make([]train.Point, len(lg.Curve))
			for i, c := range lg.Curve {
				pts[i] = train.Point{Step: c.Step, Loss: c.Loss}
			}
			title := fmt.Sprintf("agora train: %s, %.2fM parameters, %d steps; bigram model's held-out perplexity %.2f", preset, float64(lg.Params)/1e6, steps, lg.BigramPPL)
			svg := train.LossChartSVG(title, pts, lg.HeldOutLoss)
			if err := atomicfile.Write(chart, 0o644, func(w io.Writer) error { _, err := w.Write(svg); return err }); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "wrote %s (%s, %.1f MB, sha256 %s); loss curve %s, chart %s\n", out, wtype, float64(len(raw))/1e6, lg.ModelSHA256[:16], logPath, chart)
			return trainWriteJSON(logPath, lg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "training text: a file, or a directory of files (read in path order)")
	f.StringVar(&preset, "preset", "tiny", "model shape and hyperparameters: "+train.PresetNames)
	f.IntVar(&steps, "steps", 200, "optimisation steps (the learning-rate schedule's length)")
	f.StringVar(&out, "out", "", "output GGUF model")
	f.StringVar(&resume, "resume", "", "continue the run saved in this checkpoint")
	f.StringSliceVar(&hyper, "hyper", nil, "override the preset's hyperparameters: key=value,... ("+train.HyperKeys+")")
	f.StringVar(&base, "base", "", "start from this F32 model of the preset's shape (e.g. an earlier run's --out) instead of seeded weights")
	f.IntVar(&threads, "threads", 0, "threads (default: all CPUs); results do not depend on it")
	f.Uint64Var(&seed, "seed", 1, "seed of the initial weights and the data order")
	f.IntVar(&every, "checkpoint-every", 100, "hash and save the state every K steps")
	f.StringVar(&ckpt, "checkpoint", "", "checkpoint file (default OUT.ckpt)")
	f.StringVar(&logPath, "log", "", "JSON log of the run: loss curve, checkpoint hashes, perplexities (default OUT.json)")
	f.StringVar(&typ, "type", "f32", "weight type of the written model: f32, f16, q8_0, q4_0, ... (as agora model new)")
	f.IntVar(&stopAfter, "stop-after", 0, "stop (and checkpoint) after this step, to resume later")
	f.IntVar(&evalWin, "eval-windows", 256, "held-out windows evaluated at the end")
	f.Float64Var(&holdout, "holdout", 0.1, "fraction of the tokens (the end) held out of training")
	return cmd
}

// trainReadTexts reads a file, or every regular file under a directory in
// lexical path order (so the token stream does not depend on the file
// system's listing order).
func trainReadTexts(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	var files []string
	if !st.IsDir() {
		files = []string{path}
	} else {
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		sort.Strings(files)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("--data %s: no files", path)
	}
	texts := make([]string, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		texts = append(texts, string(b))
	}
	return texts, nil
}

// tokenize encodes each text with a BOS token in front, concatenated.
func trainTokenize(tok *tokenizer.Tokenizer, texts []string) []int {
	var ids []int
	for _, t := range texts {
		ids = append(ids, tok.Encode(t, true, false)...)
	}
	return ids
}

// trainWriteJSON writes v indented to path.
func trainWriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
