package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/oaisim"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/verify"
)

// ToleranceOptions configure `agora bench tolerance`.
type ToleranceOptions struct {
	Requests int       // honest requests per noise level
	Attacks  int       // cheating requests per attack and setting
	Noise    []float64 // σ of the logit noise of the honest runs
	Out      io.Writer
}

// HonestRow is the tolerance check over honest requests at one noise level.
type HonestRow struct {
	Noise       float64 `json:"noise"`
	Requests    int     `json:"requests"`
	Rejected    int     `json:"rejected"`
	MaxDiffP50  float64 `json:"max_diff_p50"`
	MaxDiffP99  float64 `json:"max_diff_p99"`
	MaxDiffMax  float64 `json:"max_diff_max"`
	MeanDiffMax float64 `json:"mean_diff_max"`
	OverlapMin  float64 `json:"overlap_min"`
	ZMin        float64 `json:"z_min"`
	ZMean       float64 `json:"z_mean"`
	Log10PMin   float64 `json:"log10_p_min"` // the least plausible honest draw: log10 of its Chernoff bound
	FirstReason string  `json:"first_reason,omitempty"`
}

// AttackRow is how often one attack is caught by one audited receipt.
type AttackRow struct {
	Attack   string  `json:"attack"`
	Setting  string  `json:"setting"`
	Tokens   int     `json:"tokens"`
	Requests int     `json:"requests"`
	Caught   float64 `json:"caught"` // fraction of audited receipts refused
	Short    int     `json:"short"`  // outputs that ended (EOS) before the plausibility test's minimum
	ZMean    float64 `json:"z_mean"`
	Log10P   float64 `json:"log10_p_median"` // median log10 of the plausibility bound
}

// ToleranceResult is what `agora bench tolerance` measured.
type ToleranceResult struct {
	Machine    string            `json:"machine"`
	Tolerances verify.Tolerances `json:"tolerances"`
	CheckMs    float64           `json:"check_ms_per_request"` // 32-token requests
	Honest     []HonestRow       `json:"honest"`
	Attacks    []AttackRow       `json:"attacks"`
}

type tolSetting struct {
	name string
	p    native.SampleParams
}

var tolSettings = []tolSetting{
	{"T=1", native.SampleParams{Temperature: 1}},
	{"T=0.8 top-p 0.95", native.SampleParams{Temperature: 0.8, TopP: 0.95}},
	{"T=0.7 top-k 40", native.SampleParams{Temperature: 0.7, TopK: 40}},
	{"T=1 min-p 0.05 rep 1.1", native.SampleParams{Temperature: 1, MinP: 0.05, RepeatPenalty: 1.1}},
	{"greedy", native.SampleParams{Temperature: 0}},
}

