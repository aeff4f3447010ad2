// Package examples holds the source of the example compute jobs and builds
// them for wasip1 with the local Go toolchain:
//
//   - raytrace: renders a scene of spheres a few rows per step and writes a
//     PNG to /out/render.png (the job ABI; Render's use case);
//   - ngram: counts words and bigrams of the files under /in or stdin, a
//     chunk per step (the job ABI; batch data processing);
//   - memtouch: a job with a large state (64 MiB by default), for the
//     checkpoint benchmarks (the job ABI);
//   - echo: a plain WASI command printing what a job can observe (tests);
//   - datacopy: a plain WASI command copying a compute-to-data job's
//     /data to its outputs, the exfiltration an output cap must stop;
//   - train: trains a small llama-family model with Agora's own trainer,
//     one optimisation step per job step (the job ABI; verifiable
//     training). It imports Agora's packages, so it is built from the
//     Agora source tree (the current directory must be inside it).
//
// The sources carry a wasip1 build constraint, so host builds skip them.
package examples

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed raytrace/main.go ngram/main.go memtouch/main.go echo/main.go datacopy/main.go
var sources embed.FS

// Names are the examples, in the order above.
var Names = []string{"raytrace", "ngram", "memtouch", "echo", "datacopy"}

// InModule are the examples that import Agora's own packages: Build
// compiles them inside the Agora module rather than alone.
var InModule = []string{"train"}

// Command reports whether an example is a plain WASI command rather than a
// job-ABI module.
func Command(name string) bool { return name == "echo" || name == "datacopy" }

// Source returns an example's Go source.
func Source(name string) ([]byte, error) {
	if !slices.Contains(Names, name) {
		return nil, fmt.Errorf("no example job %q (have %v)", name, Names)
	}
	return sources.ReadFile(name + "/main.go")
}

// Build compiles an example with GOOS=wasip1 GOARCH=wasm (c-shared for the
// job ABI) in a temporary module and returns the module's bytes.
func Build(ctx context.Context, name string) ([]byte, error) {
	if slices.Contains(InModule, name) {
		return buildInModule(ctx, name)
	}
	src, err := Source(name)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "agora-example-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/"+name+"\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, name+".wasm")
	args := []string{"build", "-trimpath", "-o", out}
	if !Command(name) {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build example %s: %w\n%s", name, err, b)
	}
	return os.ReadFile(out)
}

// agoraModule is the module path an in-module example is built in.
const agoraModule = "github.com/agoranet/agora"

// buildInModule compiles an example that imports Agora's packages from the
// Agora source tree the current directory is in.
func buildInModule(ctx context.Context, name string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	b, err := cmd.Output()
	gomod := strings.TrimSpace(string(b))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return nil, fmt.Errorf("example %s imports Agora's packages and is built from its source tree: run this inside a checkout of %s", name, agoraModule)
	}
	mod, err := os.ReadFile(gomod)
	if err != nil || !strings.HasPrefix(string(mod), "module "+agoraModule+"\n") {
		return nil, fmt.Errorf("example %s is built from Agora's source tree, and %s is not %s's", name, gomod, agoraModule)
	}
	dir, err := os.MkdirTemp("", "agora-example-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, name+".wasm")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, "./engine/wasm/examples/"+name)
	build.Dir = filepath.Dir(gomod)
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build example %s: %w\n%s", name, err, b)
	}
	return os.ReadFile(out)
}
