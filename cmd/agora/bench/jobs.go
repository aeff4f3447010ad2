package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/agoranet/agora/engine/wasm"
	"github.com/agoranet/agora/engine/wasm/examples"
)

// JobsOptions configure `agora bench jobs`.
type JobsOptions struct {
	Repeat      int      // runs per timing; the fastest counts
	Width       int      // ray tracer image
	Height      int      //
	CorpusBytes int      // n-gram counter input (a generated text)
	CorpusDir   string   // or every regular file of this directory (e.g. the Brown corpus)
	MemoryMiB   int      // memtouch state
	Steps       int      // memtouch steps
	Touches     int      // memtouch writes per step
	Only        []string // run only these jobs (default all)
	Out         io.Writer
}

// OverheadRow compares one job metered and unmetered on wazero's compiler.
type OverheadRow struct {
	Job          string  `json:"job"`
	ModuleBytes  int     `json:"module_bytes"`
	MeteredBytes int     `json:"metered_bytes"`
	UnmeteredMs  float64 `json:"unmetered_ms"` // CPU time of the running thread, fastest run
	MeteredMs    float64 `json:"metered_ms"`
	OverheadPct  float64 `json:"overhead_pct"`
	Gas          uint64  `json:"gas"`
	MGasPerSec   float64 `json:"mgas_per_sec"`
	Steps        uint64  `json:"steps"`
}

// CheckpointRow is the checkpoint cost of a job with a large memory.
type CheckpointRow struct {
	MemoryMiB     float64 `json:"memory_mib"`
	Steps         int     `json:"steps"`
	StepMs        float64 `json:"step_ms"`         // mean compute per step
	FirstHashMs   float64 `json:"first_hash_ms"`   // every page hashed
	CheckpointMs  float64 `json:"checkpoint_ms"`   // mean, pages compared and changed ones rehashed
	DirtyPagesPct float64 `json:"dirty_pages_pct"` // pages a step changed, mean
	OverheadPct   float64 `json:"overhead_pct"`    // checkpoint every step
	SnapshotMs    float64 `json:"snapshot_ms"`     // copy out the whole state
	// IntervalFor10PctMs is the compute between checkpoints at which they
	// cost 10 % of the run time.
	IntervalFor10PctMs float64 `json:"interval_for_10pct_ms"`
	ReplayMs           float64 `json:"replay_ms"` // restore + one step + post-state hash
}

// JobsResult is what `agora bench jobs` measured.
type JobsResult struct {
	Machine    string             `json:"machine"`
	Overhead   []OverheadRow      `json:"metering_overhead"`
	Checkpoint CheckpointRow      `json:"checkpoint"`
	ReplayMs   map[string]float64 `json:"replay_ms"`
}