// RunTolerance calibrates the tolerance path: honest GPU-like backends
// (oaisim: the served model with Gaussian noise of σ on every logit) must
// pass at every sampling setting and noise level up to what a GPU shows,
// and cheats must be refused: a substituted model, a quantised copy of the
// served weights, and a prefill attack (a cheap model writes, the served
// model scores), by output length.
func RunTolerance(o ToleranceOptions) (*ToleranceResult, error) {
	if o.Requests < 1 || o.Attacks < 1 {
		return nil, fmt.Errorf("--requests (%d) and --attacks (%d) must be at least 1", o.Requests, o.Attacks)
	}
	for _, s := range o.Noise {
		if !(s >= 0) {
			return nil, fmt.Errorf("--noise %v: a standard deviation is not negative", s)
		}
	}
	tol := verify.DefaultTolerances()
	res := &ToleranceResult{Machine: machine(), Tolerances: tol}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }
	dir, err := os.MkdirTemp("", "agora-bench-tolerance-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	shape := native.GenOptions{Dim: 128, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 4096, Context: 1024, Seed: 1, Type: gguf.Q8_0, Name: "served"}
	paths := map[string]native.GenOptions{"served": shape}
	q4 := shape
	q4.Type, q4.Name = gguf.Q4_0, "served-q4"
	paths["q4"] = q4
	paths["cheap"] = native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 4096, Context: 1024, Seed: 1, Type: gguf.Q8_0, Name: "cheap"}
	models := map[string]*native.Model{}
	for name, g := range paths {
		p := filepath.Join(dir, name+".gguf")
		if err := native.WriteRandomModel(p, g); err != nil {
			return nil, err
		}
		m, err := native.Load(p, native.Options{Threads: 1})
		if err != nil {
			return nil, err
		}
		defer m.Close()
		models[name] = m
	}
	served := models["served"]
	tok, err := tokenizer.FromGGUF(served.File)
	if err != nil {
		return nil, err
	}
	vocab := verify.NewVocab(tok)

	run := func(m *native.Model, opts oaisim.Options, i int, s tolSetting, n int) (verify.ToleranceReport, error, time.Duration) {
		srv, err := oaisim.New("m", m, opts)
		if err != nil {
			return verify.ToleranceReport{}, err, 0
		}
		p := s.p
		p.Seed = uint64(7919*i + 1)
		prompt := tok.Encode(fmt.Sprintf("request %d: tell me about decentralized compute and the network", i), true, false)
		toks, text, _, err := srv.Generate(prompt, p, n, nil, 5, nil)
		if err != nil {
			return verify.ToleranceReport{}, err, 0
		}
		r := verify.Reported{PromptIDs: prompt, Params: p, Text: []byte(text)}
		for _, t := range toks {
			r.Pieces = append(r.Pieces, intsToBytes(t.Bytes))
			r.Logprobs = append(r.Logprobs, t.Logprob)
			var alts []inference.Alt
			for _, a := range t.TopLogprobs {
				alts = append(alts, inference.Alt{Token: intsToBytes(a.Bytes), Logprob: a.Logprob})
			}
			r.Top = append(r.Top, alts)
		}
		t0 := time.Now()
		rep, cerr := verify.CheckTolerance(served, vocab, r, tol)
		return rep, cerr, time.Since(t0)
	}

	var checkTime time.Duration
	var checks int
	for _, sigma := range o.Noise {
		row := HonestRow{Noise: sigma, OverlapMin: 1, ZMin: math.Inf(1)}
		var maxDiffs []float64
		var zSum float64
		var zN int
		for i := 0; i < o.Requests; i++ {
			s := tolSettings[i%len(tolSettings)]
			rep, cerr, d := run(served, oaisim.Options{Noise: sigma}, i, s, 32)
			if rep.Tokens == 0 && cerr != nil {
				return nil, cerr
			}
			checkTime += d
			checks++
			row.Requests++
			if cerr != nil {
				row.Rejected++
				if row.FirstReason == "" {
					row.FirstReason = fmt.Sprintf("%s: %v", s.name, cerr)
				}
			}
			maxDiffs = append(maxDiffs, rep.MaxDiff)
			row.MeanDiffMax = math.Max(row.MeanDiffMax, rep.MeanDiff)
			row.OverlapMin = math.Min(row.OverlapMin, rep.Overlap)
			if rep.TestTokens >= tol.MinTestTokens {
				row.ZMin = math.Min(row.ZMin, rep.Z)
				row.Log10PMin = math.Min(row.Log10PMin, rep.Log10P)
				zSum += rep.Z
				zN++
			}
		}
		sort.Float64s(maxDiffs)
		row.MaxDiffP50 = maxDiffs[len(maxDiffs)/2]
		row.MaxDiffP99 = maxDiffs[min(len(maxDiffs)-1, len(maxDiffs)*99/100)]
		row.MaxDiffMax = maxDiffs[len(maxDiffs)-1]
		if zN > 0 {
			row.ZMean = zSum / float64(zN)
		}
		res.Honest = append(res.Honest, row)
		logf("honest σ=%-6g %4d requests  rejected %d  max|Δ| p50 %.4f p99 %.4f max %.4f  mean|Δ| max %.4f  overlap min %.2f  z min %.2f mean %.2f  log10 p min %.2f  %s",
			sigma, row.Requests, row.Rejected, row.MaxDiffP50, row.MaxDiffP99, row.MaxDiffMax, row.MeanDiffMax, row.OverlapMin, row.ZMin, row.ZMean, row.Log10PMin, row.FirstReason)
	}
	if checks > 0 {
		res.CheckMs = float64(checkTime.Microseconds()) / 1000 / float64(checks)
	}

	attacks := []struct {
		name string
		m    *native.Model
		opts oaisim.Options
	}{
		{"substituted model", models["cheap"], oaisim.Options{Noise: 0.02}},
		{"Q4_0 copy of the weights", models["q4"], oaisim.Options{Noise: 0.02}},
		{"prefill attack", served, oaisim.Options{Noise: 0.02, Writer: models["cheap"]}},
	}
	for _, a := range attacks {
		for _, s := range tolSettings {
			lengths := []int{32}
			if a.name == "prefill attack" && s.name == "T=1" {
				lengths = []int{4, 8, 16, 32}
			}
			for _, n := range lengths {
				row := AttackRow{Attack: a.name, Setting: s.name, Tokens: n}
				caught := 0
				var zSum float64
				var logPs []float64
				for i := 0; i < o.Attacks; i++ {
					rep, cerr, _ := run(a.m, a.opts, 100000+i, s, n)
					if rep.Tokens == 0 && cerr != nil {
						return nil, cerr
					}
					row.Requests++
					if cerr != nil {
						caught++
					}
					if rep.Tokens < tol.MinTestTokens {
						row.Short++
					}
					zSum += rep.Z
					logPs = append(logPs, rep.Log10P)
				}
				sort.Float64s(logPs)
				row.Log10P = logPs[len(logPs)/2]
				row.Caught = float64(caught) / float64(row.Requests)
				row.ZMean = zSum / float64(row.Requests)
				res.Attacks = append(res.Attacks, row)
				logf("%-26s %-24s %3d tokens  caught %5.1f%% of %d (%d ended before %d tokens)  z mean %.1f  log10 p median %.1f", a.name, s.name, n, 100*row.Caught, row.Requests, row.Short, tol.MinTestTokens, row.ZMean, row.Log10P)
			}
		}
	}
	logf("tolerance check: %.2f ms per 32-token request on one thread (%s)", res.CheckMs, res.Machine)
	return res, nil
}

func intsToBytes(xs []int) []byte {
	b := make([]byte, len(xs))
	for i, x := range xs {
		b[i] = byte(x)
	}
	return b
}
