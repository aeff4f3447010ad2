// Package wasm runs compute jobs: sandboxed, deterministic, metered
// WebAssembly modules on wazero. A module is first rewritten by
// engine/wasm/meter (gas, call depth, NaN canonicalisation, exported
// state); the runtime then gives it a virtual WASI whose every observable is
// a function of (module, inputs, args, seed, state): arguments, read-only
// input blobs under /in and as stdin, stdout, stderr and the files written
// under /out captured as results, a clock that is the gas used so far, a
// random stream derived from the seed, no environment, no network and
// nothing of the host's file system.
//
// Job ABI: a module exports `init` and `step` (() -> i32: 0 done, 1 more).
// Between steps the call stack is empty, so linear memory, the mutable
// globals, the gas used and the host state (stdin and random offsets,
// output so far) are the whole state, hashed into a State hash (see
// Digest) every N steps; a job that ends a step holding a file open fails.
// A plain WASI command (`_start`) runs as a job of one step.
//
// The roles' entry points: Engine.Compile, Module.Run (a provider's run:
// result blobs, gas, steps, checkpoints), Module.Start / Instance.Step /
// Instance.Snapshot / Module.Restore (stop and resume), Module.ReplayStep
// (an auditor's or referee's single step), State.ProvePage / VerifyPage
// (pre-state pages against a state hash), State.MarshalBinary /
// VerifyState (a whole pre-state). Steps cannot be interrupted by ctx
// (the gas limit bounds them); Run checks ctx between steps.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/agoranet/agora/engine/wasm/meter"
)

// Limits and defaults.
const (
	PageSize           = 65536
	DefaultMemoryPages = 4096 // 256 MiB
	MaxMemoryPages     = 65536
	MaxGas             = 1 << 62
	MaxOutputBytes     = 64 << 20 // stdout + stderr
	// FixedWalltime is the epoch second a job's wall clock starts at; it
	// then advances one nanosecond per gas.
	FixedWalltime = 1_767_225_600 // 2026-01-01T00:00:00Z
)

// ErrNoABI is returned for a module that exports neither init and step nor _start.
var ErrNoABI = errors.New("module exports neither init and step (the job ABI) nor _start (a WASI command)")

// Options configure an Engine.
type Options struct {
	// Interpreter selects wazero's interpreter instead of its compiler. Both
	// give identical results; the interpreter runs where the compiler
	// cannot.
	Interpreter bool
	// CacheDir, if set, keeps wazero's compiled code on disk there, keyed by
	// the metered module's hash (and wazero's version and the CPU): a module
	// compiled once — by this process's executor or validator, or before a
	// restart — loads without compiling again. Several engines and
	// processes may share one directory.
	CacheDir string
}

// Engine compiles and runs job modules. It is safe for concurrent use.
type Engine struct {
	rt     wazero.Runtime
	interp bool
}

// NewEngine starts a wazero runtime with the WASI functions jobs may import.
func NewEngine(ctx context.Context, o Options) (*Engine, error) {
	cfg := wazero.NewRuntimeConfigCompiler()
	if o.Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	cfg = cfg.WithCoreFeatures(api.CoreFeaturesV2).WithMemoryLimitPages(MaxMemoryPages)
	if o.CacheDir != "" && !o.Interpreter {
		cache, err := wazero.NewCompilationCacheWithDir(o.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", o.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	return &Engine{rt: rt, interp: o.Interpreter}, nil
}

// Close releases the runtime and every module compiled by it.
func (e *Engine) Close(ctx context.Context) error { return e.rt.Close(ctx) }

// Module is a metered, compiled job module.
type Module struct {
	e        *Engine
	Hash     [32]byte // sha256 of the module as submitted (what orders name)
	Metered  int      // size of the metered binary
	info     *meter.Info
	compiled wazero.CompiledModule
	command  bool // a WASI command: _start is its only step
}

// Compile meters and compiles a module. Every refusal (malformed, too
// large, a forbidden import, no ABI, a bad ABI signature) is an error that
// says why.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	metered, info, err := meter.Instrument(wasm)
	if err != nil {
		return nil, err
	}
	compiled, err := e.rt.CompileModule(ctx, metered)
	if err != nil {
		return nil, fmt.Errorf("invalid module: %w", err)
	}
	m := &Module{e: e, Hash: hashBytes(wasm), Metered: len(metered), info: info, compiled: compiled}
	fns := compiled.ExportedFunctions()
	init, step, start := fns["init"], fns["step"], fns["_start"]
	switch {
	case init != nil && step != nil:
		if len(init.ParamTypes()) != 0 || len(init.ResultTypes()) != 0 {
			err = errors.New("export init must have type () -> ()")
		} else if len(step.ParamTypes()) != 0 || len(step.ResultTypes()) != 1 || step.ResultTypes()[0] != api.ValueTypeI32 {
			err = errors.New("export step must have type () -> i32")
		}
	case start != nil:
		m.command = true
		if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
			err = errors.New("export _start must have type () -> ()")
		}
	default:
		err = ErrNoABI
	}
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	return m, nil
}

