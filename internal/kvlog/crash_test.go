package kvlog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the crash test run this binary as the writer it kills.
func TestMain(m *testing.M) {
	if dir := os.Getenv("KVLOG_CRASH_WRITER"); dir != "" {
		crashWriter(dir)
		return
	}
	os.Exit(m.Run())
}

// crashWriter commits keys from 8 goroutines until it is killed, printing
// each key once CommitSync has returned for it.
func crashWriter(dir string) {
	d, err := OpenDB(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := 0; w < 8; w++ {
		go func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("w%d/%06d", w, i)
				if err := d.SetSync([]byte(k), []byte(k)); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, k)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestKilledWriter: a process committing from 8 goroutines is killed with
// SIGKILL mid-stream; reopened, the store holds every key a commit of it
// had acknowledged, and keeps working.
func TestKilledWriter(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "KVLOG_CRASH_WRITER="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			acked = append(acked, sc.Text())
		}
		close(done)
	}()
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	<-done
	if len(acked) < 50 {
		t.Fatalf("only %d commits acknowledged before the kill: %v", len(acked), acked)
	}
	for _, k := range acked {
		if strings.HasPrefix(k, "error") {
			t.Fatalf("the writer failed: %s", k)
		}
	}
	d, err := OpenDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, k := range acked {
		v, c, err := d.Get([]byte(k))
		if err != nil || string(v) != k {
			t.Fatalf("acknowledged %s lost after the kill: %q %v", k, v, err)
		}
		c.Close()
	}
	if err := d.SetSync([]byte("after"), []byte("crash")); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged commits all present after SIGKILL", len(acked))
}