// RunJobs measures the WASM job runtime: metering overhead against the
// same module unmetered on wazero's compiler, checkpoint cost for a job
// with a 64 MiB memory, and single-step re-execution time.
func RunJobs(ctx context.Context, o JobsOptions) (*JobsResult, error) {
	if o.Repeat < 1 {
		o.Repeat = 1
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }
	res := &JobsResult{Machine: machine(), ReplayMs: map[string]float64{}}
	logf("jobs bench on %s", res.Machine)
	eng, err := wasm.NewEngine(ctx, wasm.Options{})
	if err != nil {
		return nil, err
	}
	defer eng.Close(ctx)

	corpus := genCorpus(o.CorpusBytes)
	var corpusFiles []wasm.Blob
	if o.CorpusDir != "" {
		ents, err := os.ReadDir(o.CorpusDir)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		size := 0
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(o.CorpusDir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
			corpusFiles = append(corpusFiles, wasm.Blob{Name: e.Name(), Data: b})
			size += len(b)
		}
		corpus = nil
		logf("corpus: %d files, %d bytes from %s", len(corpusFiles), size, o.CorpusDir)
	}
	jobs := []struct {
		name string
		job  wasm.Job
	}{
		{"raytrace", wasm.Job{Args: []string{fmt.Sprint(o.Width), fmt.Sprint(o.Height), "16"}, Gas: wasm.MaxGas}},
		{"ngram", wasm.Job{Args: []string{"20", "65536"}, Stdin: corpus, Inputs: corpusFiles, Gas: wasm.MaxGas}},
		{"memtouch", wasm.Job{Args: []string{fmt.Sprint(o.MemoryMiB), fmt.Sprint(o.Steps), fmt.Sprint(o.Touches)}, Gas: wasm.MaxGas}},
	}
	if len(o.Only) > 0 {
		kept := jobs[:0]
		for _, j := range jobs {
			if slices.Contains(o.Only, j.name) {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	bins := map[string][]byte{}
	for _, j := range jobs {
		logf("building example %s (GOOS=wasip1 GOARCH=wasm)", j.name)
		b, err := examples.Build(ctx, j.name)
		if err != nil {
			return nil, err
		}
		bins[j.name] = b
	}

	// 1. Metering overhead.
	for _, j := range jobs {
		m, err := eng.Compile(ctx, bins[j.name])
		if err != nil {
			return nil, err
		}
		row := OverheadRow{Job: j.name, ModuleBytes: len(bins[j.name]), MeteredBytes: m.Metered}
		var meteredOut, plainOut []byte
		for i := 0; i < o.Repeat; i++ {
			// Instantiation, init and the steps, as the unmetered run:
			// no state hashing (measured below). Timed by the thread's
			// CPU time: the machine may be shared.
			var in *wasm.Instance
			d, err := threadCPU(func() error {
				var err error
				if in, err = m.Start(ctx, j.job); err != nil {
					return err
				}
				for more := true; more; {
					if more, err = in.Step(ctx); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", j.name, err)
			}
			if ms := msOf(d); row.MeteredMs == 0 || ms < row.MeteredMs {
				row.MeteredMs = ms
			}
			row.Gas, row.Steps, meteredOut = in.GasUsed(), in.Steps(), in.Outputs()[0].Data
			in.Close(ctx)
			logf("  %s metered run %d/%d: %.1f ms, %d gas, %d steps", j.name, i+1, o.Repeat, msOf(d), row.Gas, row.Steps)
			// The unmetered run right after, so both see the same load.
			d, out, err := runUnmetered(ctx, bins[j.name], j.job)
			if err != nil {
				return nil, fmt.Errorf("%s unmetered: %w", j.name, err)
			}
			if ms := msOf(d); row.UnmeteredMs == 0 || ms < row.UnmeteredMs {
				row.UnmeteredMs = ms
			}
			plainOut = out
			logf("  %s unmetered run %d/%d: %.1f ms", j.name, i+1, o.Repeat, msOf(d))
		}
		m.Close(ctx)
		if !bytes.Equal(meteredOut, plainOut) {
			return nil, fmt.Errorf("%s: metered and unmetered stdout differ", j.name)
		}
		row.OverheadPct = 100 * (row.MeteredMs - row.UnmeteredMs) / row.UnmeteredMs
		row.MGasPerSec = float64(row.Gas) / row.MeteredMs / 1e3
		logf("%s: unmetered %.1f ms, metered %.1f ms: overhead %.1f %% (%.0f Mgas/s)", j.name, row.UnmeteredMs, row.MeteredMs, row.OverheadPct, row.MGasPerSec)
		res.Overhead = append(res.Overhead, row)
	}

	// 2. Checkpoints of a large memory, and 3. single-step replay.
	for _, j := range jobs {
		m, err := eng.Compile(ctx, bins[j.name])
		if err != nil {
			return nil, err
		}
		in, err := m.Start(ctx, j.job)
		if err != nil {
			return nil, err
		}
		var stepTime, hashTime time.Duration
		var pre *wasm.State
		t0 := time.Now()
		in.StateHash()
		first := time.Since(t0)
		var dirty float64
		var prevIDs [][32]byte
		steps := 0
		for more := true; more; {
			if j.name == "memtouch" && steps == 1 {
				pre = in.Snapshot()
			}
			if pre == nil && j.name != "memtouch" {
				pre = in.Snapshot()
			}
			t0 := time.Now()
			more, err = in.Step(ctx)
			stepTime += time.Since(t0)
			if err != nil {
				return nil, err
			}
			steps++
			t0 = time.Now()
			in.StateHash()
			hashTime += time.Since(t0)
			if j.name == "memtouch" {
				ids := in.PageHashes()
				if prevIDs != nil {
					changed := 0
					for k := range ids {
						if k >= len(prevIDs) || ids[k] != prevIDs[k] {
							changed++
						}
					}
					dirty += float64(changed) / float64(len(ids))
				}
				prevIDs = ids
			}
			if steps%5 == 0 {
				logf("  %s: %d steps, %d gas", j.name, steps, in.GasUsed())
			}
		}
		if j.name == "memtouch" {
			snap := time.Now()
			st := in.Snapshot()
			res.Checkpoint = CheckpointRow{
				MemoryMiB: float64(len(st.Memory)) / (1 << 20), Steps: steps,
				StepMs: msOf(stepTime) / float64(steps), FirstHashMs: msOf(first),
				CheckpointMs:  msOf(hashTime) / float64(steps),
				DirtyPagesPct: 100 * dirty / float64(max(1, steps-1)),
				OverheadPct:   100 * float64(hashTime) / float64(stepTime),
				SnapshotMs:    msOf(time.Since(snap)),
			}
			res.Checkpoint.IntervalFor10PctMs = 10 * res.Checkpoint.CheckpointMs
		}
		in.Close(ctx)
		// Replay the step after pre on a fresh instance, as a referee would.
		best := 0.0
		for i := 0; i < o.Repeat; i++ {
			t0 := time.Now()
			sr, err := m.ReplayStep(ctx, j.job, pre)
			d := time.Since(t0)
			if err != nil {
				return nil, err
			}
			if sr.Failure != nil {
				return nil, fmt.Errorf("%s replay: %v", j.name, sr.Failure)
			}
			if ms := msOf(d); best == 0 || ms < best {
				best = ms
			}
		}
		res.ReplayMs[j.name] = best
		if j.name == "memtouch" {
			res.Checkpoint.ReplayMs = best
			c := res.Checkpoint
			logf("memtouch (%.0f MiB): step %.1f ms, first hash %.1f ms, checkpoint %.1f ms (%.0f %% pages dirty): %.1f %% of run time at one checkpoint per step, 10 %% at one per %.0f ms of compute; snapshot %.1f ms",
				c.MemoryMiB, c.StepMs, c.FirstHashMs, c.CheckpointMs, c.DirtyPagesPct, c.OverheadPct, c.IntervalFor10PctMs, c.SnapshotMs)
		}
		logf("%s: replaying one step (restore + step + post-state hash) takes %.1f ms", j.name, best)
		m.Close(ctx)
	}
	return res, nil
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// runUnmetered runs the original module on wazero's compiler with the
// same WASI setup and ABI calls, and returns the run's CPU time
// (instantiation and calls, not compilation) and stdout.
func runUnmetered(ctx context.Context, bin []byte, job wasm.Job) (time.Duration, []byte, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(api.CoreFeaturesV2))
	defer rt.Close(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return 0, nil, err
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return 0, nil, err
	}
	var stdout, stderr bytes.Buffer
	outDir, err := os.MkdirTemp("", "agora-bench-jobs-out-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(outDir)
	inDir := filepath.Join(outDir, "in")
	if err := os.Mkdir(inDir, 0o755); err != nil {
		return 0, nil, err
	}
	for _, b := range job.Inputs {
		if err := os.WriteFile(filepath.Join(inDir, b.Name), b.Data, 0o644); err != nil {
			return 0, nil, err
		}
	}
	outDir = filepath.Join(outDir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		return 0, nil, err
	}
	fsc := wazero.NewFSConfig().WithReadOnlyDirMount(inDir, "/in").WithDirMount(outDir, "/out")
	cfg := wazero.NewModuleConfig().WithStartFunctions().WithArgs(append([]string{"job"}, job.Args...)...).
		WithStdin(bytes.NewReader(job.Stdin)).WithStdout(&stdout).WithStderr(&stderr).
		WithFSConfig(fsc).
		WithSysNanotime().WithSysWalltime().WithNanosleep(func(int64) {})
	d, err := threadCPU(func() error {
		mod, err := rt.InstantiateModule(ctx, cm, cfg)
		if err != nil {
			return err
		}
		for _, f := range []string{"_initialize", "init"} {
			if fn := mod.ExportedFunction(f); fn != nil {
				if _, err := fn.Call(ctx); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
			}
		}
		for {
			r, err := mod.ExportedFunction("step").Call(ctx)
			if err != nil {
				return fmt.Errorf("step: %w (%s)", err, stderr.String())
			}
			if r[0] == 0 {
				return nil
			}
		}
	})
	return d, stdout.Bytes(), err
}

// genCorpus writes n bytes of English-like text, the same every time.
func genCorpus(n int) []byte {
	words := []string{"the", "of", "and", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his",
		"on", "be", "at", "by", "had", "jury", "county", "election", "city", "court", "report", "said", "would", "there", "which"}
	var b bytes.Buffer
	x := uint64(0x2545f4914f6cdd1d)
	for col := 0; b.Len() < n; {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		w := words[(x>>11)%uint64(len(words))]
		if x%7 == 0 {
			w = w + fmt.Sprint(x%97)
		}
		b.WriteString(w)
		col += len(w) + 1
		if col > 70 {
			b.WriteByte('\n')
			col = 0
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()
}