// Close releases the compiled module.
func (m *Module) Close(ctx context.Context) error { return m.compiled.Close(ctx) }

// Command reports whether the module is a WASI command (one step, _start).
func (m *Module) Command() bool { return m.command }

// Blob is a named byte string: an input file or a result.
type Blob struct {
	Name string
	Data []byte
}

// Job is everything a run depends on besides the module.
type Job struct {
	Args            []string // argv[1:]; argv[0] is "job"
	Inputs          []Blob   // read-only files /in/<name>
	Stdin           []byte
	Seed            [32]byte // the random stream's key
	Gas             uint64   // limit
	MemoryPages     uint32   // cap on linear memory; 0: DefaultMemoryPages
	CheckpointEvery uint64   // steps between checkpoints; 0: only the first and the last
	// Data, when not nil, is mounted read-only at /data: a compute-to-data
	// job's dataset, files by slash-separated path (directories implied).
	Data []Blob
	// OutputCap, when nonzero, bounds the job's results: a step after
	// which the result list (ResultsSize) and its outputs exceed it fails
	// with OutputOverCap, so nothing over the cap is ever delivered.
	OutputCap uint64
	// Progress, when set, is called after each checkpoint.
	Progress func(Checkpoint)
}

func (j *Job) validate() error {
	if j.Gas == 0 || j.Gas > MaxGas {
		return fmt.Errorf("gas limit %d out of range (1..%d)", j.Gas, uint64(MaxGas))
	}
	if j.MemoryPages > MaxMemoryPages {
		return fmt.Errorf("memory cap %d pages over the maximum %d", j.MemoryPages, MaxMemoryPages)
	}
	seen := map[string]bool{}
	for _, in := range j.Inputs {
		if in.Name == "" || strings.ContainsAny(in.Name, "/\\") || in.Name == "." || in.Name == ".." || !fs.ValidPath(in.Name) {
			return fmt.Errorf("input name %q: want a plain file name", in.Name)
		}
		if seen[in.Name] {
			return fmt.Errorf("input %q given twice", in.Name)
		}
		seen[in.Name] = true
	}
	files := map[string]bool{}
	for _, d := range j.Data {
		if why := dataPathError(d.Name); why != "" {
			return fmt.Errorf("data file %q: %s", d.Name, why)
		}
		if files[d.Name] {
			return fmt.Errorf("data file %q given twice", d.Name)
		}
		files[d.Name] = true
	}
	for _, d := range j.Data {
		for dir := path.Dir(d.Name); dir != "."; dir = path.Dir(dir) {
			if files[dir] {
				return fmt.Errorf("data file %q is also a directory of %q", dir, d.Name)
			}
		}
	}
	return nil
}

// OutputOverCap is the failure reason of a job whose results exceed its
// OutputCap.
const OutputOverCap = "output over cap"

// ResultsSize is the size of a job's results as protocol/jobs lists them:
// its result list's encoding ("agora-results/v1\n", a u32 count, then per
// output a u32 name length, the name, a 32-byte blob ID and a u64 size)
// plus the outputs' bytes.
func ResultsSize(outs []Blob) uint64 {
	n := uint64(len("agora-results/v1\n") + 4)
	for _, o := range outs {
		n += 4 + uint64(len(o.Name)) + 32 + 8 + uint64(len(o.Data))
	}
	return n
}

func (j *Job) memCap() uint32 {
	if j.MemoryPages == 0 {
		return DefaultMemoryPages
	}
	return j.MemoryPages
}

// Instance is a job's live instance, between steps.
type Instance struct {
	m       *Module
	job     Job
	mod     api.Module
	mem     api.Memory
	gas     api.MutableGlobal
	depth   api.MutableGlobal
	globals []api.MutableGlobal // m.info.Globals in order
	host    *host
	steps   uint64
	ended   bool // done or failed: no more steps
	cache   *hashCache
}

