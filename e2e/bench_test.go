package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/internal/bench"
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
