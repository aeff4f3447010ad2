package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/cmd/agora/bench"
)

// TestBenchGatewayProcs: `agora bench gateway --procs` runs the fake
// backend, the provider and the gateway as child processes, measures the
// three paths through them without an error, and leaves no child behind.
func TestBenchGatewayProcs(t *testing.T) {
	out, err := exec.Command(agoraBin, "bench", "gateway", "--procs", "--duration", "600ms", "--rounds", "1",
		"--conns", "2", "--mode", "json", "--json", "--home", t.TempDir()).Output()
	if err != nil {
		t.Fatalf("bench gateway --procs: %v\n%s", err, out)
	}
	var rows []bench.GatewayRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	paths := map[string]bool{}
	for _, r := range rows {
		if r.Reqs == 0 || r.Errors != 0 || r.Conns != 2 || r.Stream {
			t.Fatalf("row %+v", r)
		}
		paths[r.Path] = true
	}
	if len(rows) != 3 || !paths["direct"] || !paths["provider"] || !paths["gateway"] {
		t.Fatalf("rows %+v", rows)
	}
	if left := partProcesses(t); len(left) > 0 {
		t.Fatalf("part processes left running: %v", left)
	}
}

// partProcesses lists the command lines of running `gateway-part` processes.
func partProcesses(t *testing.T) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(cmdlines) == 0 {
		t.Fatalf("cannot list processes: %v", err)
	}
	var left []string
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), "gateway-part") {
			left = append(left, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

// TestBenchChainCounts: a short `agora bench chain` against a node with a
// small mempool: refusals happen, are counted by reason and resent, and
// every count adds up (broadcasts = admitted + refused; admitted = committed
// = Σ sender nonces, per account too). Nothing here is about speed. The node
// child process is gone afterwards.
func TestBenchChainCounts(t *testing.T) {
	out, err := exec.Command(agoraBin, "bench", "chain", "--duration", "4s", "--warmup", "2s", "--accounts", "40",
		"--connections", "4", "--block-time", "300ms", "--mempool-size", "100", "--presign-rate", "3000", "-o", "json").Output()
	if err != nil {
		t.Fatalf("bench chain: %v\n%s", err, out)
	}
	var r bench.ChainResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var refused int64
	for _, v := range r.Refused {
		refused += v
	}
	switch {
	case !r.Consistent || !r.Drained || r.NonceErrors != 0 || r.FailedInBlk != 0 || r.Included != r.Committed:
		t.Fatalf("inconsistent: %+v", r)
	case r.Committed == 0 || r.Committed != r.Admitted || uint64(r.Committed) != r.NonceSum:
		t.Fatalf("committed %d, admitted %d, Σ nonces %d", r.Committed, r.Admitted, r.NonceSum)
	case r.Broadcasts != r.Admitted+refused:
		t.Fatalf("broadcasts %d != admitted %d + refused %d (%v)", r.Broadcasts, r.Admitted, refused, r.Refused)
	case r.Refused["mempool_full"] == 0 || r.Resubmitted == 0:
		t.Fatalf("a mempool of 100 never refused (refused %v, resubmitted %d): the test did not exercise refusals", r.Refused, r.Resubmitted)
	case len(r.Timeline) != 4 || r.WindowCommitted == 0 || r.NodeRSSMaxMiB <= 0 || r.P50Millis <= 0:
		t.Fatalf("window figures missing: %+v", r)
	}
	var sum int
	for _, v := range r.Timeline {
		sum += v
	}
	if sum > r.WindowCommitted || int64(r.WindowCommitted) > r.Committed {
		t.Fatalf("timeline %v sums to %d, window %d, committed %d", r.Timeline, sum, r.WindowCommitted, r.Committed)
	}
	if left := processesWith(t, "agora-bench-chain-"); len(left) > 0 {
		t.Fatalf("node process left running: %v", left)
	}
}

// processesWith lists the command lines of running processes containing s.
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(cmdlines) == 0 {
		t.Fatalf("cannot list processes: %v", err)
	}
	var left []string
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), s) {
			left = append(left, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}