// instantiate makes a fresh instance with no code run yet.
func (m *Module) instantiate(ctx context.Context, job Job) (*Instance, error) {
	if err := job.validate(); err != nil {
		return nil, err
	}
	if m.info.MinPages > job.memCap() {
		return nil, fmt.Errorf("module's memory needs %d pages, over the job's cap of %d", m.info.MinPages, job.memCap())
	}
	in := &Instance{m: m, job: job, host: newHost(job), cache: &hashCache{}}
	fsc := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(in.host.in, "/in").(sysfs.FSConfig).WithSysFSMount(in.host.out, "/out")
	if in.host.data != nil {
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(in.host.data, "/data")
	}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithArgs(append([]string{"job"}, job.Args...)...).
		WithStdin(in.host.stdin).
		WithStdout(&in.host.stdout).
		WithStderr(&in.host.stderr).
		WithRandSource(in.host.rand).
		WithWalltime(in.walltime, 1).
		WithNanotime(in.nanotime, 1).
		WithNanosleep(func(int64) {}).
		WithOsyield(func() {}).
		WithFSConfig(fsc)
	mod, err := m.e.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	in.mod = mod
	in.mem = mod.ExportedMemory(meter.MemoryExport)
	for _, g := range m.info.Globals {
		mg, ok := mod.ExportedGlobal(g.Export).(api.MutableGlobal)
		if !ok {
			_ = mod.Close(ctx)
			return nil, fmt.Errorf("metered module lacks global %s", g.Export)
		}
		in.globals = append(in.globals, mg)
		switch g.Export {
		case meter.GasExport:
			in.gas = mg
		case meter.DepthExport:
			in.depth = mg
		case meter.MemCapExport:
			mg.Set(uint64(job.memCap()))
		}
	}
	in.gas.Set(job.Gas)
	return in, nil
}

// gasUsed is the limit less what remains; the whole limit after running out.
func (in *Instance) gasUsed() uint64 {
	rem := int64(in.gas.Get())
	if rem < 0 {
		return in.job.Gas
	}
	return in.job.Gas - uint64(rem)
}

// The clock advances one nanosecond per gas: it moves, so programs that
// wait on it finish, and it is a function of the state.
func (in *Instance) nanotime() int64 { return int64(in.gasUsed()) }

func (in *Instance) walltime() (int64, int32) {
	ns := in.gasUsed()
	return FixedWalltime + int64(ns/1e9), int32(ns % 1e9)
}

// Start instantiates a job and runs its initialisation: the module's start
// function, Go's _initialize when exported, then init (for the job ABI).
// A failure there is returned as a *Failure.
func (m *Module) Start(ctx context.Context, job Job) (*Instance, error) {
	in, err := m.instantiate(ctx, job)
	if err != nil {
		return nil, err
	}
	names := []string{}
	if m.info.HasStart {
		names = append(names, meter.StartExport)
	}
	if !m.command {
		if m.compiled.ExportedFunctions()["_initialize"] != nil {
			names = append(names, "_initialize")
		}
		names = append(names, "init")
	}
	for _, name := range names {
		_, err := in.mod.ExportedFunction(name).Call(ctx)
		if err == nil && int64(in.gas.Get()) < 0 {
			err = errOutOfGas // ran out after the last check
		}
		if err != nil {
			f := in.failure(name, err)
			in.close(ctx)
			return nil, f
		}
	}
	if f := in.openFiles("init"); f != nil && !m.command {
		in.close(ctx)
		return nil, f
	}
	return in, nil
}

// errOutOfGas stands for the trap a call that returned with its gas
// negative did not reach (only function entries and loops check).
var errOutOfGas = errors.New("out of gas")

// Failure is a job's deterministic failed outcome: out of gas, a trap, a
// call depth overflow, a nonzero exit, a bad step result.
type Failure struct {
	Phase   string // the export that failed
	Reason  string
	GasUsed uint64
	Step    uint64 // steps completed before it
}

func (f *Failure) Error() string {
	return fmt.Sprintf("job failed in %s after %d steps (%d gas): %s", f.Phase, f.Step, f.GasUsed, f.Reason)
}

