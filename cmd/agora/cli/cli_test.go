package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/testutil/testnet"
)

// runCLI runs the command line in process and returns its code, stdout and
// stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestErrorPrefix: every failure — cobra's (unknown command or flag, a
// group's unknown subcommand) and a command's own — prints one line
// starting "Error: " on stderr and exits 1.
func TestErrorPrefix(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `Error: unknown command "bogus" for "agora"`},
		{[]string{"keys", "list", "--bogus"}, "Error: unknown flag: --bogus"},
		{[]string{"gateway", "strat"}, `Error: unknown command "strat" for "agora gateway" (run ` + "`agora gateway --help`" + ` for its commands)` + "\n"},
		{[]string{"keys", "add"}, "Error: accepts 1 arg(s), received 0\n"},
		{[]string{"up", "--providers", "0", "--home", home}, "Error: --providers 0: want 1 to 16\n"},
		{[]string{"start", "--home", home}, "Error: no node config at " + filepath.Join(home, "config", "agora.toml")},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "Error:") != 1 || strings.Contains(errOut, "error:") {
			t.Errorf("agora %s: code %d, stdout %q, stderr %q; want code 1 and stderr starting %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	// A group without a subcommand still prints its help, and succeeds.
	if code, out, _ := runCLI("gateway"); code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("agora gateway: code %d, %q", code, out)
	}
}

// TestKeysListSaysWhereKeysAre: on a home whose keys are in the test
// keyring (as `agora up` makes it), a bare `keys list` prints an empty list
// on stdout and says on stderr where the keys are; `keys show` of such a key
// says to use --keyring test.
func TestKeysListSaysWhereKeysAre(t *testing.T) {
	home := t.TempDir()
	for _, name := range []string{"validator", "demo"} {
		if code, _, errOut := runCLI("keys", "add", name, "--keyring", "test", "--home", home); code != 0 {
			t.Fatalf("keys add %s: %s", name, errOut)
		}
	}
	code, out, errOut := runCLI("keys", "list", "--home", home)
	want := fmt.Sprintf("no keys in the file keyring (%s); the test keyring holds 2 (demo, validator): agora keys list --keyring test --home %s\n",
		filepath.Join(home, "keyring-file"), home)
	if code != 0 || out != "" || errOut != want {
		t.Fatalf("keys list: code %d, stdout %q, stderr %q; want stderr %q", code, out, errOut, want)
	}
	if code, out, _ := runCLI("keys", "list", "--home", home, "-o", "json"); code != 0 || out != "[]\n" {
		t.Fatalf("keys list -o json: code %d, stdout %q", code, out)
	}
	// Asked for the file keyring by name: no hint about the other one.
	if _, _, errOut := runCLI("keys", "list", "--keyring", "file", "--home", home); errOut != fmt.Sprintf("no keys in the file keyring (%s)\n", filepath.Join(home, "keyring-file")) {
		t.Fatalf("keys list --keyring file: stderr %q", errOut)
	}
	code, out, _ = runCLI("keys", "list", "--keyring", "test", "--home", home)
	if code != 0 || !strings.HasPrefix(out, "demo ") || !strings.Contains(out, "\nvalidator ") {
		t.Fatalf("keys list --keyring test: code %d, %q", code, out)
	}
	code, _, errOut = runCLI("keys", "show", "demo", "--home", home)
	if want := "Error: key not found: \"demo\" in the file keyring (the test keyring has it: use --keyring test)\n"; code != 1 || errOut != want {
		t.Fatalf("keys show: code %d, stderr %q, want %q", code, errOut, want)
	}
}

// TestUpHasNoKeyringFlag: `agora up` keeps its keys in the test keyring, so
// it takes no --keyring (it took one and ignored it).
func TestUpHasNoKeyringFlag(t *testing.T) {
	// --providers 0 makes a run that took the flag fail at once.
	code, _, errOut := runCLI("up", "--keyring", "file", "--providers", "0", "--home", t.TempDir())
	if code != 1 || errOut != "Error: unknown flag: --keyring\n" {
		t.Fatalf("up --keyring file: code %d, stderr %q", code, errOut)
	}
	_, help, _ := runCLI("up", "--help")
	if strings.Contains(help, "--keyring string") || !strings.Contains(help, "UNENCRYPTED") {
		t.Fatalf("up --help:\n%s", help)
	}
}

