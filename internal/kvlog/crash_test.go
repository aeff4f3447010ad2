package kvlog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/testutil/poll"
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
// each key once its commit has returned: six goroutines commit synced, two
// unsynced.
func crashWriter(dir string) {
	segSize, _ := strconv.ParseInt(os.Getenv("KVLOG_CRASH_SEGSIZE"), 10, 64)
	d, err := openDB(dir, segSize, nil, nil)
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
				set := d.SetSync
				if w%4 == 3 { // two writers of unsynced commits
					set = d.Set
				}
				if err := set([]byte(k), []byte(k)); err != nil {
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
// SIGKILL mid-stream; reopened, the store holds every key a synced commit
// of it had acknowledged, and of each unsynced writer's keys a prefix (those
// written to the log before the kill: Pebble keeps no WAL of its own, so
// they come back from the log, in order, or not at all), and keeps working.
// With small segments, the kill also lands among rotations whose old
// segments wait for Pebble's flush to be removed.
func TestKilledWriter(t *testing.T) {
	t.Run("64MiB-segments", func(t *testing.T) { killedWriter(t, SegmentSize) })
	t.Run("16KiB-segments", func(t *testing.T) { killedWriter(t, 16<<10) })
}

func killedWriter(t *testing.T, segSize int64) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "KVLOG_CRASH_WRITER="+dir, fmt.Sprint("KVLOG_CRASH_SEGSIZE=", segSize))
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // also when the wait below fails
	var acked []string
	var mu sync.Mutex // guards acked until done
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			acked = append(acked, sc.Text())
			mu.Unlock()
		}
		close(done)
	}()
	// The kill lands mid-stream once thousands of commits are
	// acknowledged: with 16 KiB segments, a dozen rotations in.
	poll.Until(t, 60*time.Second, "10000 commits acknowledged", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if n := len(acked); n > 0 && strings.HasPrefix(acked[n-1], "error") {
			t.Fatalf("the writer failed: %s", acked[n-1])
		}
		return len(acked) >= 10000, fmt.Sprintf("%d acknowledged", len(acked))
	})
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
	lostFrom := map[string]string{} // unsynced writer → its first key missing
	kept := 0
	for _, k := range acked {
		w := k[:strings.IndexByte(k, '/')]
		v, c, err := d.Get([]byte(k))
		found := err == nil && string(v) == k
		if err == nil {
			c.Close()
		}
		switch {
		case w == "w3" || w == "w7": // unsynced
			if first, lost := lostFrom[w]; lost && found {
				t.Fatalf("unsynced %s kept after %s was lost: the log was not replayed in order", k, first)
			} else if !found && !lost {
				lostFrom[w] = k
			}
			if found {
				kept++
			}
		case !found:
			t.Fatalf("acknowledged %s lost after the kill: %q %v", k, v, err)
		}
	}
	if kept == 0 {
		t.Fatal("no unsynced commit survived the kill")
	}
	if err := d.SetSync([]byte("after"), []byte("crash")); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged commits; after SIGKILL every synced one present, %d unsynced kept, unsynced writers' losses from %v", len(acked), kept, lostFrom)
}