// failure classifies a call's error into a deterministic reason: the
// engine's message varies (stack traces), the classes do not.
func (in *Instance) failure(phase string, err error) *Failure {
	f := &Failure{Phase: phase, GasUsed: in.gasUsed(), Step: in.steps}
	var exit *sys.ExitError
	switch {
	case int64(in.gas.Get()) < 0:
		f.Reason = "out of gas"
	case in.depth.Get() > meter.MaxCallDepth:
		f.Reason = fmt.Sprintf("call depth over %d", meter.MaxCallDepth)
	case errors.As(err, &exit):
		f.Reason = fmt.Sprintf("exit code %d", exit.ExitCode())
	case strings.Contains(err.Error(), "wasm error: "):
		msg := err.Error()[strings.Index(err.Error(), "wasm error: ")+len("wasm error: "):]
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		f.Reason = "trap: " + msg
	default:
		f.Reason = "error: " + err.Error()
	}
	return f
}

// overCap fails a job whose results exceed its OutputCap after a step
// (the step is the failing one), or returns nil. It returns a bare nil,
// not a nil *Failure, so callers can return it as an error.
func (in *Instance) overCap(phase string) error {
	if in.job.OutputCap == 0 {
		return nil
	}
	if size := ResultsSize(in.Outputs()); size > in.job.OutputCap {
		in.ended = true
		return &Failure{Phase: phase, Reason: OutputOverCap, GasUsed: in.gasUsed(), Step: in.steps - 1}
	}
	return nil
}

// openFiles fails a job that holds files open between steps: a
// descriptor's position is state the state hash does not cover.
func (in *Instance) openFiles(phase string) *Failure {
	n := in.host.in.open + in.host.out.open
	if in.host.data != nil {
		n += in.host.data.open
	}
	if n > 0 {
		return &Failure{Phase: phase, Reason: fmt.Sprintf("%d files left open at the end of a step (a step must close the files it opens)", n), GasUsed: in.gasUsed(), Step: in.steps}
	}
	return nil
}

func (in *Instance) close(ctx context.Context) {
	in.ended = true
	_ = in.mod.Close(ctx)
}

// Close releases the instance.
func (in *Instance) Close(ctx context.Context) error {
	in.ended = true
	return in.mod.Close(ctx)
}

// Steps is the number of steps completed.
func (in *Instance) Steps() uint64 { return in.steps }

// GasUsed is the gas used so far.
func (in *Instance) GasUsed() uint64 { return in.gasUsed() }

// Step runs one step. more is false once the job is done; a failure is a
// *Failure and ends the job.
func (in *Instance) Step(ctx context.Context) (more bool, err error) {
	if in.ended {
		return false, errors.New("the job has ended")
	}
	name := "step"
	if in.m.command {
		name = "_start"
	}
	res, err := in.mod.ExportedFunction(name).Call(ctx)
	if err == nil && int64(in.gas.Get()) < 0 {
		err = errOutOfGas // ran out after the last check
	}
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 0 && int64(in.gas.Get()) >= 0 {
			// proc_exit(0): done. The depth counter keeps the frames the
			// exit unwound; reset it, as a return would have.
			in.steps++
			in.depth.Set(0)
			in.ended = true
			return false, in.overCap(name)
		}
		f := in.failure(name, err)
		in.ended = true
		return false, f
	}
	in.steps++
	if in.m.command {
		in.ended = true
		return false, in.overCap(name)
	}
	switch int32(res[0]) {
	case 0:
		in.ended = true
		return false, in.overCap(name)
	case 1:
		if f := in.openFiles(name); f != nil {
			in.ended = true
			return false, f
		}
		if f := in.overCap(name); f != nil {
			in.ended = true
			return false, f
		}
		return true, nil
	default:
		in.ended = true
		return false, &Failure{Phase: name, Reason: fmt.Sprintf("step returned %d (want 0 done or 1 more)", int32(res[0])), GasUsed: in.gasUsed(), Step: in.steps}
	}
}

// Outputs are the result blobs so far: stdout, stderr, then each file
// written under /out as "out/<name>", by name.
func (in *Instance) Outputs() []Blob {
	out := []Blob{
		{Name: "stdout", Data: append([]byte(nil), in.host.stdout.Bytes()...)},
		{Name: "stderr", Data: append([]byte(nil), in.host.stderr.Bytes()...)},
	}
	for _, b := range in.host.out.blobs() {
		out = append(out, Blob{Name: "out/" + b.Name, Data: b.Data})
	}
	return out
}