// TestUpBusyPortWritesNothing: a first `agora up` whose node port is busy
// fails naming the flag before it writes anything, so a rerun with another
// port starts afresh (it used to leave a home whose config kept the port).
func TestUpBusyPortWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	ports := testnet.FreePorts(t, 5)
	home := filepath.Join(t.TempDir(), "home")
	for _, tc := range []struct{ flag, value, want string }{
		{"api.laddr", busy, busy + " is busy (--api.laddr)"},
		{"rpc.laddr", "tcp://" + busy, busy + " is busy (--rpc.laddr)"},
		{"p2p.laddr", "tcp://" + busy, busy + " is busy (--p2p.laddr)"},
	} {
		args := map[string]string{
			"api.laddr":      fmt.Sprintf("127.0.0.1:%d", ports[0]),
			"rpc.laddr":      fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
			"p2p.laddr":      fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]),
			"gateway.laddr":  fmt.Sprintf("127.0.0.1:%d", ports[3]),
			"provider.laddr": fmt.Sprintf("127.0.0.1:%d", ports[4]),
		}
		args[tc.flag] = tc.value
		argv := []string{"up", "--home", home}
		for k, v := range args {
			argv = append(argv, "--"+k, v)
		}
		code, _, errOut := runCLI(argv...)
		if code != 1 || !strings.HasPrefix(errOut, "Error: "+tc.want) {
			t.Fatalf("up with a busy --%s: code %d, stderr %q", tc.flag, code, errOut)
		}
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Fatalf("up with a busy --%s left %s behind (%v)", tc.flag, home, err)
		}
	}
}

// TestHomeSnapshotUndo: a failed first run removes what it added to the
// home — all of it when the home is new, only its new entries when the home
// held something before (a key, a gateway's store) — and keeps the rest.
func TestHomeSnapshotUndo(t *testing.T) {
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	fresh := filepath.Join(t.TempDir(), "new")
	s, err := snapshotHome(fresh)
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(fresh, "config", "agora.toml"))
	if err := s.undo(); err != nil || exists(fresh) {
		t.Fatalf("a new home: undo %v, still there %v", err, exists(fresh))
	}

	home := t.TempDir()
	kept := []string{filepath.Join(home, "keyring-test", "mine.json"), filepath.Join(home, "data", "gateway", "000001.log"), filepath.Join(home, "notes.txt")}
	for _, p := range kept {
		write(p)
	}
	if s, err = snapshotHome(home); err != nil {
		t.Fatal(err)
	}
	added := []string{filepath.Join(home, "config", "agora.toml"), filepath.Join(home, "data", "app", "state"), filepath.Join(home, "data", "agora.lock"), filepath.Join(home, "models", "agora-demo.gguf")}
	for _, p := range added {
		write(p)
	}
	write(filepath.Join(home, "keyring-test", "demo.json"))
	if err := s.undo(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(kept, filepath.Join(home, "keyring-test", "demo.json")) {
		if !exists(p) {
			t.Errorf("undo removed %s, which it must keep", p)
		}
	}
	for _, p := range append(added, filepath.Join(home, "config"), filepath.Join(home, "models")) {
		if exists(p) {
			t.Errorf("undo kept %s, which the run added", p)
		}
	}
}

// `agora job run` runs an example job and prints its gas, checkpoints and
// result hashes; the result it writes is the one it hashes; a failing job
// exits 1 saying why.
func TestJobRun(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "c.txt")
	if err := os.WriteFile(corpus, []byte("b a b\nc b a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI("job", "run", "--example", "ngram", "--input", "c.txt="+corpus, "--checkpoint-every", "1", "--out", out, "-o", "json", "--", "2", "4")
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	var rep jobRunReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.Status != "done" || rep.Steps != 3 || len(rep.Checkpoints) != 4 || rep.GasUsed == 0 || rep.Checkpoints[3].GasUsed != rep.GasUsed || rep.Checkpoints[3].State == [32]byte{} {
		t.Fatalf("report %+v", rep)
	}
	got, err := os.ReadFile(filepath.Join(out, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	want := "tokens 6 distinct 3 bigrams 4\nword\t3\tb\nword\t2\ta\nbigram\t2\tb a\nbigram\t1\ta b\n"
	h := sha256.Sum256(got)
	if string(got) != want || rep.Results[0].Name != "stdout" || rep.Results[0].SHA256 != hex.EncodeToString(h[:]) {
		t.Fatalf("stdout %q (results %+v), want %q", got, rep.Results, want)
	}
	// The ray tracer's PNG lands under out/.
	code, stdout, stderr = runCLI("job", "run", "--example", "raytrace", "--out", out, "-q", "--", "8", "6", "3")
	if code != 0 || !strings.Contains(stdout, "result   out/render.png ") {
		t.Fatalf("raytrace: code %d\n%s\n%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "out", "render.png")); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("render.png: %v", err)
	}
	// Too little gas: a deterministic failure, exit 1.
	code, stdout, stderr = runCLI("job", "run", "--example", "ngram", "--stdin", corpus, "--gas", "1000", "-q")
	if code != 1 || !strings.Contains(stdout, "status   failed") || !strings.Contains(stderr, "Error: the job failed: out of gas") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI("job", "run", "--module", corpus); code != 1 || !strings.Contains(stderr, "malformed module") {
		t.Fatalf("a text file as module: code %d, %s", code, stderr)
	}
}
