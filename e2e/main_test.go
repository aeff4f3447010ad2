package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	// The subprocess tests run a binary built from ../cmd/agora, which is
	// cmd/agora/cli and what it imports: importing it here makes the test
	// cache see a change anywhere in that binary (it would otherwise
	// replay a pass of the old binary).
	_ "github.com/agoranet/agora/cmd/agora/cli"
)

// agoraBin is the agora binary built once for the subprocess tests.
var agoraBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agora-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agoraBin = filepath.Join(dir, "agora")
	build := exec.Command("go", "build", "-o", agoraBin, "../cmd/agora")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agora:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
