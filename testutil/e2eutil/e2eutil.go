// Package e2eutil is what the end-to-end test packages (e2e and
// e2e/market) share: the agora binary they drive as a subprocess, built
// once per test package by Main, the helpers that run it, and small HTTP
// and logging helpers. The tests are split in two packages so that go test
// runs the halves at the same time.
package e2eutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/testutil/poll"
)

// agoraBin is the binary Main built.
var agoraBin string

// Main is a test package's TestMain: it builds the agora binary (from
// ./cmd/agora of this module) into a temporary directory, stores its path
// in *bin for the package's tests that run it themselves, runs the tests,
// removes the binary and exits with the tests' code. A test package that
// calls it should also import cmd/agora/cli (blank), so that the test
// cache sees a change anywhere in the binary.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "agora-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agoraBin = filepath.Join(dir, "agora")
	build := exec.Command("go", "build", "-o", agoraBin, "github.com/agoranet/agora/cmd/agora")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agora:", err)
		os.Exit(1)
	}
	*bin = agoraBin
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Run runs agora with args and returns its combined output, failing t if
// it exits non-zero.
func Run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(agoraBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("agora %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// RunFail runs agora with args and returns its combined output, failing t
// if it succeeds.
func RunFail(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(agoraBin, args...).CombinedOutput()
	if err == nil {
		t.Fatalf("agora %s succeeded, want failure:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// RunJSON runs agora with args and --output json and decodes its output
// into out.
func RunJSON(t *testing.T, out any, args ...string) {
	t.Helper()
	s := Run(t, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("agora %s: not JSON: %v\n%s", strings.Join(args, " "), err, s)
	}
}

// Proc is a running agora process whose output is kept.
type Proc struct {
	Cmd *exec.Cmd
	log *bytes.Buffer
	mu  *sync.Mutex
}

// StartAgora starts agora with args; the process is killed when the test
// ends if it is still running.
func StartAgora(t *testing.T, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, exec.Command(agoraBin, args...))
}

// StartCmd is StartAgora for a prepared command that runs agora (ip netns
// exec, say, which replaces itself with agora, so the process is agora's
// and a kill reaches it).
func StartCmd(t *testing.T, cmd *exec.Cmd) *Proc {
	t.Helper()
	var buf bytes.Buffer
	mu := &sync.Mutex{}
	w := &lockedWriter{w: &buf, mu: mu}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, log: &buf, mu: mu}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// Output is what the process wrote so far, stdout and stderr interleaved.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// StopGracefully sends sig and requires the process to exit with status 0
// within limit.
func (p *Proc) StopGracefully(t *testing.T, sig os.Signal, limit time.Duration) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after %v: %v\n%s", sig, err, p.Output())
		}
	case <-time.After(limit):
		t.Fatalf("no exit within %v of %v", limit, sig)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// WaitServing waits until the node behind c, run by p, has committed
// minHeight, failing t with p's output if it does not within a minute.
func WaitServing(t *testing.T, c *client.Client, p *Proc, minHeight int64) {
	t.Helper()
	err := poll.Wait(60*time.Second, func() (bool, string) {
		st, err := c.Status(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return st.SyncInfo.LatestBlockHeight >= minHeight, fmt.Sprintf("at height %d", st.SyncInfo.LatestBlockHeight)
	})
	if err != nil {
		t.Fatalf("node not serving at height %d: %v; output:\n%s", minHeight, err, p.Output())
	}
}

// QuietLog is a logger for in-process daemons that prints warnings and
// errors only.
func QuietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// GetJSON GETs url and decodes its 200 answer into out, failing t
// otherwise.
func GetJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// FetchJSON is GetJSON returning the failure, for polled conditions.
func FetchJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
