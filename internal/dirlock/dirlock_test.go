package dirlock_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/internal/dirlock"
	"github.com/agoranet/agora/internal/kvlog"
)

// TestFlockNamesHolder: a second lock of a held file fails with the one
// message naming the directory and the holder's pid; once released it is
// taken again.
func TestFlockNamesHolder(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "agora.lock")
	f, err := dirlock.Flock(path, home)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dirlock.Flock(path, home)
	var held *dirlock.HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() || held.Dir != home {
		t.Fatalf("second lock: %v", err)
	}
	want := fmt.Sprintf("agora is already running on %s (pid %d): stop it first, or use another --home", home, os.Getpid())
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if err := dirlock.Unlock(f); err != nil {
		t.Fatal(err)
	}
	f, err = dirlock.Flock(path, home)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	dirlock.Unlock(f)
}

// TestHelperHoldStore is the other process of TestPebbleNamesHolder: it
// opens the store named by DIRLOCK_HOLD and keeps it open until stdin closes.
func TestHelperHoldStore(t *testing.T) {
	dir := os.Getenv("DIRLOCK_HOLD")
	if dir == "" {
		t.Skip("helper process only")
	}
	db, err := kvlog.OpenDB(dir)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	db.Close()
}

// TestPebbleNamesHolder: opening a store another process has open names
// that process (not "resource temporarily unavailable"); one this process
// has open names this process; a store whose holder stopped opens.
func TestPebbleNamesHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gateway")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
	cmd.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper: %q", line)
	}
	_, err = kvlog.OpenDB(dir)
	var held *dirlock.HeldError
	if !errors.As(err, &held) || held.PID != cmd.Process.Pid || held.Dir != dir {
		t.Fatalf("open held by pid %d: %v", cmd.Process.Pid, err)
	}
	if want := fmt.Sprintf("agora is already running on %s (pid %d)", dir, cmd.Process.Pid); err.Error()[:len(want)] != want {
		t.Fatalf("message %q", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}

	db, err := kvlog.OpenDB(dir)
	if err != nil {
		t.Fatalf("open after the holder stopped: %v", err)
	}
	defer db.Close()
	_, err = kvlog.OpenDB(dir)
	if !errors.As(err, &held) || held.PID != os.Getpid() {
		t.Fatalf("open held by this process: %v", err)
	}
}
